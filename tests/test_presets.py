"""Hyperparameters in one place (issue 11, point 4): one base preset that every algorithm's
presets extend, config dataclasses whose defaults come from the presets, and a resolved
preset that says where each value came from."""
from pathlib import Path

import pytest

from conftest import cli_here
from gorl import registry
from gorl.config import (COMMON_PRESETS, RESERVED_KEYS, ConfigError, build_config, config_to_dict,
                         read_presets, resolve_preset)

ALGOS = list(registry.algorithms())


@pytest.mark.parametrize("name", ALGOS)
def test_dataclass_defaults_are_the_paper_preset(name):
    algo = registry.get(name)
    paper = build_config(algo.config_cls, algo.presets_file, "paper", "cheetah-run", {})
    assert config_to_dict(algo.config_cls()) == config_to_dict(paper)


PRESETS = ("paper", "paper-v1", "small", "smoke", "small-v1")


def _chain(path: Path, preset: str) -> list[tuple[Path, str, dict]]:
    """(file, preset, its own keys) from ``preset`` of ``path`` down its base chain."""
    from gorl.config import _base_file
    out = []
    while True:
        body = dict(read_presets(path)[preset] or {})
        out.append((Path(path), preset, body))
        base = body.get("base")
        if base is None:
            return out
        path, preset = _base_file(path, base)


@pytest.mark.parametrize("name", ALGOS)
def test_every_preset_extends_the_common_one_and_repeats_none_of_it(name):
    """Each preset reaches common.yaml's preset of the same name, and no value a file states
    is one its preset would have anyway (a repeat would be a second home for the number)."""
    from gorl.config import _apply, _base_file, _flatten
    algo = registry.get(name)
    raw = read_presets(algo.presets_file)
    assert set(raw) - set(RESERVED_KEYS) == set(PRESETS)
    for preset in PRESETS:
        chain = _chain(algo.presets_file, preset)
        assert (COMMON_PRESETS, preset) in [(p, n) for p, n, _ in chain], f"{name} {preset} does not reach common"
        for path, n, body in chain:
            if path == COMMON_PRESETS:
                break
            body = dict(body)
            base_at = _base_file(path, body.pop("base"))
            values = resolve_preset(*base_at)
            shared = _flatten(read_presets(path).get("all_presets") or {}, "all_presets")
            for key, value in shared.items():
                assert values.get(key, object()) != value or n != "paper", \
                    f"{path.name}:all_presets repeats {key} of {base_at[0].name}:{base_at[1]}"
            if body.pop("all_presets", True) and base_at[0] != path:
                _apply(values, {}, shared, "all_presets")
            for key, value in _flatten(body, n).items():
                assert values.get(key, object()) != value, f"{path.name}:{n} repeats {key}, already {value!r}"


def test_the_baselines_keep_the_reference_normaliser():
    for preset in PRESETS:  # the FPO authors' code, in v1 and the release (spec 2.2)
        assert resolve_preset(COMMON_PRESETS, preset)["obs_norm_mode"] == "legacy"


def test_list_prints_a_resolved_preset_with_sources():
    out = cli_here("list", "ppo", "--preset", "smoke", "--task", "finger-spin", "--set", "clip_eps=2e-1").stdout
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith("#")}
    assert rows["num_envs"].split("#")[1].strip() == "common.yaml:smoke"
    assert rows["unroll_length"].split("#")[1].strip() == "common.yaml:paper"
    assert rows["actor_hidden"].split("#")[1].strip() == "ppo.yaml:all_presets"
    assert rows["gamma"].split()[1] == "0.95" and rows["gamma"].endswith("common.yaml:paper tasks[finger-spin]")
    assert rows["clip_eps"].split()[1] == "0.2" and rows["clip_eps"].endswith("# --set")
    bad = cli_here("list", "ppo", "--preset", "huge", check=False)
    assert bad.returncode == 2 and "huge" in bad.stderr and bad.stderr.count("\n") == 1


def test_common_is_not_an_algorithm_name():
    algo = registry.get("ppo")
    with pytest.raises(ValueError, match="reserved"):
        registry.register(registry.Algorithm(name="common", config_cls=algo.config_cls,
                                             presets_file=algo.presets_file, train=algo.train))


def _gorl(preset="paper", task="walker-walk", **overrides):
    algo = registry.get("gorl_diffusion")
    return build_config(algo.config_cls, algo.presets_file, preset, task, overrides)


def test_per_stage_values_resolve_as_the_release_does():
    """The plain value, then stage0 / later_stages, then stage<k> (the release's rule)."""
    cfg = _gorl()
    assert [cfg.for_stage(k).learning_rate for k in range(4)] == [1e-3, 3e-4, 1e-4, 1e-4]
    assert [cfg.for_stage(k).clip_eps for k in range(4)] == [0.15] * 4
    assert cfg.for_stage(2).stage_overrides == {} and cfg.for_stage(2).learning_rate == 1e-4
    v1 = _gorl("paper-v1")
    assert [v1.for_stage(k).clip_eps for k in range(4)] == [0.15, 0.3, 0.3, 0.3]
    assert [v1.for_stage(k).max_grad_norm for k in range(4)] == [0.5, 1.0, 1.0, 1.0]
    assert [v1.for_stage(k).learning_rate for k in range(4)] == [1e-3] * 4


