"""A run's state as tensors and plain data, and back: what a checkpoint may hold.

Checkpoints are read like every other file of a run directory, with
``torch.load(weights_only=True)`` (:func:`gorl.rundir.load_tensors`), which accepts tensors,
numbers, strings, bools, None, lists, tuples, sets and dicts, and runs nothing.
:func:`encode` writes the few other kinds a run's state holds as such data, losslessly, and
:func:`decode` reads them back; anything else is :class:`NotPlain`, naming where it is, when
the checkpoint is written:

- a numpy array -> ``{"__ndarray__": [start, nbytes], "dtype": str, "shape": list}``, its bytes
  at ``start`` in the one uint8 tensor under ``"__arrays__"`` (same dtype, shape and bits); a
  numpy scalar -> the same of its 0-d array plus ``"scalar": True``; ``bytes`` -> the same of
  its uint8 array plus ``"bytes": True``; a numpy dtype -> ``{"__dtype__": str}``;
- ``numpy.random.RandomState`` -> ``{"__RandomState__": get_state(legacy=False)}``, a
  ``numpy.random.Generator`` -> ``{"__Generator__": bit_generator.state, "seed_seq": its
  SeedSequence's entropy, spawn key, pool size and children spawned}``.

Decoding makes only numpy arrays, scalars, dtypes and generators (of numpy's own bit
generators): the file chooses values, never which code runs.

Objects without a state API of their own (a dm_control task, a Gymnasium env and its
wrappers) are saved with :func:`object_state` and restored onto a freshly built object of the
same construction with :func:`restore_object`: every attribute, recursively through the
objects they hold, as plain data; functions, methods, classes and modules are code and are
left as construction made them. An attribute that is none of these (an extension object
without ``__dict__``) makes :func:`object_state` raise :class:`NotPlain`: such an object has
no exact plain state.
"""
from __future__ import annotations

import types
from collections import OrderedDict
from typing import Any

import numpy as np
import torch

_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.BuiltinMethodType,
         types.ModuleType, type, types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
         classmethod, staticmethod, property)
_TAGS = ("__ndarray__", "__dtype__", "__RandomState__", "__Generator__")
"""The keys :func:`decode` reads as values (a mapping of the state that has one is refused)."""
ARRAYS = "__arrays__"
"""The key of the one uint8 tensor that holds every numpy array's bytes (of a state :func:`encode` wrote)."""
_PLAIN = (type(None), bool, int, float, complex, str)


class NotPlain(TypeError):
    """Something in a run's state that is not tensors or plain data (its path and type said)."""


class _RandomStateSnapshot:
    """A ``RandomState``'s state as :func:`object_state` keeps it (its ``get_state`` dict: a
    copy without building a generator, which costs ~3x more); encoded as the generator is."""

    __slots__ = ("state",)

    def __init__(self, rs: np.random.RandomState):
        self.state = rs.get_state(legacy=False)

    def build(self) -> np.random.RandomState:
        rs = np.random.RandomState(0)
        rs.set_state(self.state)
        return rs


class _Arrays:
    """The bytes of a state's numpy arrays, end to end: one tensor in the file instead of one per
    array (a host env set's state has ~20 small arrays per env; thousands of tensors make
    ``torch.save``/``torch.load`` seconds slower)."""

    def __init__(self):
        self.chunks: list[bytes] = []
        self.size = 0

    def add(self, a: np.ndarray, path: str) -> dict:
        if a.dtype.hasobject:
            raise NotPlain(f"{path}: a numpy array of dtype {a.dtype}")
        data = a.tobytes(order="C")
        self.chunks.append(data)
        self.size += len(data)
        return {"__ndarray__": [self.size - len(data), len(data)], "dtype": a.dtype.str, "shape": list(a.shape)}

    def tensor(self) -> torch.Tensor:
        return torch.from_numpy(np.frombuffer(bytearray(b"".join(self.chunks)), np.uint8))


def encode(state: dict, path: str = "state") -> dict:
    """``state`` (a mapping) as tensors and plain data (see the module docstring), with the
    bytes of its numpy arrays in one uint8 tensor under :data:`ARRAYS`; :class:`NotPlain` names
    the first thing that is neither (subclasses included: an ``IntEnum``, a ``defaultdict``,
    which ``torch.save`` would pickle as objects)."""
    if ARRAYS in state:
        raise NotPlain(f"{path}: a mapping with the reserved key {ARRAYS!r}")
    arrays = _Arrays()
    out = _encode(state, path, arrays)
    if not isinstance(out, dict):
        raise NotPlain(f"{path}: {_qualname(state)} is not a mapping")
    out[ARRAYS] = arrays.tensor()
    return out


