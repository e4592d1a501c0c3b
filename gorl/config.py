"""Presets (YAML), task overrides and ``--set key=value`` overrides -> a typed config.

A presets file looks like::

    paper:            # every hyperparameter, equal to the spec
      learning_rate: 1.0e-3
      ...
    small:
      base: paper     # inherit, then override
      num_envs: 32
    task_overrides:   # applied after the preset, before --set
      finger-spin: {gamma: 0.95}

``base`` may also name another registered algorithm's preset as ``"ALGO:PRESET"`` (e.g.
``base: "ppo:smoke"``), so that a new baseline inherits every shared hyperparameter and
lists only what it adds or changes. ``task_overrides`` are never inherited: each presets
file states its own.

Unknown keys anywhere are an error that names the key (with the closest valid name) and
the preset it came from.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """Bad user input (unknown key, bad value, unknown preset). Raised before any env is built."""


def _closest(name: str, options) -> str:
    hint = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {hint[0]!r}?)" if hint else ""


def read_presets(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of presets")
    return data


def preset_names(path: Path) -> list[str]:
    return [k for k in read_presets(path) if k != "task_overrides"]


def _base_file(path: Path, base: str) -> tuple[Path, str]:
    """``"paper"`` -> (this file, "paper"); ``"ppo:smoke"`` -> (ppo's presets file, "smoke")."""
    if ":" not in base:
        return Path(path), base
    algo_name, preset = (part.strip() for part in base.split(":", 1))
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
        names = [k for k in presets if k != "task_overrides"]
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
        values, origin = _resolve(*_base_file(p, base), here) if base else ({}, {})
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
    """['a=1', 'b=[1,2]'] -> {'a': 1, 'b': [1, 2]} (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        try:
            out[key] = yaml.safe_load(raw)
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


def build_config(cls: type, presets_file: Path, preset: str, task: str,
                 overrides: dict[str, Any] | None = None):
    """Preset -> task overrides -> --set overrides -> validated dataclass."""
    values, origin = resolve_preset_sources(presets_file, preset)
    fields = {f.name for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields:
            src = "" if origin[key] == f"{Path(presets_file).name}:{preset}" else f" (set in {origin[key]})"
            raise ConfigError(f"{presets_file}: unknown preset key {key!r}{_closest(key, fields)}{src}")
    for key in task_overrides(presets_file, task):
        if key not in fields:
            raise ConfigError(f"{presets_file}: unknown task override key {key!r}{_closest(key, fields)}")
    values.update(task_overrides(presets_file, task))
    values.update(overrides or {})
    return make_config(cls, values, source="override")


def config_to_dict(cfg) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
