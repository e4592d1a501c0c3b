"""Presets (YAML), per-task and per-stage values, and ``--set key=value`` overrides -> a typed config.

The hyperparameters shared by all algorithms (the Brax geometry, the normaliser, the
evaluation protocol) live in one base presets file, ``gorl/presets/common.yaml`` (``paper`` = the
authors' ICML 2026 release, ``paper-v1`` = the arXiv v1 code, ``small``, ``smoke``). An
algorithm's presets file extends it and states only its own values::

    all_presets:              # this algorithm's own hyperparameters, in every preset below
      clip_eps: 0.1
      tasks:                  # per-task values (here: of every preset of this file)
        finger-spin: {gamma: 0.95}
    paper:
      base: common:paper      # the shared values of common.yaml's paper
    small:
      base: common:small
      num_evals: 5            # a value of this preset only
    tiny:
      base: small             # inherit from this file, then override
      total_steps: 4000

A value can be refined per task (``tasks: {TASK: {...}}``) and, for a staged algorithm (GoRL),
per stage: ``stage0: {...}`` (stage 0), ``later_stages: {...}`` (stages 1, 2, ...) and
``stage<k>: {...}`` (stage k only), also inside a task's table and on the command line
(``--set stage1.learning_rate=3e-4``). Stage k's value of a key is the plain value, then its
``stage0`` / ``later_stages`` value, then its ``stage<k>`` value (the release's rule).

Resolution of preset P for task T: P's ``base`` (resolved the same way), then ``all_presets``
if that base is in another file (or there is none) and P does not say ``all_presets: false``,
then P's own keys; then the values of
``tasks[T]`` (``playground:FingerSpin`` shares those of ``finger-spin``); then ``--set``. Each of
these layers replaces what the layers before it said about a key it sets: a plain value replaces
the key's per-task and per-stage values from before, a ``later_stages`` value the ``stage<k>``
values (k >= 1) from before, so that no value given later is ever silently shadowed. ``base`` names a
preset of the same file (``paper``), of the common file (``"common:paper"``), of another shared
file in gorl/presets (``"gorl:paper"``: what GoRL-FM and GoRL-Diffusion share) or of another
registered algorithm (``"ALGO:PRESET"``, e.g. ``base: "ppo:smoke"``, so that a new baseline
inherits every hyperparameter of PPO and lists only what it adds or changes). The config
dataclasses take their defaults from ``paper`` (:func:`defaults_from`), so no number is written
twice. ``gorl-bench list ALGO --preset P --task T`` prints every value and where it comes from.

Unknown keys anywhere are an error that names the key (with the closest valid name) and
the preset it came from.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import typing
from collections.abc import Collection
from pathlib import Path
from typing import Any

import yaml

from gorl.errors import ConfigError, did_you_mean

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


_PRESETS_READ: dict[tuple, dict[str, Any]] = {}
"""Parsed preset files by (path, modification time, size): resolving an experiment's runs reads
each file dozens of times, and PyYAML's pure-Python parser took most of a second of it."""


def read_presets(path: Path) -> dict[str, Any]:
    """A preset file's presets, numbers parsed (:func:`parse_number`); a fresh copy per call."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime_ns, st.st_size)
    if key not in _PRESETS_READ:
        data = _numbers_in(yaml.safe_load(path.read_text()) or {})
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of presets")
        _PRESETS_READ[key] = data
    return copy.deepcopy(_PRESETS_READ[key])


PRESETS_DIR = Path(__file__).parent / "presets"
COMMON_PRESETS = PRESETS_DIR / "common.yaml"
COMMON = "common"
"""``base: common:PRESET`` names a preset of :data:`COMMON_PRESETS` (no algorithm may be called so)."""
RESERVED_KEYS = ("all_presets",)
TASKS = "tasks"
"""A preset's per-task values: ``tasks: {TASK: {key: value, later_stages: {...}}}``."""
STAGE_OVERRIDES = "stage_overrides"
"""The field of a staged config (GoRL) that holds its per-stage values: {table: {key: value}}."""
_STAGE_TABLE = re.compile(r"stage(\d+)|later_stages")
_FLAT_KEY = re.compile(r"(?:tasks\[([^\]]+)\]\.)?(?:(stage\d+|later_stages)\.)?([A-Za-z_][A-Za-z0-9_]*)")

