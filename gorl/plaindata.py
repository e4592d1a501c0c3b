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
#
# Two callers: gorl.envs.dmc saves a dm_control task (bools, numbers, strings, lists of strings, a
# few arrays, its RandomState) and gorl.envs.gym_adapter a Gymnasium env through its wrappers
# (objects: wrappers, spaces, EnvSpec, a frozen dataclass; dicts, tuples, arrays, a Generator, the
# env class as EnvSpec.entry_point). object_state keeps each value as:
#
#   None, bool, int, float, complex, str,   itself (immutable)
#   bytes, numpy scalar, numpy dtype
#   function, method, class, module         {"__code__": its name}: left as construction made it
#   an instance of one of the ``kept`` types {"__kept__": its class}: left as construction made it
#   (a simulator's objects, whose owner saves their state its own way)
#   anything below met a second time        {"__ref__": the steps from the top object to where it was
#   (an alias, a cycle)                     first met}: restored as the value restored there
#   numpy array, tensor, set                a copy
#   numpy RandomState                       its get_state() (a _RandomStateSnapshot)
#   numpy Generator                         a copy
#   dict, OrderedDict, list, tuple          {"__dict__" | "__odict__" | "__list__" | "__tuple__": items}
#   any other object                        {"__type__": its class, "__attrs__": its __dict__}
#
# restore_object writes them back into the fresh object's __dict__ (the inverse of reading it; a
# frozen dataclass refuses setattr). A checkpoint may not choose which classes are built, so an
# object is restored in place, onto the object of the same class that construction made there;
# dicts and lists are refilled in place (they may hold such objects: a Dict space's spaces) and
# generators set in place (cheaper than building one; whoever else holds one keeps it). Every
# other value is replaced by a copy of the saved one, which stays as it was: a saved state can be
# restored again (a fixed_initial reset restores one saved state many times).


def object_state(obj: Any, path: str = "object", kept: tuple[type, ...] = ()) -> dict:
    """Every attribute of ``obj``, recursively through the objects it holds, as plain data (see
    above): ``{"__type__": qualified class name, "__attrs__": {name: value}}``. Instances of the
    ``kept`` types are left as construction made them (the caller saves their state its own way,
    e.g. a MuJoCo ``MjData``'s through ``mj_getState``). Raises :class:`NotPlain` naming the
    attribute (``path.attr[key]...``) that has no plain state."""
    return _capture(obj, path, (), {}, kept)


def _qualname(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__qualname__}"


def _capture(x: Any, path: str, at: tuple, memo: dict, kept: tuple[type, ...]) -> Any:
    """``x`` as :func:`object_state` keeps it; ``at``: the steps from the top object to ``x``
    (``("attr", name)`` or ``("item", key)``), ``memo``: id -> (steps, object) of the values met."""
    if type(x) in _PLAIN:
        return x
    if type(x) is bytes or isinstance(x, (np.generic, np.dtype)):
        _check(x, path)  # (a numpy scalar of a dtype holding Python objects is not plain data)
        return x
    if isinstance(x, _CODE):
        return {"__code__": getattr(x, "__qualname__", type(x).__name__)}
    if kept and isinstance(x, kept):
        return {"__kept__": _qualname(x)}
    if id(x) in memo:
        return {"__ref__": memo[id(x)][0]}
    memo[id(x)] = (list(at), x)  # x kept alive: ids stay unique while capturing
    if isinstance(x, (np.ndarray, torch.Tensor)) or type(x) is set:
        _check(x, path)
        return x.clone() if isinstance(x, torch.Tensor) else x.copy()
    if type(x) is np.random.RandomState:
        return _RandomStateSnapshot(x)
    if type(x) is np.random.Generator:
        return _copy_generator(x)
    if type(x) in (dict, OrderedDict):
        for k in x:
            if type(k) not in _PLAIN:
                raise NotPlain(f"{path}: a key of type {type(k).__name__} ({k!r})")
        items = {k: _capture(v, f"{path}[{k!r}]", (*at, ("item", k)), memo, kept) for k, v in x.items()}
        return {"__dict__" if type(x) is dict else "__odict__": items}
    if type(x) in (list, tuple):
        items = [_capture(v, f"{path}[{i}]", (*at, ("item", i)), memo, kept) for i, v in enumerate(x)]
        return {"__list__" if type(x) is list else "__tuple__": items}
    attrs = getattr(x, "__dict__", None)
    if attrs is None or getattr(type(x), "__slots__", None):  # (slots hold state outside __dict__)
        raise NotPlain(f"{path}: {_qualname(x)} has no plain state (no attributes to save)")
    return {"__type__": _qualname(x),
            "__attrs__": {k: _capture(v, f"{path}.{k}", (*at, ("attr", k)), memo, kept) for k, v in attrs.items()}}


