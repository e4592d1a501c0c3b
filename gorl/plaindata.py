"""A run's state as tensors and plain data, and back: what a checkpoint may hold.

Checkpoints are read like every other file of a run directory, with
``torch.load(weights_only=True)`` (:func:`gorl.rundir.load_tensors`), which accepts tensors,
numbers, strings, bytes, bools, None, lists, tuples, sets and dicts, and runs nothing.
:func:`encode` writes the few other kinds a run's state holds as such data, losslessly, and
:func:`decode` reads them back; anything else is :class:`NotPlain`, naming where it is, when
the checkpoint is written:

- a numpy array -> ``{"__ndarray__": tensor}`` (same dtype, shape and values; a dtype torch has
  no tensor for -> ``{"__ndarray__": bytes, "dtype": str, "shape": list}``), a numpy scalar ->
  ``{"__npscalar__": 0-d tensor or the same}``, a numpy dtype -> ``{"__dtype__": str}``;
- ``numpy.random.RandomState`` -> ``{"__RandomState__": get_state(legacy=False)}``, a
  ``numpy.random.Generator`` -> ``{"__Generator__": bit_generator.state}``.

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
from typing import Any

import numpy as np
import torch

_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")
_CODE = (types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.BuiltinMethodType,
         types.ModuleType, type, types.MethodWrapperType, types.WrapperDescriptorType, types.MethodDescriptorType,
         classmethod, staticmethod, property)
_TAGS = ("__ndarray__", "__npscalar__", "__dtype__", "__RandomState__", "__Generator__")
"""The keys :func:`decode` reads as values (a mapping of the state that has one is refused)."""


class NotPlain(TypeError):
    """Something in a run's state that is not tensors or plain data (its path and type said)."""


def _array(a: np.ndarray) -> dict:
    if a.dtype.hasobject:
        raise NotPlain(f"a numpy array of dtype {a.dtype}")
    a = a.copy(order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    try:
        if not a.dtype.isnative:
            raise TypeError
        return {"__ndarray__": torch.from_numpy(a)}
    except TypeError:  # no tensor dtype for it (strings, big-endian, ...): its bytes
        return {"__ndarray__": a.tobytes(), "dtype": a.dtype.str, "shape": list(a.shape)}


def _unarray(d: dict) -> np.ndarray:
    x = d["__ndarray__"]
    if isinstance(x, torch.Tensor):
        return x.numpy().copy()
    return np.frombuffer(x, dtype=np.dtype(d["dtype"])).reshape(d["shape"]).copy()


def encode(obj: Any, path: str = "state") -> Any:
    """``obj`` as tensors and plain data (see the module docstring); :class:`NotPlain` names
    the first thing that is neither."""
    if isinstance(obj, np.generic):  # first: np.float64 is a float, np.str_ a str
        return {"__npscalar__": _array(np.asarray(obj))["__ndarray__"], **_scalar_meta(obj)}
    if obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, torch.Tensor, torch.dtype,
                                       torch.device, torch.Size)):
        return obj
    if isinstance(obj, np.ndarray):
        try:
            return _array(obj)
        except NotPlain as e:
            raise NotPlain(f"{path}: {e}") from None
    if isinstance(obj, np.dtype):
        return {"__dtype__": obj.str}
    if isinstance(obj, np.random.RandomState):
        return {"__RandomState__": encode(obj.get_state(legacy=False), f"{path}.get_state()")}
    if isinstance(obj, np.random.Generator):
        return {"__Generator__": encode(obj.bit_generator.state, f"{path}.bit_generator.state")}
    if isinstance(obj, dict):
        out = type(obj)() if type(obj) is not dict and _is_ordered(obj) else {}
        for k, v in obj.items():
            if not (k is None or isinstance(k, (bool, int, float, str))):
                raise NotPlain(f"{path}: a key of type {type(k).__name__} ({k!r})")
            out[k] = encode(v, f"{path}[{k!r}]")
        if any(t in out for t in _TAGS):
            raise NotPlain(f"{path}: a mapping with a reserved key ({[t for t in _TAGS if t in out][0]})")
        return out
    if isinstance(obj, (list, tuple)) and type(obj) in (list, tuple):
        enc = [encode(v, f"{path}[{i}]") for i, v in enumerate(obj)]
        return enc if isinstance(obj, list) else tuple(enc)
    if type(obj) is set:
        return {encode(v, f"{path}{{}}") for v in obj}
    raise NotPlain(f"{path}: {type(obj).__module__}.{type(obj).__qualname__} is not tensors or plain data")


