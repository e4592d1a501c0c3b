"""docs/specification.md is the suite's specification: every "spec N.N" cited anywhere in
the repository must name one of its sections, nothing may point outside the repository
for it, and its preset tables (section 11) must say what the presets resolve to.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gorl import registry
from gorl.config import build_config, config_to_dict

REPO = Path(__file__).resolve().parent.parent
SPEC = REPO / "docs" / "specification.md"

# "spec 2.2", "spec section 2", "spec sections 2.7 and 3", "spec 6.4-6.6", "spec 4, 5, 6.4-6.6",
# "spec 6.4 / 6.5", "docs/specification.md section 7.1", "spec\n7.1" (wrapped line)
_NUM = r"\d+(?:\.\d+)?"
CITATION = re.compile(rf"\bspec(?:ification(?:\.md)?)?\s*(?:sections?|§)?\s+({_NUM}(?:\s*(?:-|–|,|/|and|&)\s*{_NUM})*)",
                      re.IGNORECASE)
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)?)\.?\s", re.MULTILINE)
# Places outside the repository that earlier versions pointed readers to (split so that this
# file does not name them itself).
OUTSIDE = ("../" + "shared", "shared/" + "spec", "algorithms" + ".md", "conventions" + ".md")
BINARY = {".png", ".pdf", ".jpg", ".jpeg", ".gif", ".npz", ".npy", ".parquet", ".pt", ".pkl", ".zip", ".gz"}


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (e.g. an sdist): walk it
        names = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if p.is_file() and not {".git", "results", ".snakemake"} & set(p.relative_to(REPO).parts)]
    files = []
    for name in names:
        path = REPO / name
        if path.suffix.lower() in BINARY or not path.is_file():
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        files.append(path)
    return files


def spec_sections() -> set[str]:
    return set(HEADING.findall(SPEC.read_text(encoding="utf-8")))


def cited_sections(text: str) -> list[str]:
    """Every section number a text cites; a range "a-b" contributes a and b."""
    out = []
    for m in CITATION.finditer(text):
        out += re.findall(_NUM, m.group(1))
    return out


def test_citation_parser():
    text = ("(spec 2.2) spec section 2; spec sections 2.7 and 3; spec 6.4-6.6; [uncertain, spec 4]; "
            "spec 4, 5, 6.4 / 6.5, fpo.py:45; docs/specification.md section 7.1; spec\n1.4; spec: 256 x 5")
    assert cited_sections(text) == ["2.2", "2", "2.7", "3", "6.4", "6.6", "4", "4", "5", "6.4", "6.5", "7.1",
                                    "1.4"]


def test_specification_keeps_the_section_numbering():
    sections = spec_sections()
    expected = {str(n) for n in range(1, 13)} | {"1.1", "1.2", "1.3", "1.4", "1.5"} | \
        {f"2.{i}" for i in range(1, 8)} | {f"6.{i}" for i in range(1, 8)} | {"7.1", "7.2"}
    assert expected <= sections, sorted(expected - sections)


def test_every_cited_section_exists():
    sections = spec_sections()
    files = tracked_text_files()
    assert any(f.suffix == ".py" for f in files) and len(files) > 20  # the scan does see the repository
    missing, n_cited = [], 0
    for path in files:
        text = path.read_text(encoding="utf-8")
        for num in cited_sections(text):
            n_cited += 1
            if num not in sections:
                missing.append(f"{path.relative_to(REPO)}: spec {num}")
    assert n_cited > 50  # the code, presets, tests and captions cite it
    assert not missing, "sections cited but not in docs/specification.md:\n" + "\n".join(missing)


def test_nothing_points_outside_the_repository():
    bad = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve():
            continue
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if any(s in line for s in OUTSIDE):
                bad.append(f"{path.relative_to(REPO)}:{i}: {line.strip()[:120]}")
    assert not bad, "references to files outside the repository:\n" + "\n".join(bad)


# ------------------------------------------------------------------ section 11 vs the presets
PRESETS = ("paper", "paper-v1", "small", "smoke")


def _section(n: str) -> str:
    text = SPEC.read_text(encoding="utf-8")
    start = re.search(rf"^## {re.escape(n)}\. .*$", text, re.MULTILINE)
    end = re.search(r"^## \d+\. ", text[start.end():], re.MULTILINE)
    return text[start.end(): start.end() + end.start() if end else None]


def _parse(value: str):
    """A table cell's value: null, true/false, a number (commas, 1e-3, 10M), a list ("5 x 256",
    "[0.15, 0.3]") or a bare word; anything else raises ValueError."""
    v = value.strip().strip("`").strip()
    if v == "null":
        return None
    if v in ("true", "false"):
        return v == "true"
    m = re.fullmatch(r"(\d+) x (\d+)", v)
    if m:
        return [int(m.group(2))] * int(m.group(1))
    if v.startswith("[") and v.endswith("]"):
        return [_parse(x) for x in v[1:-1].split(",")]
    m = re.fullmatch(r"([\d.]+)M", v)
    if m:
        return float(m.group(1)) * 1e6
    try:
        return float(v.replace(",", ""))
    except ValueError:
        if re.fullmatch(r"[a-z_][a-z0-9_]*", v):
            return v
        raise


def _same(got, want) -> bool:
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(_same(g, w) for g, w in zip(got, want))
    if isinstance(want, float) and not isinstance(got, bool) and isinstance(got, (int, float)):
        return got == pytest.approx(want)
    return got == want


def _resolved() -> dict[tuple[str, str], dict]:
    out = {}
    for name in ("ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion"):
        algo = registry.get(name)
        for p in PRESETS:
            out[name, p] = config_to_dict(build_config(algo.config_cls, algo.presets_file, p, "cheetah-run"))
    return out


def _key_rows(section: str):
    """Rows of the section's 5-column tables whose first cell names config keys:
    (keys, separator, [paper, paper-v1, small, smoke] cells)."""
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or not cells[0].startswith("`"):
            continue
        keys = re.findall(r"`(\w+)`", cells[0])
        sep = re.search(r"`\s*(,|x|/)\s*`", cells[0])
        yield keys, (sep.group(1) if sep else None), cells[1:]


def test_preset_tables_match_the_presets():
    resolved = _resolved()
    section = _section("11")
    checked, wrong = 0, []
    for keys, sep, cells in _key_rows(section):
        if keys == ["stage_steps"]:
            continue  # described in words ("the same ratio, scaled to 3M")
        paper_cell = cells[0]
        for preset, cell in zip(PRESETS, cells):
            cell = paper_cell if cell == "same" else cell
            gorl_value = re.search(r"\(GoRL: ([^ )]+)", cell)
            plain = re.sub(r"\s*\(.*?\)", "", cell)
            values = [plain] if sep is None else [v.strip() for v in plain.split(f" {sep} " if sep == "x" else sep)]
            assert len(values) == len(keys), (keys, cell)
            for key, text in zip(keys, values):
                for algo in ("ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion"):
                    cfg = resolved[algo, preset]
                    if key not in cfg:
                        continue
                    want = _parse(gorl_value.group(1)) if gorl_value and algo.startswith("gorl") else _parse(text)
                    checked += 1
                    if not _same(cfg[key], want):
                        wrong.append(f"{algo} {preset} {key}: preset {cfg[key]!r}, specification {want!r}")
    assert checked > 100
    assert not wrong, "docs/specification.md section 11 disagrees with the presets:\n" + "\n".join(wrong)


def test_per_algorithm_keys_match_the_presets():
    resolved = _resolved()
    section = _section("11")
    checked, wrong = 0, []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or not cells[0].startswith("`"):
            continue
        algos = re.findall(r"`(\w+)`", cells[0])
        for item in re.split(r",\s*(?=`)(?![^(]*\))", cells[1]):  # commas outside parentheses
            m = re.fullmatch(r"`(\w+)` (.+?)(?: \((.*)\))?", item.strip())
            assert m, item
            key, value, note = m.groups()
            per_preset = dict(re.findall(r"`(paper-v1|paper|small|smoke)` ([^,\s]+(?: x \d+)?)", note or ""))
            for algo in algos:
                for preset in PRESETS:
                    want = _parse(per_preset.get(preset, value))
                    checked += 1
                    if not _same(resolved[algo, preset][key], want):
                        wrong.append(f"{algo} {preset} {key}: preset {resolved[algo, preset][key]!r}, "
                                     f"specification {want!r}")
    assert checked > 80
    assert not wrong, "docs/specification.md section 11 disagrees with the presets:\n" + "\n".join(wrong)


# ------------------------------------------------------------------ section 8 vs the code
def _config_keys() -> set[str]:
    import dataclasses
    return {f.name for name in ("ppo", "fpo", "dppo", "gorl_fm", "gorl_diffusion")
            for f in dataclasses.fields(registry.get(name).config_cls)}


def test_switch_table_names_real_keys_and_marks_planned_ones():
    """Section 8's switch table: every key it gives exists in a config dataclass, and a key it
    calls planned does not exist yet (once it does, the table must describe it instead)."""
    known = _config_keys()
    rows = [line for line in _section("8").splitlines() if line.startswith("| ") and line.count("|") == 5]
    assert len(rows) > 10
    named, planned = set(), set()
    for line in rows:
        cell = [c.strip() for c in line.strip().strip("|").split("|")][2]
        now = re.findall(r"Planned(?: \([^)]*\))?: `(\w+)`", cell)
        planned.update(now)
        named.update(set(re.findall(r"`(\w+)`(?=:)", cell)) - set(now))
        named.update(re.findall(r"^`(\w+)` \(", cell))
        named.update(re.findall(r"[,;] `(\w+)` \(", cell))
    assert {"obs_norm_mode", "latent_reg", "eval_mode", "encoder_init", "max_grad_norm", "eval_schedule"} <= named
    assert named <= known, f"section 8 names keys no config has: {sorted(named - known)}"
    assert not planned & known, (f"section 8 calls {sorted(planned & known)} planned, but the code has them now: "
                                 "describe them in docs/specification.md (sections 8 and the one they belong to)")
