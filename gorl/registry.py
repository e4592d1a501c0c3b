"""The one registry of algorithms.

Every algorithm (built-in or third-party) is an :class:`Algorithm`: a name, a config
dataclass, a YAML file of presets, a training entry and a display label/colour. The CLI,
the pipeline's config schema and the figures' colours all read this registry; nothing
else lists algorithms.

Every algorithm module declares its own :class:`Algorithm` object. Out-of-tree packages
register through the entry-point group ``gorl_bench.algorithms``; the entry point names an
:class:`Algorithm` object (or a zero-argument callable returning one). The built-ins are
declared the same way, as entry points listed in :data:`BUILTIN_ALGORITHMS`, and loaded by
the same code: this module (and all of gorl/) imports no algorithm and nothing in baselines/.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

ENTRY_POINT_GROUP = "gorl_bench.algorithms"

BUILTIN_ALGORITHMS = (
    # name              "module:attribute" of its Algorithm, as an entry point would say it
    ("ppo", "baselines.ppo:ALGORITHM"),
    ("fpo", "baselines.fpo:ALGORITHM"),
    ("dppo", "baselines.dppo:ALGORITHM"),
    ("ppo_teacher", "baselines.ppo:TEACHER"),
    ("gorl_fm", "gorl.algorithm.gorl:GORL_FM"),
    ("gorl_diffusion", "gorl.algorithm.gorl:GORL_DIFFUSION"),
)
"""The built-in algorithms (the only place they are listed), in registration order."""


def _check_baselines_package() -> None:
    """OpenAI's ``baselines`` has our top-level name: if it shadows ours, say so and where."""
    baselines = importlib.import_module("baselines")
    if not getattr(baselines, "GORL_BENCH", False):
        where = getattr(baselines, "__file__", None) or list(getattr(baselines, "__path__", []))
        raise ImportError(
            f"the package 'baselines' resolves to {where}, not to GoRL-Bench's baselines/ (another package of "
            "that name, e.g. OpenAI's baselines, comes first on sys.path); uninstall it or use a separate "
            "environment")


class RegistryError(RuntimeError):
    """A plug-in's entry point is broken (the message names it, its package and the cause)."""


@dataclass(frozen=True)
class Algorithm:
    name: str
    """Name used on the command line, in pipeline configs and in result tables."""
    config_cls: type
    """Dataclass holding every hyperparameter (fields documented in its docstrings)."""
    presets_file: Path
    """YAML file with presets (``paper``, ``paper-v1``, ``small``, ``smoke``, ...); see :mod:`gorl.config`."""
    train: Callable[..., Any]
    """``train(cfg, run)``: trains one run (see :class:`gorl.core.run.Run`)."""
    label: str = ""
    """Legend label in figures (defaults to the name)."""
    color: str | None = None
    """Matplotlib colour used in every figure (a palette colour is assigned if None)."""
    description: str = ""
    family: str = "baseline"
    """``baseline`` or ``gorl``: the probability-of-improvement plot compares gorl vs baseline."""
    make_agent: Callable[..., Any] | None = None
    """``make_agent(cfg, obs_dim, act_dim)``: the policy module the trainer trains (the function
    given to :func:`gorl.core.loop.run_single_trainer`); :func:`gorl.load_policy` rebuilds a saved
    policy with it. GoRL's policies (encoder + decoder) are rebuilt by GoRL's own code."""

    @property
    def display(self) -> str:
        return self.label or self.name


_REGISTRY: dict[str, Algorithm] = {}
_loaded = False


def register(algo: Algorithm) -> Algorithm:
    if algo.name == "common":
        raise ValueError("the algorithm name 'common' is reserved (presets say base: common:PRESET for "
                         "gorl/presets/common.yaml)")
    if algo.name in _REGISTRY and _REGISTRY[algo.name] is not algo:
        existing = _REGISTRY[algo.name]
        if existing.train is not algo.train:
            raise ValueError(f"algorithm {algo.name!r} is already registered")
    _REGISTRY[algo.name] = algo
    return algo


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    try:
        _check_baselines_package()
        builtins = [metadata.EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in BUILTIN_ALGORITHMS]
        for ep in [*builtins, *metadata.entry_points(group=ENTRY_POINT_GROUP)]:
            where = f"entry point {ep.name} = {ep.value} (group {ENTRY_POINT_GROUP}" + \
                (f", package {ep.dist.name})" if getattr(ep, "dist", None) is not None else ")")
            try:
                obj = ep.load()
            except Exception as e:
                if ep in builtins:
                    raise  # a broken checkout: the real traceback helps more than a summary
                raise RuntimeError(f"{where} failed to load: {e!r}") from e
            if not isinstance(obj, Algorithm) and not callable(obj):
                raise TypeError(f"{where} is a {type(obj).__name__}: name a gorl.registry.Algorithm or a "
                                f"zero-argument callable returning one")
            try:
                algo = obj if isinstance(obj, Algorithm) else obj()
            except Exception as e:
                raise RuntimeError(f"{where} failed to load: {e!r}") from e
            if not isinstance(algo, Algorithm):
                raise TypeError(f"{where} gave {type(algo).__name__}, not a gorl.registry.Algorithm")
            if algo.name != ep.name:
                raise ValueError(f"{where} registers the name {algo.name!r}; the entry point must be named "
                                 f"after the algorithm")
            try:
                register(algo)
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
    except BaseException as e:
        _loaded = False  # a later call raises again instead of returning a partial registry
        if isinstance(e, Exception) and str(e).startswith("entry point "):
            raise RegistryError(str(e)) from e
        raise


def algorithms() -> dict[str, Algorithm]:
    """All registered algorithms, built-ins first, in registration order."""
    _load()
    return dict(_REGISTRY)


def get(name: str) -> Algorithm:
    algos = algorithms()
    if name not in algos:
        import difflib
        hint = difflib.get_close_matches(name, list(algos), n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise KeyError(f"unknown algorithm {name!r}{extra}; registered: {', '.join(algos)}")
    return algos[name]


# A fixed, colour-blind-friendly palette (seaborn 'colorblind'); algorithms without an
# explicit colour take the next unused one, in registration order.
PALETTE = ["#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161",
           "#fbafe4", "#949494", "#ece133", "#56b4e9"]


def colors() -> dict[str, str]:
    out: dict[str, str] = {}
    used = {a.color for a in algorithms().values() if a.color}
    free = [c for c in PALETTE if c not in used]
    for name, algo in algorithms().items():
        out[name] = algo.color or (free.pop(0) if free else "#333333")
    return out