def _encode(obj: Any, path: str, arrays: _Arrays) -> Any:
    if type(obj) in _PLAIN or isinstance(obj, (torch.Tensor, torch.dtype, torch.device, torch.Size)):
        return obj
    if type(obj) is bytes:  # (torch.save writes an empty bytes as a call weights_only refuses)
        return dict(arrays.add(np.frombuffer(obj, np.uint8), path), bytes=True)
    if isinstance(obj, (np.ndarray, np.generic)):
        enc = arrays.add(np.asarray(obj), path)
        return dict(enc, scalar=True) if isinstance(obj, np.generic) else enc
    if isinstance(obj, np.dtype):
        return {"__dtype__": obj.str}
    if type(obj) in (np.random.RandomState, _RandomStateSnapshot):
        st = obj.state if type(obj) is _RandomStateSnapshot else obj.get_state(legacy=False)
        return {"__RandomState__": _encode(st, f"{path}.get_state()", arrays)}
    if type(obj) is np.random.Generator:
        bg, seq = obj.bit_generator, obj.bit_generator.seed_seq
        out = {"__Generator__": _encode(bg.state, f"{path}.bit_generator.state", arrays)}
        if type(seq) is np.random.SeedSequence:  # what spawn() derives children from
            out["seed_seq"] = _encode({"entropy": seq.entropy, "spawn_key": seq.spawn_key,
                                       "pool_size": seq.pool_size, "n_children_spawned": seq.n_children_spawned},
                                      f"{path}.seed_seq", arrays)
        return out
    if type(obj) in (dict, OrderedDict):
        out = type(obj)()
        for k, v in obj.items():
            if type(k) not in _PLAIN:
                raise NotPlain(f"{path}: a key of type {type(k).__name__} ({k!r})")
            out[k] = _encode(v, f"{path}[{k!r}]", arrays)
        reserved = [t for t in _TAGS if t in out]
        if reserved:
            raise NotPlain(f"{path}: a mapping with the reserved key {reserved[0]!r}")
        return out
    if type(obj) in (list, tuple):
        enc = [_encode(v, f"{path}[{i}]", arrays) for i, v in enumerate(obj)]
        return enc if type(obj) is list else tuple(enc)
    if type(obj) is set:
        return {_encode(v, f"{path}{{}}", arrays) for v in obj}
    raise NotPlain(f"{path}: {_qualname(obj)} is not tensors or plain data")


def decode(state: dict) -> dict:
    """The inverse of :func:`encode`."""
    state = dict(state)
    arrays = state.pop(ARRAYS, None)
    return _decode(state, None if arrays is None else arrays.numpy())


def _decode(obj: Any, arrays: np.ndarray | None) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            (start, n), dtype = obj["__ndarray__"], np.dtype(obj["dtype"])
            a = np.frombuffer(arrays[start:start + n], dtype=dtype).reshape(obj["shape"]).copy()
            return a.tobytes() if obj.get("bytes") else a[()] if obj.get("scalar") else a
        if "__dtype__" in obj:
            return np.dtype(obj["__dtype__"])
        if "__RandomState__" in obj:
            rs = np.random.RandomState(0)  # (seeded: no entropy drawn; the state is set next)
            rs.set_state(_decode(obj["__RandomState__"], arrays))
            return rs
        if "__Generator__" in obj:
            st = _decode(obj["__Generator__"], arrays)
            name = st.get("bit_generator")
            if name not in _BIT_GENERATORS:
                raise ValueError(f"unknown numpy bit generator {name!r}")
            seq = _decode(obj.get("seed_seq"), arrays) or {"entropy": 0}
            bg = getattr(np.random, name)(np.random.SeedSequence(**seq))
            bg.state = st
            return np.random.Generator(bg)
        out = type(obj)()  # dict or OrderedDict (a state dict)
        for k, v in obj.items():
            out[k] = _decode(v, arrays)
        return out
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_decode(v, arrays) for v in obj)
    if isinstance(obj, set):
        return {_decode(v, arrays) for v in obj}
    return obj