# Names that users of other PPO code (CleanRL, Stable-Baselines3, Brax's ppo.train) type, and the
# key of the same role here, with what differs in its value where something does.
OTHER_LIBRARIES_KEYS = {
    "lr": "learning_rate", "ent_coef": "entropy_coef", "entropy_cost": "entropy_coef",
    "vf_coef": ("value_loss_coef", "it weights the mean squared value error itself, as SB3's vf_coef does; "
                "CleanRL's weights half of it"),
    "clip_coef": "clip_eps", "clip_range": "clip_eps", "clipping_epsilon": "clip_eps",
    "update_epochs": "num_epochs", "n_epochs": "num_epochs", "num_updates_per_batch": "num_epochs",
    "discounting": "gamma", "discount": "gamma", "total_timesteps": "total_steps",
    "num_timesteps": "total_steps", "n_envs": "num_envs", "norm_adv": "normalize_advantage",
    "policy_hidden_layer_sizes": "actor_hidden", "value_hidden_layer_sizes": "critic_hidden",
}
_LAYOUT = ("not a key: an iteration here is batch_size x num_minibatches x unroll_length env steps over "
           "num_envs envs, Brax's layout, in which batch_size counts segments of unroll_length steps per minibatch")
NOT_CONFIG_KEYS = {"seed": "not a key: the seed is train's --seed, a pipeline config's seeds:",
                   "num_steps": _LAYOUT, "n_steps": _LAYOUT, "minibatch_size": _LAYOUT}


def unknown_key_hint(name: str, fields) -> str:
    """What follows "unknown ... key 'NAME'": where NAME is another library's name or the authors'
    release's (:func:`gorl.release_names.hint`), this suite's key for it (or why there is none),
    else the closest of ``fields``."""
    if name in NOT_CONFIG_KEYS:
        return f" ({NOT_CONFIG_KEYS[name]})"
    ours, note = (OTHER_LIBRARIES_KEYS.get(name, ""), "")
    if isinstance(ours, tuple):
        ours, note = ours
    if ours in fields:
        return f" (another library's name; here it is {ours!r}{': ' + note if note else ''})"
    from gorl.release_names import hint
    return hint(name, fields) or did_you_mean(name, fields)


def is_stage_table(name: str) -> bool:
    """``stage0``, ``stage1``, ... (one stage) or ``later_stages`` (every stage after the first)."""
    return isinstance(name, str) and _STAGE_TABLE.fullmatch(name) is not None


def stage_tables(k: int) -> tuple[str, str]:
    """The tables that refine stage k's values, in the order they apply: its family, then its own."""
    return ("stage0" if k == 0 else "later_stages"), f"stage{k}"


def split_key(key: str, fields: Collection[str] | None = None) -> tuple[str | None, str | None, str]:
    """A flat key -> (task or None, stage table or None, config key):
    ``'tasks[finger-spin].later_stages.max_grad_norm'`` -> ('finger-spin', 'later_stages', 'max_grad_norm').
    Not one: a ConfigError, which names this suite's key where KEY is the release's ``table.key``
    (``fields``: the algorithm's keys, for that hint)."""
    m = _FLAT_KEY.fullmatch(key)
    if m is None:
        from gorl.release_names import hint
        said = hint(key, fields)
        raise ConfigError(f"unknown key {key!r}{said}" if said else
                          f"{key!r} is not a key, 'stage<k>.KEY' or 'later_stages.KEY'")
    return m.group(1), m.group(2), m.group(3)


def _flatten(body: dict[str, Any], where: str, task: str | None = None) -> dict[str, Any]:
    """A preset's mapping -> flat keys ``key``, ``TABLE.key``, ``tasks[TASK].key``, ``tasks[TASK].TABLE.key``."""
    out: dict[str, Any] = {}
    prefix = f"tasks[{task}]." if task else ""
    for key, value in body.items():
        if key == TASKS and task is None:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: tasks must map task names to mappings of values, got {value!r}")
            for name, table in value.items():
                if not isinstance(table, dict) or not table:
                    raise ConfigError(f"{where}: tasks: {name!r} must be a non-empty mapping of values, got {table!r}")
                if not isinstance(name, str) or "[" in name or "]" in name:
                    raise ConfigError(f"{where}: tasks: {name!r} is not a task name")
                out.update(_flatten(table, f"{where} tasks[{name}]", name))
        elif is_stage_table(key):
            if not isinstance(value, dict) or not value:
                raise ConfigError(f"{where}: {key} must be a non-empty mapping of per-stage values, got {value!r}")
            for k, v in value.items():
                if isinstance(v, dict) or k == TASKS or is_stage_table(k):
                    raise ConfigError(f"{where}: {key}.{k}: a per-stage table holds plain values only")
                out[f"{prefix}{key}.{k}"] = v
        else:
            if key == TASKS:
                raise ConfigError(f"{where}: tasks inside a task's table")
            out[f"{prefix}{key}"] = value
    for key in out:
        try:
            split_key(key)
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None
    return out


