"""Presets (YAML), task overrides and ``--set key=value`` overrides -> a typed config.

The hyperparameters shared by all algorithms (the Brax geometry, the normaliser, the
evaluation protocol) live in one base presets file, ``gorl/presets/common.yaml`` (``paper``,
``small``, ``smoke``). An algorithm's presets file extends it and states only its own values::

    all_presets:              # this algorithm's own hyperparameters, in every preset below
      clip_eps: 0.1
    paper:
      base: common:paper      # the shared values of common.yaml's paper
    small:
      base: common:small
      num_evals: 5            # a value of this preset only
    tiny:
      base: small             # inherit from this file, then override
      total_steps: 4000
    task_overrides:           # applied after the preset, before --set
      finger-spin: {gamma: 0.95}

Resolution of preset P: its ``base`` (resolved the same way), then ``all_presets`` if that base
is in another file (or there is none), then P's own keys. ``base`` names a preset of the same
file (``paper``), of the common file (``"common:paper"``) or of another registered algorithm
(``"ALGO:PRESET"``, e.g. ``base: "ppo:smoke"``, so that a new baseline inherits every
hyperparameter of PPO and lists only what it adds or changes). ``task_overrides`` are never
inherited: each presets file states its own. The config dataclasses take their defaults from
these files too (:func:`paper_defaults`), so no number is written twice.

Unknown keys anywhere are an error that names the key (with the closest valid name) and
the preset it came from.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

import re

import yaml

from gorl.errors import ConfigError  # noqa: F401  (re-exported)

# Numbers as people write them: 3e-4, 1e9, -1e-3, .5, +2, 1_000_000, 1E+3 (PyYAML's YAML 1.1
# resolver reads several of these as strings: exponents need a dot and a signed exponent).
_NUMBER = re.compile(r"[+-]?(?:\d(?:_?\d)*(?:\.(?:\d(?:_?\d)*)?)?|\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?")


def parse_number(text: str) -> int | float | None:
    """``text`` as an int (no dot, no exponent) or a float; None if it is not a number."""
    t = text.strip()
    if not _NUMBER.fullmatch(t):
        return None
    if re.fullmatch(r"[+-]?\d(?:_?\d)*", t):
        return int(t)
    return float(t)


def parse_value(raw: str) -> Any:
    """A value typed on a command line: a number as people write it, else YAML (lists, booleans, null, strings)."""
    number = parse_number(raw)
    if number is not None:
        return number
    return _numbers_in(yaml.safe_load(raw))


def _numbers_in(value: Any) -> Any:
    """Strings inside a YAML value that are numbers as people write them -> numbers."""
    if isinstance(value, str):
        number = parse_number(value)
        return value if number is None else number
    if isinstance(value, list):
        return [_numbers_in(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers_in(v) for k, v in value.items()}
    return value


def _closest(name: str, options) -> str:
    hint = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def read_presets(path: Path) -> dict[str, Any]:
    data = _numbers_in(yaml.safe_load(Path(path).read_text()) or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of presets")
    return data


COMMON_PRESETS = Path(__file__).parent / "presets" / "common.yaml"
COMMON = "common"
"""``base: common:PRESET`` names a preset of :data:`COMMON_PRESETS` (no algorithm may be called so)."""
RESERVED_KEYS = ("task_overrides", "all_presets")


def preset_names(path: Path) -> list[str]:
    return [k for k in read_presets(path) if k not in RESERVED_KEYS]


def defaults_from(path: Path, preset: str = "paper"):
    """Class decorator (under ``@dataclass``): every field named in preset ``preset`` of ``path``
    (resolved) takes its default from there, inherited fields included, so a config dataclass
    states types and meanings and the presets file states the numbers, once."""
    import copy
    import functools

    def deco(cls: type) -> type:
        values = resolve_preset(path, preset)
        hints: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            hints.update(klass.__dict__.get("__annotations__", {}))
        own = dict(cls.__dict__.get("__annotations__", {}))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(f"{path}: preset {preset!r} sets {key!r}, which {cls.__name__} does not have"
                                  f"{_closest(key, hints)}")
            own.setdefault(key, hints[key])  # redeclare an inherited field with its new default
            setattr(cls, key, dataclasses.field(default_factory=functools.partial(copy.deepcopy, value))
                    if isinstance(value, (list, dict)) else value)
        cls.__annotations__ = own
        return cls

    return deco


def _base_file(path: Path, base: str) -> tuple[Path, str]:
    """``"paper"`` -> (this file, "paper"); ``"ppo:smoke"`` -> (ppo's presets file, "smoke")."""
    if ":" not in base:
        return Path(path), base
    algo_name, preset = (part.strip() for part in base.split(":", 1))
    if algo_name == COMMON:
        return COMMON_PRESETS, preset
    from gorl import registry  # late: the registry imports the algorithms, which import this module
    try:
        algo = registry.get(algo_name)
    except KeyError as e:
        raise ConfigError(f"{path}: base {base!r}: {e.args[0]}") from None
    return Path(algo.presets_file), preset


def resolve_preset_sources(path: Path, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve preset ``name`` of ``path`` through its ``base`` chain.

    Returns the values and, for each key, the preset that set it (``"file.yaml:small"``),
    so that errors can say where a bad key came from.
    """
    seen: list[tuple[Path, str]] = []

    def _resolve(p: Path, n: str, child: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        presets = read_presets(p)
        names = [k for k in presets if k not in RESERVED_KEYS]
        if n not in names:
            where = f"{child}: base: " if child else ""
            raise ConfigError(f"{where}unknown preset {n!r}{_closest(n, names)} in {p}; "
                              f"available: {', '.join(names)}")
        key = (p.resolve(), n)
        if key in seen:
            chain = " -> ".join(f"{q.name}:{m}" for q, m in seen + [key])
            raise ConfigError(f"{path}: preset inheritance cycle {chain}")
        seen.append(key)
        body = presets[n] or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{p}: preset {n!r} must be a mapping, got {body!r}")
        body = dict(body)
        base = body.pop("base", None)
        here = f"{p.name}:{n}"
        if base is not None and not isinstance(base, str):
            raise ConfigError(f"{here}: base must be a preset name or 'ALGO:PRESET', got {base!r}")
        base_at = _base_file(p, base) if base else None
        values, origin = _resolve(*base_at, here) if base else ({}, {})
        shared = presets.get("all_presets") or {}
        if shared and (base_at is None or Path(base_at[0]).resolve() != p.resolve()):
            if not isinstance(shared, dict):
                raise ConfigError(f"{p}: all_presets must be a mapping, got {shared!r}")
            values.update(shared)
            origin.update({k: f"{p.name}:all_presets" for k in shared})
        values.update(body)
        origin.update({k: here for k in body})
        return values, origin

    return _resolve(Path(path), name, None)


def resolve_preset(path: Path, name: str) -> dict[str, Any]:
    return resolve_preset_sources(path, name)[0]


def task_overrides(path: Path, task: str) -> dict[str, Any]:
    """A task's settings; ``playground:FingerSpin`` shares those of ``finger-spin`` (same task, the
    paper's physics), then adds any listed under its own name."""
    from gorl.envs.playground import suite_name
    table = read_presets(path).get("task_overrides") or {}
    out = dict(table.get(suite_name(task), {}) or {}) if suite_name(task) != task else {}
    out.update(table.get(task, {}) or {})
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """['a=1', 'b=[1,2]', 'c=3e-4'] -> {'a': 1, 'b': [1, 2], 'c': 0.0003} (see :func:`parse_value`)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = parse_value(raw)
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {e}") from None
    return out


def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal right after each field)."""
    import ast
    import inspect
    import textwrap

    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body
        for a, b in zip(body, body[1:]):
            if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name) and \
                    isinstance(b, ast.Expr) and isinstance(getattr(b, "value", None), ast.Constant) \
                    and isinstance(b.value.value, str):
                docs[a.target.id] = " ".join(b.value.value.split())
    return docs


def _coerce(cls: type, key: str, value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(cls, key, value, a)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(f"{key}: value {value!r} does not fit {hint}")
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        vals = [_coerce(cls, key, v, inner) for v in value]
        return tuple(vals) if origin is tuple else vals
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if hint is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    return value


def make_config(cls: type, values: dict[str, Any], source: str = "config"):
    """Build dataclass ``cls`` from ``values``; unknown keys and bad types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            raise ConfigError(f"unknown {source} key {key!r}{_closest(key, fields)}")
    kwargs = {k: _coerce(cls, k, v, hints[k]) for k, v in values.items()}
    missing = [n for n, f in fields.items() if n not in kwargs
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{source}: missing required keys {missing}")
    cfg = cls(**kwargs)
    check = getattr(cfg, "validate", None)
    if check is not None:
        check()
    return cfg


def _layered(cls: type, presets_file: Path, preset: str, task: str | None,
             overrides: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Preset -> task overrides -> --set overrides, with the source of every value."""
    values, origin = resolve_preset_sources(presets_file, preset)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            src = "" if origin[key] == f"{Path(presets_file).name}:{preset}" else f" (set in {origin[key]})"
            raise ConfigError(f"{presets_file}: unknown preset key {key!r}{_closest(key, fields)}{src}")
    per_task = task_overrides(presets_file, task) if task else {}
    for key in per_task:
        if key not in fields:
            raise ConfigError(f"{presets_file}: unknown task override key {key!r}{_closest(key, fields)}")
    values.update(per_task)
    origin.update({k: f"{Path(presets_file).name}:task_overrides[{task}]" for k in per_task})
    values.update(overrides or {})
    origin.update({k: "--set" for k in overrides or {}})
    return values, origin


def build_config(cls: type, presets_file: Path, preset: str, task: str,
                 overrides: dict[str, Any] | None = None):
    """Preset -> task overrides -> --set overrides -> validated dataclass."""
    values, _ = _layered(cls, presets_file, preset, task, overrides)
    return make_config(cls, values, source="override")


def resolve_config_sources(cls: type, presets_file: Path, preset: str, task: str | None = None,
                           overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every hyperparameter of ``cls`` as :func:`build_config` resolves it, and where each value
    comes from (``"ppo.yaml:small"``, ``"common.yaml:paper"``, a task override, ``--set``, or
    ``"dataclass default"``)."""
    values, origin = _layered(cls, presets_file, preset, task, overrides)
    cfg = make_config(cls, values, source="override")
    full = config_to_dict(cfg)
    return full, {k: origin.get(k, "dataclass default") for k in full}


def config_to_dict(cfg) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