def _check(x: Any, path: str) -> None:
    """:class:`NotPlain` if ``x`` is not tensors or plain data."""
    _encode(x, path, _Arrays())


# -- objects without a state API: their attributes, restored onto a fresh object ----------------
def object_state(obj: Any, path: str = "object") -> dict:
    """Every attribute of ``obj`` (recursively through the objects it holds) as plain data:
    ``{"__attrs__": {name: value}, "__type__": qualified class name}``. An object reached twice
    (an alias, a cycle) is ``{"__ref__": [names from obj]}`` the second time. Raises
    :class:`NotPlain` naming the attribute that has no plain state."""
    return _capture(obj, path, [], {}, top=True)


def _qualname(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__qualname__}"


def _capture(x: Any, path: str, at: list, memo: dict, top: bool = False) -> Any:
    if not top and (type(x) in (*_PLAIN, bytes) or isinstance(x, (torch.Tensor, np.generic, np.dtype))):
        _check(x, path)
        return x
    if isinstance(x, _CODE):
        return {"__code__": getattr(x, "__qualname__", type(x).__name__)}
    if id(x) in memo:
        return {"__ref__": memo[id(x)][0]}
    memo[id(x)] = (list(at), x)  # x kept alive: ids stay unique while capturing
    if isinstance(x, (np.ndarray, np.random.RandomState, np.random.Generator)):
        if isinstance(x, np.ndarray) and x.dtype.hasobject:
            raise NotPlain(f"{path}: a numpy array of dtype {x.dtype}")
        return _RandomStateSnapshot(x) if type(x) is np.random.RandomState else _copy(x)
    if type(x) in (dict, OrderedDict, list, tuple):
        items = x.items() if isinstance(x, dict) else enumerate(x)
        out = {k: _capture(v, f"{path}[{k!r}]", [*at, ("item", k)], memo) for k, v in items}
        if isinstance(x, dict):
            if not all(type(k) in _PLAIN for k in out):
                raise NotPlain(f"{path}: a mapping with keys that are not plain data")
            return {"__odict__" if type(x) is OrderedDict else "__dict__": out}
        return {"__list__" if type(x) is list else "__tuple__": [out[i] for i in range(len(x))]}
    if type(x) is set:
        _check(x, path)
        return set(x)
    attrs = getattr(x, "__dict__", None)
    if attrs is None or getattr(type(x), "__slots__", None):
        raise NotPlain(f"{path}: {_qualname(x)} has no plain state (no attributes to save)")
    return {"__type__": _qualname(x),
            "__attrs__": {k: _capture(v, f"{path}.{k}", [*at, ("attr", k)], memo) for k, v in attrs.items()}}


def _copy(x):
    """A snapshot of a mutable leaf (the env goes on changing the original): an array, or a
    numpy generator in its current state."""
    if isinstance(x, np.ndarray):
        return x.copy()
    if isinstance(x, np.random.RandomState):
        return _RandomStateSnapshot(x).build()
    if isinstance(x, _RandomStateSnapshot):
        return x.build()
    return decode(encode({"x": x}))["x"]


def _same_leaf(cur: Any, saved: Any) -> bool:
    """Whether the value ``cur`` already equals the saved leaf (bit for bit); a numpy
    generator of the same kind is set to the saved state in place (its holders keep it)."""
    if type(cur) is np.random.RandomState and type(saved) is _RandomStateSnapshot:
        cur.set_state(saved.state)
        return True
    if type(cur) is not type(saved):  # a tuple, set or mapping held in place: compare the states
        return isinstance(saved, dict) and _same(_capture(cur, "", [], {}), saved)
    if isinstance(cur, np.random.RandomState):
        cur.set_state(saved.get_state())
        return True
    if isinstance(cur, np.random.Generator):
        if type(cur.bit_generator) is not type(saved.bit_generator):
            return False
        cur.bit_generator.state = saved.bit_generator.state
        return True
    if isinstance(cur, np.ndarray):
        return cur.dtype == saved.dtype and cur.shape == saved.shape and cur.tobytes() == saved.tobytes()
    if type(cur) in (float, complex):
        return repr(cur) == repr(saved)  # -0.0 and NaN as they are
    if type(cur) in _PLAIN:
        return cur == saved
    return _same(_capture(cur, "", [], {}), saved)


