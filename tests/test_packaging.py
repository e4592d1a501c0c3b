"""environment.yml stays in step with pyproject.toml."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    req = req.replace(" ", "")
    name = re.match(r"[A-Za-z0-9_.\-]+(\[[^\]]*\])?", req).group(0)
    return name.lower().replace("_", "-") + req[len(name):]


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_norm(r) for r in project["dependencies"] + extras["test"] + extras["playground"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    have = {_norm(r) for r in pip if not r.startswith("-e")}
    # torch is pinned exactly in environment.yml (CPU wheel first), ranged in pyproject
    assert {r for r in have if not r.startswith("torch")} == {r for r in wanted if not r.startswith("torch")}
    assert "torch==2.13.0" in have
    assert any(r.startswith("torch") for r in wanted)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/test.sh" in readme
    assert "scripts/test.sh" in (ROOT / ".ci" / "run").read_text()


def test_a_foreign_baselines_package_is_named_not_silently_used(tmp_path):
    """OpenAI's `baselines` shares our top-level name; if it shadows ours, say so and where."""
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "__init__.py").write_text('"""someone else\'s baselines"""\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    out = subprocess.run([sys.executable, "-c", "from gorl import registry; registry.algorithms()"],
                         cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "resolves to" in out.stderr and str(tmp_path / "baselines") in out.stderr


def _module_imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules of gorl/ and baselines/ that ``path`` imports (all, or at module level only)."""
    import ast

    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & set(_modules())
            found |= subs or {node.module}  # `from pkg import submodule` imports the submodule
    return {m for m in found if m.split(".")[0] in ("gorl", "baselines")}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in ("gorl", "baselines"):
        for p in (ROOT / pkg).rglob("*.py"):
            parts = p.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p
    return out


def test_gorl_never_imports_baselines_and_errors_is_a_leaf():
    mods = _modules()
    for name, path in mods.items():
        if name.split(".")[0] == "gorl":
            assert not any(m.split(".")[0] == "baselines" for m in _module_imports(path, False)), name
    assert _module_imports(mods["gorl.errors"], False) == set()


def test_no_import_circle():
    """Module-level imports between gorl/ and baselines/ modules form no cycle."""
    mods = _modules()
    graph = {n: {m for m in _module_imports(p, True) if m in mods and m != n} for n, p in mods.items()}
    state: dict[str, int] = {}

    def visit(n, path):
        state[n] = 1
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                cycle = path[path.index(m):] + [m]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if m not in state:
                visit(m, path + [m])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