def _is_ordered(obj: dict) -> bool:
    from collections import OrderedDict
    return type(obj) is OrderedDict


def _scalar_meta(x: np.generic) -> dict:
    return {} if isinstance(_array(np.asarray(x))["__ndarray__"], torch.Tensor) else \
        {"dtype": x.dtype.str, "shape": []}


def decode(obj: Any) -> Any:
    """The inverse of :func:`encode`."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            return _unarray(obj)
        if "__npscalar__" in obj:
            return _unarray({**obj, "__ndarray__": obj["__npscalar__"]})[()]
        if "__dtype__" in obj:
            return np.dtype(obj["__dtype__"])
        if "__RandomState__" in obj:
            rs = np.random.RandomState()
            rs.set_state(decode(obj["__RandomState__"]))
            return rs
        if "__Generator__" in obj:
            st = decode(obj["__Generator__"])
            name = st.get("bit_generator")
            if name not in _BIT_GENERATORS:
                raise ValueError(f"unknown numpy bit generator {name!r}")
            bg = getattr(np.random, name)()
            bg.state = st
            return np.random.Generator(bg)
        out = type(obj)() if _is_ordered(obj) else {}
        for k, v in obj.items():
            out[k] = decode(v)
        return out
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(decode(v) for v in obj)
    if isinstance(obj, set):
        return {decode(v) for v in obj}
    return obj


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
    if not top and (x is None or isinstance(x, (bool, int, float, complex, str, bytes, torch.Tensor, np.generic,
                                                np.dtype))):
        encode(x, path)  # raises NotPlain if it is not
        return x
    if isinstance(x, _CODE):
        return {"__code__": getattr(x, "__qualname__", type(x).__name__)}
    if id(x) in memo:
        return {"__ref__": memo[id(x)][0]}
    memo[id(x)] = (list(at), x)  # x kept alive: ids stay unique while capturing
    if isinstance(x, (np.ndarray, np.random.RandomState, np.random.Generator)):
        encode(x, path)
        return _copy(x)
    if type(x) in (dict, list, tuple) or _is_ordered(x):
        items = x.items() if isinstance(x, dict) else enumerate(x)
        out = {k: _capture(v, f"{path}[{k!r}]", [*at, ("item", k)], memo) for k, v in items}
        if isinstance(x, dict):
            if not all(k is None or isinstance(k, (bool, int, float, str)) for k in out):
                raise NotPlain(f"{path}: a mapping with keys that are not plain data")
            return {"__dict__": out}
        return {"__list__" if type(x) is list else "__tuple__": [out[i] for i in range(len(x))]}
    if type(x) is set:
        encode(x, path)
        return set(x)
    attrs = getattr(x, "__dict__", None)
    if attrs is None or getattr(type(x), "__slots__", None):
        raise NotPlain(f"{path}: {_qualname(x)} has no plain state (no attributes to save)")
    return {"__type__": _qualname(x),
            "__attrs__": {k: _capture(v, f"{path}.{k}", [*at, ("attr", k)], memo) for k, v in attrs.items()}}


def _copy(x):
    """A snapshot of a mutable leaf (the env goes on changing the original)."""
    if isinstance(x, np.ndarray):
        return x.copy()
    return decode(encode(x))  # a generator in its current state


def _same(a: Any, b: Any) -> bool:
    """Whether two states are equal: as :func:`encode` writes them, tensors by dtype, shape and bits."""
    return _same_encoded(encode(a), encode(b))


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
        if "__dict__" in st:
            return {k: _build(v, f"{path}[{k!r}]") for k, v in st["__dict__"].items()}
        if "__list__" in st:
            return [_build(v, f"{path}[{i}]") for i, v in enumerate(st["__list__"])]
        if "__tuple__" in st:
            return tuple(_build(v, f"{path}[{i}]") for i, v in enumerate(st["__tuple__"]))
    return _copy(st) if isinstance(st, (np.ndarray, np.random.RandomState, np.random.Generator)) else st


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
        if "__dict__" in saved and type(cur) is dict and cur.keys() == saved["__dict__"].keys():
            for k, v in saved["__dict__"].items():
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
            if _same(_capture(cur, path, [], {}), saved):
                return
        except NotPlain:
            pass
    _set(holder, kind, key, _build(saved, path))


_MISSING = object()