def _same(a: Any, b: Any) -> bool:
    """Whether two states are equal: as :func:`encode` writes them, tensors by dtype, shape and bits."""
    return _same_encoded(encode({"v": a}), encode({"v": b}))


def _same_encoded(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype \
            and a.shape == b.shape and _same_bits(a, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_encoded(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_encoded(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Bit for bit (NaNs and signed zeros included)."""
    a, b = a.detach().cpu().contiguous().reshape(-1), b.detach().cpu().contiguous().reshape(-1)
    return a.numel() == 0 or bool(torch.equal(a.view(torch.uint8), b.view(torch.uint8)))


def _build(st: Any, path: str) -> Any:
    """A value of :func:`_capture` as a new value (no objects: those are restored in place)."""
    if isinstance(st, dict):
        if "__attrs__" in st or "__ref__" in st or "__code__" in st:
            raise ValueError(f"{path}: saved as an object or code, which cannot be made anew from a file")
        for tag, kind in (("__dict__", dict), ("__odict__", OrderedDict)):
            if tag in st:
                return kind((k, _build(v, f"{path}[{k!r}]")) for k, v in st[tag].items())
        if "__list__" in st:
            return [_build(v, f"{path}[{i}]") for i, v in enumerate(st["__list__"])]
        if "__tuple__" in st:
            return tuple(_build(v, f"{path}[{i}]") for i, v in enumerate(st["__tuple__"]))
    return _copy(st) if isinstance(st, (np.ndarray, np.random.RandomState, np.random.Generator,
                                        _RandomStateSnapshot)) else st


def restore_object(obj: Any, st: dict, path: str = "object") -> None:
    """Make ``obj`` (built as the saved object was) hold the state :func:`object_state` saved:
    objects (of the same class) and the dicts and lists holding them are restored in place,
    each other value is set where it differs; aliases are re-linked last. Raises ValueError
    naming a value that cannot be restored."""
    refs: list = []
    _restore_object(obj, st, path, refs)
    for holder, kind, key, where, p in refs:
        src = obj
        for k, name in where:
            src = getattr(src, name) if k == "attr" else src[name]
        if _get(holder, kind, key) is not src:
            _set(holder, kind, key, src)


def _get(holder: Any, kind: str, key: Any) -> Any:
    if kind == "attr":
        return getattr(holder, key, _MISSING)
    try:
        return holder[key]
    except (KeyError, IndexError):
        return _MISSING


def _set(holder: Any, kind: str, key: Any, value: Any) -> None:
    if kind == "attr":
        setattr(holder, key, value)
    else:
        holder[key] = value


def _restore_object(obj: Any, st: dict, path: str, refs: list) -> None:
    if st.get("__type__") != _qualname(obj):
        raise ValueError(f"{path}: saved as {st.get('__type__')}, but this env has {_qualname(obj)} there")
    for k, saved in st["__attrs__"].items():
        _restore(obj, "attr", k, saved, f"{path}.{k}", refs)


def _restore(holder: Any, kind: str, key: Any, saved: Any, path: str, refs: list) -> None:
    cur = _get(holder, kind, key)
    if isinstance(saved, dict):
        if "__ref__" in saved:
            refs.append((holder, kind, key, saved["__ref__"], path))
            return
        if "__attrs__" in saved:
            if cur is _MISSING or cur is None:
                raise ValueError(f"{path}: saved as an object, which this env does not have")
            _restore_object(cur, saved, path, refs)
            return
        tag = "__dict__" if "__dict__" in saved else "__odict__"
        if tag in saved and type(cur) in (dict, OrderedDict) and cur.keys() == saved[tag].keys():
            for k, v in saved[tag].items():
                _restore(cur, "item", k, v, f"{path}[{k!r}]", refs)
            return
        if "__list__" in saved and type(cur) is list and len(cur) == len(saved["__list__"]):
            for i, v in enumerate(saved["__list__"]):
                _restore(cur, "item", i, v, f"{path}[{i}]", refs)
            return
        if "__code__" in saved and cur is not _MISSING and isinstance(cur, _CODE):
            return  # code: as construction made it
    if cur is not _MISSING:
        try:
            if _same_leaf(cur, saved):
                return
        except NotPlain:
            pass
    _set(holder, kind, key, _build(saved, path))


_MISSING = object()
