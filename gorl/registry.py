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
    ("ppo", "baselines.config:PPO"),
    ("fpo", "baselines.config:FPO"),
    ("dppo", "baselines.config:DPPO"),
    ("ppo_teacher", "baselines.config:PPO_TEACHER"),
    ("gorl_fm", "gorl.algorithm.config:GORL_FM"),
    ("gorl_diffusion", "gorl.algorithm.config:GORL_DIFFUSION"),
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


@dataclass(frozen=True)
class Lazy:
    """A function named ``"module:attribute"`` and imported on its first call.

    The built-ins declare ``train`` and ``make_agent`` this way, beside their config classes
    (baselines/config.py, gorl/algorithm/config.py), so that reading the registry, which the
    pipeline's Snakefile and ``gorl-bench plan`` do, imports neither the algorithms nor torch.
    A plug-in may pass a function or a ``Lazy``."""

    target: str

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **kwargs)

    def resolve(self) -> Callable[..., Any]:
        module, _, attribute = self.target.partition(":")
        return getattr(importlib.import_module(module), attribute)


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
    """``train(cfg, run)``: trains one run (see :class:`gorl.core.run.Run`); a function or a :class:`Lazy`."""
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
    policy with it. GoRL's takes ``stage=k, decoder=...`` too (its encoder over that decoder)."""

    @property
    def display(self) -> str:
        return self.label or self.name


_REGISTRY: dict[str, Algorithm] = {}
_ORIGIN: dict[str, str] = {}
"""How each algorithm came in: "built-in", "entry point NAME = VALUE (package P)", "module M"."""
_loaded = False
_VALIDATORS: list[Callable[[Algorithm], None]] = []

REQUIRED_FIELDS = ("total_steps", "device")
"""Fields every algorithm's config class has: the CLI sets ``total_steps`` from ``--steps`` and
places the run on ``device`` (auto, cpu, cuda)."""

HOW_FOUND = (f"algorithms come from the built-ins, installed packages' entry points (group {ENTRY_POINT_GROUP!r}), "
             "and modules named with --import (CLI) or imports: (pipeline config), which must be importable "
             "(installed, or on PYTHONPATH)")


class ContractError(RegistryError):
    """An algorithm that breaks the plug-in contract (config class, presets), named with the field."""


def describe(algo: Algorithm, where: str | None = None) -> str:
    """``algorithm 'a2c' (module a2c_demo)``: the plug-in, as error messages name it."""
    where = where or _ORIGIN.get(algo.name) or f"module {getattr(algo.config_cls, '__module__', '?')}"
    return f"algorithm {algo.name!r} ({where})"


def check_algorithm(algo: Algorithm, where: str | None = None) -> None:
    """The plug-in contract, checked at registration: a dataclass config class with the
    :data:`REQUIRED_FIELDS`, a presets file that exists, and whatever the validators added with
    :func:`add_validator` check (:mod:`gorl.experiment`: every preset resolves to the class).
    Raises :class:`ContractError`, one line naming the plug-in and the field."""
    import dataclasses

    who = describe(algo, where)
    if not isinstance(algo.config_cls, type) or not dataclasses.is_dataclass(algo.config_cls):
        raise ContractError(f"{who}: config_cls {algo.config_cls!r} is not a dataclass")
    fields = {f.name for f in dataclasses.fields(algo.config_cls)}
    for name in REQUIRED_FIELDS:
        if name not in fields:
            raise ContractError(f"{who}: config class {algo.config_cls.__name__} has no field {name!r} "
                                f"(every algorithm's config needs {', '.join(REQUIRED_FIELDS)}; subclassing "
                                f"gorl.core.onpolicy.OnPolicyConfig gives both)")
    if not Path(algo.presets_file).is_file():
        raise ContractError(f"{who}: presets_file {str(algo.presets_file)!r} does not exist")
    if not callable(algo.train):
        raise ContractError(f"{who}: train is not callable")
    for validate in _VALIDATORS:
        validate(algo)


def add_validator(check: Callable[[Algorithm], None]) -> None:
    """Run ``check(algo)`` on every algorithm registered from now on and on the plug-ins already
    registered (it raises :class:`ContractError` naming the plug-in and the field)."""
    if check in _VALIDATORS:
        return
    _VALIDATORS.append(check)
    for algo in list(_REGISTRY.values()):
        if _ORIGIN.get(algo.name) != "built-in":
            check(algo)


def register(algo: Algorithm, where: str | None = None) -> Algorithm:
    """Add ``algo`` (checked: :func:`check_algorithm`). Modules named with ``--import`` or a
    pipeline config's ``imports:`` call this when imported."""
    if algo.name == "common":
        raise ValueError("the algorithm name 'common' is reserved (presets say base: common:PRESET for "
                         "gorl/presets/common.yaml)")
    if algo.name in _REGISTRY and _REGISTRY[algo.name] is not algo:
        existing = _REGISTRY[algo.name]
        if existing.train is not algo.train:
            raise ValueError(f"algorithm {algo.name!r} is already registered")
    if where != "built-in":
        check_algorithm(algo, where)
    _REGISTRY[algo.name] = algo
    _ORIGIN.setdefault(algo.name, where or f"module {getattr(algo.config_cls, '__module__', '?')}")
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
                register(algo, "built-in" if ep in builtins else where)
            except ContractError:
                raise
            except ValueError as e:
                raise ValueError(f"{where}: {e}") from None
    except BaseException as e:
        _loaded = False  # a later call raises again instead of returning a partial registry
        if isinstance(e, Exception) and str(e).startswith("entry point ") and not isinstance(e, RegistryError):
            raise RegistryError(str(e)) from e
        raise


def algorithms() -> dict[str, Algorithm]:
    """All registered algorithms, built-ins first, in registration order."""
    _load()
    return dict(_REGISTRY)


def get(name: str) -> Algorithm:
    algos = algorithms()
    if name not in algos:
        from gorl.errors import did_you_mean
        raise KeyError(f"unknown algorithm {name!r}{did_you_mean(name, algos)}; {where_algorithms_come_from()}")
    return algos[name]


def where_algorithms_come_from() -> str:
    """One line: what is registered, the plug-ins found and how algorithms are found."""
    algos = algorithms()
    plugins = [f"{n} ({_ORIGIN[n]})" for n in algos if _ORIGIN.get(n) != "built-in"]
    return (f"registered: {', '.join(algos)}; plug-ins found: {', '.join(plugins) or 'none'}; {HOW_FOUND}")


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


def styles(names=None) -> dict[str, dict[str, str]]:
    """``{name: {"color", "label", "family"}}`` of registered algorithms (all, or ``names`` in that
    order): the one definition of how an algorithm looks in every figure and table."""
    algos, cols = algorithms(), colors()
    return {n: {"color": cols[n], "label": algos[n].display, "family": algos[n].family}
            for n in (algos if names is None else names)}