def test_no_override_is_shadowed_by_a_per_stage_value():
    """--set KEY replaces every stage's value (it used to be accepted and ignored for
    max_grad_norm); --set stage<k>.KEY one stage's; a later_stages value the stage<k> ones."""
    cfg = _gorl(max_grad_norm=2.0, learning_rate=5e-4)
    assert {cfg.for_stage(k).max_grad_norm for k in range(4)} == {2.0}
    assert {cfg.for_stage(k).learning_rate for k in range(4)} == {5e-4}
    cfg = _gorl(**{"stage2.learning_rate": 2e-4})
    assert [cfg.for_stage(k).learning_rate for k in range(4)] == [1e-3, 3e-4, 2e-4, 1e-4]
    cfg = _gorl(**{"later_stages.learning_rate": 7e-4})
    assert [cfg.for_stage(k).learning_rate for k in range(4)] == [1e-3, 7e-4, 7e-4, 7e-4]


@pytest.mark.parametrize("key, message", [
    ("stage4.clip_eps", "stage4.clip_eps: stage 4 does not exist"),
    ("stage1.num_envs", "stage1.num_envs: num_envs holds for the whole run"),
    ("stage1.clip", "unknown override key 'stage1.clip' (did you mean 'clip_eps'?)"),
    ("stages.clip_eps", "not a key"),
])
def test_bad_per_stage_keys_are_one_line_errors(key, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")) as e:
        _gorl("smoke", **{key: 2})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="PPOConfig has no stages"):
        build_config(registry.get("ppo").config_cls, registry.get("ppo").presets_file, "smoke", "cheetah-run",
                     {"stage1.clip_eps": 0.2})


def test_list_shows_each_stage_and_where_it_comes_from():
    out = cli_here("list", "gorl_diffusion", "--preset", "paper", "--task", "walker-walk").stdout
    rows = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith("#")}
    assert rows["learning_rate"].split("#")[0].split()[1:] == ["0.001", "/", "0.0003", "/", "0.0001", "/", "0.0001"]
    assert "stage 1: gorl_diffusion.yaml:all_presets stage1" in rows["learning_rate"]
    assert "stages 2-3: gorl_diffusion.yaml:all_presets later_stages" in rows["learning_rate"]
    assert rows["clip_eps"].split()[1] == "0.15" and "/" not in rows["clip_eps"].split("#")[0]
    v1 = cli_here("list", "gorl_diffusion", "--preset", "paper-v1", "--task", "walker-walk").stdout
    rows = {ln.split()[0]: ln for ln in v1.splitlines() if ln and not ln.startswith("#")}
    assert rows["clip_eps"].split("#")[0].split()[1:] == ["0.15", "/", "0.3", "/", "0.3", "/", "0.3"]


@pytest.mark.parametrize("algo, overrides, key", [
    ("fpo", {"ratio_log_clip": 2.0}, "ratio_log_clip"),  # the averaged ratio has no clip
    ("gorl_fm", {"decoder_patience": 5}, "decoder_patience"),  # the steps fit never stops early
    ("gorl_fm", {"decoder_max_epochs": 5}, "decoder_max_epochs"),  # FM's fit length is decoder_train_steps
    ("gorl_fm", {"collect_steps": 4000}, "collect_steps"),  # the release collection counts episodes
    ("gorl_fm", {"diffusion_schedule": "linear_alpha_bar"}, "diffusion_schedule"),  # FM has no diffusion
    ("gorl_fm", {"stage1.decoder_hidden": [8]}, "stage1.decoder_hidden"),  # the decoder is run-level
])
def test_a_key_that_would_not_be_used_is_an_error(algo, overrides, key):
    """No override is accepted and then ignored (issue 18): a key the chosen switches do not
    read is a one-line error naming it."""
    a = registry.get(algo)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        build_config(a.config_cls, a.presets_file, "paper", "cheetah-run", overrides)
    assert "\n" not in str(e.value)


# where small-v1 takes small's value although paper-v1 differs from paper: small's evaluation
# schedule (both settings are scored alike; common.yaml:small-v1); GoRL's v1 collection of 20
# iterations, one trajectory per training env, and small's decoder epochs (gorl.yaml:small-v1)
SMALL_V1_SCALED = {"eval_schedule": "linspace_inclusive"}
GORL_SMALL_V1_SCALED = {"collect_steps": 20 * 15360, "collect_envs": 32, "decoder_max_epochs": 10}


# the teacher (humanoid only, spec 14) has no v1 counterpart: its paper-v1 is PPO's
@pytest.mark.parametrize("name", [a for a in ALGOS if a != "ppo_teacher"])
@pytest.mark.parametrize("task", ["cheetah-run", "finger-spin", "walker-walk"])
def test_small_v1_is_paper_v1_at_smalls_scale(name, task):
    """small-v1 (issue 18's release-vs-v1 comparison) = paper-v1, with every value small changes
    relative to paper changed alike where paper-v1 has paper's value; so its v1 values, stated
    again in small-v1, cannot drift from paper-v1's."""
    algo = registry.get(name)

    def stages(preset):
        cfg = build_config(algo.config_cls, algo.presets_file, preset, task, {})
        return [config_to_dict(cfg.for_stage(k)) for k in range(cfg.num_stages)] if hasattr(cfg, "for_stage") \
            else [config_to_dict(cfg)]

    for k, (paper, v1, small, small_v1) in enumerate(zip(*map(stages, ("paper", "paper-v1", "small", "small-v1")))):
        want = {key: small[key] if small[key] != paper[key] and v1[key] == paper[key] else v1[key] for key in v1}
        want.update(SMALL_V1_SCALED, **GORL_SMALL_V1_SCALED if name.startswith("gorl") else {})
        wrong = [f"{key}: {small_v1[key]!r}, want {want[key]!r}" for key in want if small_v1[key] != want[key]]
        assert not wrong, f"{name} {task} stage {k}: small-v1 is not paper-v1 at small's scale:\n" + "\n".join(wrong)