def _replaces(new: tuple[str | None, str | None, str], old: tuple[str | None, str | None, str]) -> bool:
    """Does a value at ``new`` (task, table, key) replace one at ``old`` set by an earlier layer?
    A plain value replaces all of the key's refinements; a ``later_stages`` value the ``stage<k>``
    values (k >= 1) at its level; a task's plain value that task's per-stage values."""
    (t, table, key), (ot, otable, okey) = new, old
    if key != okey:
        return False
    later = otable is not None and otable not in ("stage0", "later_stages")
    if t is None:
        return table is None or (table == "later_stages" and ot is None and later)
    if ot != t:
        return False
    return (table is None and otable is not None) or (table == "later_stages" and later)


def _apply(values: dict[str, Any], origin: dict[str, str], layer: dict[str, Any], where) -> None:
    """Lay ``layer`` (flat keys) over ``values``: the rule of :func:`_replaces`, then set.
    ``where`` is the layer's origin, or a mapping key -> origin."""
    parts = {k: split_key(k) for k in layer}
    for key in layer:
        for old in [o for o in values if o not in layer and _replaces(parts[key], split_key(o))]:
            del values[old]
            origin.pop(old, None)
    for key, value in layer.items():
        values[key] = value
        task = parts[key][0]
        origin[key] = where[key] if isinstance(where, dict) else f"{where} tasks[{task}]" if task else where


def preset_names(path: Path) -> list[str]:
    return [k for k in read_presets(path) if k not in RESERVED_KEYS]


def config_values(values: dict[str, Any], cls: type | None = None) -> dict[str, Any]:
    """Flat keys (no ``tasks[...]``) -> the dataclass's keyword values: plain keys as they are,
    ``TABLE.key`` gathered into ``stage_overrides`` = {TABLE: {key: value}}."""
    out: dict[str, Any] = {}
    stages: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        task, table, name = split_key(key)
        if task is not None:
            raise ConfigError(f"{key}: per-task values are resolved before the config is built")
        if table is None:
            out[name] = value
        else:
            stages.setdefault(table, {})[name] = value
    if stages:
        if cls is not None and STAGE_OVERRIDES not in {f.name for f in dataclasses.fields(cls)}:
            key = next(f"{t}.{k}" for t, d in stages.items() for k in d)
            raise ConfigError(f"{key}: {cls.__name__} has no stages, so it takes no per-stage values")
        merged = {t: dict(d) for t, d in (out.get(STAGE_OVERRIDES) or {}).items()}
        for t, d in stages.items():
            merged.setdefault(t, {}).update(d)
        out[STAGE_OVERRIDES] = merged
    return out


def defaults_from(path: Path, preset: str = "paper"):
    """Class decorator (under ``@dataclass``): every field named in preset ``preset`` of ``path``
    (resolved, without any task's values) takes its default from there, inherited fields
    included, so a config dataclass states types and meanings and the presets file states the
    numbers, once. Per-stage values become the default of ``stage_overrides``."""
    import copy
    import functools

    def deco(cls: type) -> type:
        flat = {k: v for k, v in resolve_preset(path, preset).items() if split_key(k)[0] is None}
        values = config_values(flat)
        hints: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            hints.update(klass.__dict__.get("__annotations__", {}))
        own = dict(cls.__dict__.get("__annotations__", {}))
        for key, value in values.items():
            if key not in hints:
                raise ConfigError(f"{path}: preset {preset!r} sets {key!r}, which {cls.__name__} does not have"
                                  f"{did_you_mean(key, hints)}")
            own.setdefault(key, hints[key])  # redeclare an inherited field with its new default
            setattr(cls, key, dataclasses.field(default_factory=functools.partial(copy.deepcopy, value))
                    if isinstance(value, (list, dict)) else value)
        cls.__annotations__ = own
        return cls

    return deco


