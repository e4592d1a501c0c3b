"""Hyperparameters in one place (issue 11, point 4): one base preset that every algorithm's
presets extend, config dataclasses whose defaults come from the presets, and a resolved
preset that says where each value came from."""
from pathlib import Path

import pytest
import yaml

from conftest import cli
from gorl import registry
from gorl.config import COMMON_PRESETS, RESERVED_KEYS, build_config, config_to_dict, resolve_preset

ALGOS = list(registry.algorithms())


@pytest.mark.parametrize("name", ALGOS)
def test_dataclass_defaults_are_the_paper_preset(name):
    algo = registry.get(name)
    paper = build_config(algo.config_cls, algo.presets_file, "paper", "cheetah-run", {})
    assert config_to_dict(algo.config_cls()) == config_to_dict(paper)


@pytest.mark.parametrize("name", ALGOS)
def test_every_preset_extends_the_common_one_and_repeats_none_of_it(name):
    algo = registry.get(name)
    raw = yaml.safe_load(Path(algo.presets_file).read_text())
    for preset in ("paper", "small", "smoke"):
        common = resolve_preset(COMMON_PRESETS, preset)
        body = dict(raw[preset] or {})
        assert body.pop("base") == f"common:{preset}"
        values = resolve_preset(algo.presets_file, preset)
        for key in [*body, *(raw.get("all_presets") or {})]:
            if key in common:
                assert values[key] != common[key], f"{algo.presets_file.name}:{preset} repeats {key} of common.yaml"
    assert set(raw) - set(RESERVED_KEYS) == {"paper", "small", "smoke"}


def test_small_and_smoke_use_the_spec_normaliser():
    for preset in ("paper", "small", "smoke"):
        assert resolve_preset(COMMON_PRESETS, preset)["obs_norm_mode"] == "legacy"  # spec 2.2


def test_list_prints_a_resolved_preset_with_sources():
    out = cli("list", "ppo", "--preset", "smoke", "--task", "finger-spin", "--set", "clip_eps=2e-1").stdout
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith("#")}
    assert rows["num_envs"].split("#")[1].strip() == "common.yaml:smoke"
    assert rows["unroll_length"].split("#")[1].strip() == "common.yaml:paper"
    assert rows["actor_hidden"].split("#")[1].strip() == "ppo.yaml:all_presets"
    assert rows["gamma"].split()[1] == "0.95" and "task_overrides[finger-spin]" in rows["gamma"]
    assert rows["clip_eps"].split()[1] == "0.2" and rows["clip_eps"].endswith("# --set")
    bad = cli("list", "ppo", "--preset", "huge", check=False)
    assert bad.returncode == 2 and "huge" in bad.stderr and bad.stderr.count("\n") == 1


def test_common_is_not_an_algorithm_name():
    algo = registry.get("ppo")
    with pytest.raises(ValueError, match="reserved"):
        registry.register(registry.Algorithm(name="common", config_cls=algo.config_cls,
                                             presets_file=algo.presets_file, train=algo.train))
