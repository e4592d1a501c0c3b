"""No import circle in gorl/: every `import` of a gorl module, at the top of a file or inside a
function, is an edge; the graph must have no cycle (the env routes: registry -> single,
registry -> sharded -> single; the registry imports no other part of gorl but errors)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph(package: str = "gorl") -> dict[str, set[str]]:
    modules = {}
    for path in (ROOT / package).rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path

    def owner(name: str) -> str | None:  # gorl.envs.registry.make_env -> gorl.envs.registry
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                deps |= {owner(a.name) for a in node.names if a.name.split(".")[0] == package}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                if base.split(".")[0] == package:
                    deps |= {owner(f"{base}.{a.name}") for a in node.names}
        graph[name] = deps - {None, name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_graph_sees_imports_inside_functions():
    g = import_graph()
    assert "gorl.envs.single" in g["gorl.envs.sharded"]  # imported inside _worker
    assert "gorl.registry" in g["gorl.config"]  # imported inside _base_file
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_gorl():
    assert cycles(import_graph()) == []


def test_env_routes_meet_in_a_leaf():
    g = import_graph()
    assert g["gorl.envs.single"] <= {"gorl.envs.dmc", "gorl.envs.gym_adapter"}
    assert "gorl.envs.single" in g["gorl.envs.registry"]
    assert "gorl.envs.registry" not in g["gorl.envs.sharded"]


def test_reading_an_experiment_imports_neither_torch_nor_an_algorithm():
    """The Snakefile (every `snakemake` call, every SLURM job step), `gorl-bench list` and `plan` read
    the registry and resolve every run's config: config classes and registry entries live in
    torch-free modules (gorl/core/onpolicy_config.py, baselines/config.py,
    gorl/algorithm/config.py) and name the algorithms lazily. Checked in a fresh interpreter."""
    import subprocess
    import sys

    code = """
import contextlib, io, sys
from gorl import cli, experiment, registry
for path in ("config/paper.yaml", "config/small.yaml", "config/paper-gpu.yaml", ".test/config/e2e.yaml"):
    experiment.load(path)
algo = registry.get("gorl_fm")
with contextlib.redirect_stdout(io.StringIO()):
    assert cli.main(["list"]) in (0, None) and cli.main(["plan", "config/paper.yaml"]) in (0, None)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "jax")
             or m in ("baselines.ppo", "baselines.fpo", "baselines.dppo", "gorl.algorithm.gorl")))
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", out.stdout
    # and the lazy references resolve to the algorithm's own functions
    from gorl import registry
    from gorl.algorithm import gorl as gorl_algorithm
    assert registry.get("gorl_fm").make_agent.resolve() is gorl_algorithm.make_agent
    assert registry.get("gorl_diffusion").train.resolve() is gorl_algorithm.train