def _base_file(path: Path, base: str) -> tuple[Path, str]:
    """``"paper"`` -> (this file, "paper"); ``"common:paper"``, ``"gorl:paper"`` -> a shared file
    of gorl/presets; ``"ppo:smoke"`` -> (ppo's presets file, "smoke")."""
    if ":" not in base:
        return Path(path), base
    algo_name, preset = (part.strip() for part in base.split(":", 1))
    if algo_name == COMMON:
        return COMMON_PRESETS, preset
    shared = PRESETS_DIR / f"{algo_name}.yaml"  # a file of gorl/presets (gorl:, gorl_fm:): no registry needed
    if re.fullmatch(r"[a-z_]+", algo_name) and shared.is_file():
        return shared, preset
    sibling = Path(path).with_name(f"{algo_name}.yaml")  # an algorithm's file in the same folder: no
    if re.fullmatch(r"[a-z_]+", algo_name) and sibling.is_file():  # registry needed (ppo_teacher -> ppo)
        return sibling, preset
    from gorl import registry  # late: the registry imports the algorithms, which import this module
    try:
        algo = registry.get(algo_name)
    except KeyError as e:
        raise ConfigError(f"{path}: base {base!r}: {e.args[0]}") from None
    return Path(algo.presets_file), preset


def resolve_preset_sources(path: Path, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Resolve preset ``name`` of ``path`` through its ``base`` chain.

    Returns flat values (plain keys, ``TABLE.key`` per-stage values, ``tasks[TASK]...`` per-task
    values) and, for each, the preset that set it (``"file.yaml:small"``), so that errors and
    ``gorl-bench list`` can say where a value came from.
    """
    seen: list[tuple[Path, str]] = []

    def _resolve(p: Path, n: str, child: str | None) -> tuple[dict[str, Any], dict[str, str]]:
        presets = read_presets(p)
        names = [k for k in presets if k not in RESERVED_KEYS]
        if n not in names:
            where = f"{child}: base: " if child else ""
            raise ConfigError(f"{where}unknown preset {n!r}{did_you_mean(n, names)} in {p}; "
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
        take_shared = body.pop("all_presets", True)
        here = f"{p.name}:{n}"
        if not isinstance(take_shared, bool):
            raise ConfigError(f"{here}: all_presets in a preset must be true or false (take this file's "
                              f"all_presets or not), got {take_shared!r}")
        if base is not None and not isinstance(base, str):
            raise ConfigError(f"{here}: base must be a preset name or 'ALGO:PRESET', got {base!r}")
        base_at = _base_file(p, base) if base else None
        values, origin = _resolve(*base_at, here) if base else ({}, {})
        shared = presets.get("all_presets") or {}
        if shared and take_shared and (base_at is None or Path(base_at[0]).resolve() != p.resolve()):
            if not isinstance(shared, dict):
                raise ConfigError(f"{p}: all_presets must be a mapping, got {shared!r}")
            _apply(values, origin, _flatten(shared, f"{p.name}:all_presets"), f"{p.name}:all_presets")
        _apply(values, origin, _flatten(body, here), here)
        return values, origin

    return _resolve(Path(path), name, None)


def resolve_preset(path: Path, name: str) -> dict[str, Any]:
    return resolve_preset_sources(path, name)[0]


def select_task(values: dict[str, Any], origin: dict[str, str], task: str | None) -> None:
    """Lay task ``task``'s values over the others and drop every task's table (in place).
    ``playground:FingerSpin`` shares the values of ``finger-spin`` (same task, the paper's
    physics), then adds any listed under its own name."""
    names: list[str] = []
    if task:
        from gorl.envs.names import suite_name
        names = [suite_name(task)] if suite_name(task) != task else []
        names.append(task)
    per_task = {k: split_key(k)[0] for k in values}
    for name in names:
        layer = {k[len(f"tasks[{name}]."):]: values[k] for k, t in per_task.items() if t == name}
        where = {k[len(f"tasks[{name}]."):]: origin[k] for k, t in per_task.items() if t == name}
        _apply(values, origin, layer, where)
    for k, t in per_task.items():
        if t is not None:
            values.pop(k, None)
            origin.pop(k, None)


def resolve_values(path: Path, preset: str, task: str | None) -> dict[str, Any]:
    """Preset ``preset`` of ``path`` with task ``task``'s values applied (flat keys)."""
    values, origin = resolve_preset_sources(path, preset)
    select_task(values, origin, task)
    return values


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
    """Build dataclass ``cls`` from ``values`` (plain keys, ``TABLE.key`` per-stage keys or a
    ``stage_overrides`` mapping); unknown keys and bad types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in values:
        if key not in fields and split_key(key)[2] not in fields:
            raise ConfigError(f"unknown {source} key {key!r}{unknown_key_hint(split_key(key)[2], fields)}")
    values = config_values(values, cls)
    if STAGE_OVERRIDES in fields:  # no stage table left (a task's plain values replaced them all): none,
        values.setdefault(STAGE_OVERRIDES, {})  # not the dataclass default (paper's tables)
    kwargs = {k: _coerce(cls, k, v, hints[k]) for k, v in values.items() if k != STAGE_OVERRIDES}
    if STAGE_OVERRIDES in values:
        tables = values[STAGE_OVERRIDES]
        if not isinstance(tables, dict):
            raise ConfigError(f"{STAGE_OVERRIDES}: expected a mapping of stage tables, got {tables!r}")
        kwargs[STAGE_OVERRIDES] = {}
        for table, entries in tables.items():
            if not is_stage_table(table) or not isinstance(entries, dict):
                raise ConfigError(f"{table}: not a stage table (stage0, stage1, ..., later_stages)")
            for key, value in entries.items():
                if key not in fields or key == STAGE_OVERRIDES:
                    raise ConfigError(f"unknown {source} key {table}.{key!r}{unknown_key_hint(key, fields)}")
            kwargs[STAGE_OVERRIDES][table] = {k: _coerce(cls, f"{table}.{k}", v, hints[k])
                                              for k, v in entries.items()}
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
    """Preset -> the task's values -> --set overrides, with the source of every value (flat keys)."""
    values, origin = resolve_preset_sources(presets_file, preset)
    fields = {f.name for f in dataclasses.fields(cls)} - {STAGE_OVERRIDES}
    for key in values:
        name = split_key(key)[2]
        if name not in fields:
            src = "" if origin[key] == f"{Path(presets_file).name}:{preset}" else f" (set in {origin[key]})"
            raise ConfigError(f"{presets_file}: unknown preset key {key!r}{unknown_key_hint(name, fields)}{src}")
    select_task(values, origin, task)
    layer = {}
    for key, value in (overrides or {}).items():
        t, _, name = split_key(key, fields)
        if t is not None:
            raise ConfigError(f"--set {key}: per-task values belong in a preset; --set applies to this run's task")
        if name not in fields:
            raise ConfigError(f"unknown override key {key!r}{unknown_key_hint(name, fields)}")
        layer[key] = value
    _apply(values, origin, layer, "--set")
    return values, origin


def build_config(cls: type, presets_file: Path, preset: str, task: str,
                 overrides: dict[str, Any] | None = None):
    """Preset -> the task's values -> --set overrides -> validated dataclass."""
    values, _ = _layered(cls, presets_file, preset, task, overrides)
    cfg = make_config(cls, values, source="override")
    from gorl.envs.names import PLAYGROUND_PREFIX
    if getattr(cfg, "rollout", None) == "scan" and not str(task).startswith(PLAYGROUND_PREFIX):  # the one task rule
        raise ConfigError(f"rollout=scan needs a playground: task (this one: {task!r}); use rollout=auto or step")
    return cfg


def resolve_config_sources(cls: type, presets_file: Path, preset: str, task: str | None = None,
                           overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """Every hyperparameter of ``cls`` as :func:`build_config` resolves it, and where each value
    comes from (``"ppo.yaml:small"``, ``"common.yaml:paper"``, a task's value, ``--set``, or
    ``"dataclass default"``). Per-stage values appear as ``TABLE.key`` with their own source."""
    values, origin = _layered(cls, presets_file, preset, task, overrides)
    cfg = make_config(cls, values, source="override")
    full = config_to_dict(cfg)
    full.pop(STAGE_OVERRIDES, None)
    full.update({f"{t}.{k}": v for t, d in (getattr(cfg, STAGE_OVERRIDES, None) or {}).items() for k, v in d.items()})
    return full, {k: origin.get(k, "dataclass default") for k in full}


def resolve_stage_sources(cls: type, presets_file: Path, preset: str, task: str | None = None,
                          overrides: dict[str, Any] | None = None) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """For a staged config (GoRL): per stage k, the values of ``cfg.for_stage(k)`` and where each
    comes from (the plain value's source, or that of the stage table that set it)."""
    values, origin = _layered(cls, presets_file, preset, task, overrides)
    cfg = make_config(cls, values, source="override")
    out = []
    for k in range(cfg.num_stages):
        stage = config_to_dict(cfg.for_stage(k))
        stage.pop(STAGE_OVERRIDES, None)
        src = {}
        for key in stage:
            src[key] = origin.get(key, "dataclass default")
            for table in stage_tables(k):
                if f"{table}.{key}" in origin:
                    src[key] = f"{origin[f'{table}.{key}']} {table}"
        out.append((stage, src))
    return out


def config_to_dict(cfg) -> dict[str, Any]:
    d = dataclasses.asdict(cfg)
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}