def _copy_generator(g: np.random.Generator) -> np.random.Generator:
    """A copy of ``g`` in its current state, its SeedSequence included (what ``spawn`` uses)."""
    return decode(encode({"g": g}))["g"]


def restore_object(obj: Any, st: dict, path: str = "object") -> None:
    """Make ``obj`` (built as the saved object was) hold the state :func:`object_state` saved
    (see above). Raises ValueError naming a value that cannot be restored: an object saved where
    this one holds another class or nothing, code saved where it holds none."""
    _restore(obj, st, path, (), {})


def _restore(cur: Any, saved: Any, path: str, at: tuple, restored: dict) -> Any:
    """The value to hold at ``path`` from now on: ``saved`` restored onto ``cur`` (what the fresh
    object holds there now, or _MISSING); ``at``: the steps to ``path``; ``restored``: steps ->
    each value restored so far (what an alias, saved as ``{"__ref__": steps}``, becomes)."""
    if type(saved) in _PLAIN:
        return saved
    if not isinstance(saved, dict):  # an array, a generator, ...: no tags, nothing inside
        out = restored[at] = _restore_leaf(cur, saved)
        return out
    if "__ref__" in saved:
        steps = tuple(saved["__ref__"])
        if steps not in restored:
            raise ValueError(f"{path}: saved as the value at {steps}, which was not restored before it")
        return restored[steps]
    if "__code__" in saved:
        if not isinstance(cur, _CODE):
            raise ValueError(f"{path}: saved as code ({saved['__code__']}), which this object does not have there")
        return cur
    if "__kept__" in saved:
        if cur is _MISSING or _qualname(cur) != saved["__kept__"]:
            has = "nothing" if cur is _MISSING else _qualname(cur)
            raise ValueError(f"{path}: saved as a kept {saved['__kept__']}, but this object has {has} there")
        return cur
    if "__attrs__" in saved:
        if cur is _MISSING or _qualname(cur) != saved["__type__"]:
            has = "nothing" if cur is _MISSING else _qualname(cur)
            raise ValueError(f"{path}: saved as {saved['__type__']}, but this object has {has} there")
        restored[at] = cur  # (before its attributes: they may refer back to it)
        attrs = vars(cur)
        for k, v in saved["__attrs__"].items():
            attrs[k] = _restore(attrs.get(k, _MISSING), v, f"{path}.{k}", (*at, ("attr", k)), restored)
        return cur
    if "__dict__" in saved or "__odict__" in saved:
        kind, items = (dict, saved["__dict__"]) if "__dict__" in saved else (OrderedDict, saved["__odict__"])
        out = restored[at] = cur if type(cur) is kind else kind()
        new = {k: _restore(out.get(k, _MISSING), v, f"{path}[{k!r}]", (*at, ("item", k)), restored)
               for k, v in items.items()}
        out.clear()
        out.update(new)
        return out
    if "__list__" in saved:
        out = restored[at] = cur if type(cur) is list else []
        new = [_restore(out[i] if i < len(out) else _MISSING, v, f"{path}[{i}]", (*at, ("item", i)), restored)
               for i, v in enumerate(saved["__list__"])]
        out[:] = new
        return out
    old = cur if type(cur) is tuple else ()  # a tuple is made anew, the objects in it restored in place
    out = restored[at] = tuple(_restore(old[i] if i < len(old) else _MISSING, v, f"{path}[{i}]",
                                        (*at, ("item", i)), restored) for i, v in enumerate(saved["__tuple__"]))
    return out


def _restore_leaf(cur: Any, saved: Any) -> Any:
    """A value that is not plain data or tagged: a generator set in place, else a copy."""
    if type(saved) in (np.random.RandomState, _RandomStateSnapshot):
        rs = cur if type(cur) is np.random.RandomState else np.random.RandomState(0)
        rs.set_state(saved.state if type(saved) is _RandomStateSnapshot else saved.get_state(legacy=False))
        return rs
    if type(saved) is np.random.Generator:
        if type(cur) is not np.random.Generator or type(cur.bit_generator) is not type(saved.bit_generator):
            return _copy_generator(saved)
        cur.bit_generator.state = saved.bit_generator.state
        return cur
    if isinstance(saved, (np.ndarray, torch.Tensor)) or type(saved) is set:
        return saved.clone() if isinstance(saved, torch.Tensor) else saved.copy()
    return saved  # immutable: bytes, a numpy scalar or dtype


_MISSING = object()
