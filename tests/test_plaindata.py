"""gorl.plaindata's object walker: ``object_state`` saves an object without a state API of its
own (a dm_control task, a Gymnasium env with its wrappers) as plain data, and ``restore_object``
puts it back onto a freshly built object of the same construction, exactly.

The objects here are built the way those envs are: nested objects, dicts, lists, tuples, a
frozen dataclass, code held as data (a gym ``EnvSpec``'s ``entry_point``), numpy arrays and
generators."""
import dataclasses
import threading
from collections import OrderedDict

import numpy as np
import pytest
import torch

from conftest import through_checkpoint
from gorl import plaindata


@dataclasses.dataclass(frozen=True)
class Spec:
    modes: tuple = (-0.7, 0.7)
    name: str = "two"


class Space:
    def __init__(self, n: int):
        self.low, self.high = np.full(n, -1.0), np.full(n, 1.0)
        self.shape = (n,)
        self.np_random = None


class Env:
    """A pure-Python env as gym.make builds one (its attributes are the state)."""

    def __init__(self):
        self.spec = Spec()
        self.entry_point = Env  # code: left as construction made it
        self.kwargs = OrderedDict(n=2)
        self.spaces = {"obs": Space(3), "act": (Space(2), Space(1))}  # a tuple holding objects
        self.np_random = np.random.default_rng(0)
        self.legacy = np.random.RandomState(0)
        self.history = [0.0]
        self.seen = {1}
        self.state = np.zeros(3)
        self.x = 0.0
        self.t = 0

    def step(self) -> list:
        self.t += 1
        self.state += self.np_random.normal(size=3)
        self.x = float(self.legacy.uniform()) - 0.5
        self.history.append(self.x)
        self.seen.add(self.t)
        self.kwargs["n"] += 1
        return [self.state.copy(), self.x, self.np_random.random(), self.legacy.randint(1 << 30), len(self.seen)]


def same_state(a, b) -> bool:
    """Whether two objects' states are equal, bit for bit (as a checkpoint writes them)."""
    ea, eb = (plaindata.encode({"s": plaindata.object_state(x)}) for x in (a, b))
    return torch.equal(ea.pop(plaindata.ARRAYS), eb.pop(plaindata.ARRAYS)) and repr(ea) == repr(eb)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_a_restored_object_continues_exactly(checkpoint):
    env = Env()
    for _ in range(5):
        env.step()
    env.x, env.spaces["obs"].low[0] = -0.0, float("nan")  # signed zero and NaN as they are
    env.spaces["act"][0].np_random = np.random.default_rng(1)  # an object in a tuple changed (a space seeded)
    st = plaindata.object_state(env, "env")
    if checkpoint:
        st = through_checkpoint({"env": st})["env"]
    first = [env.step() for _ in range(5)]
    fresh = Env()
    rng, kwargs, act = fresh.np_random, fresh.kwargs, fresh.spaces["act"][0]
    fresh.step()
    plaindata.restore_object(fresh, st, "env")
    assert fresh.np_random is rng and fresh.kwargs is kwargs and fresh.spaces["act"][0] is act  # in place
    assert fresh.entry_point is Env and fresh.spec == Spec()
    assert repr(fresh.x) == "-0.0" and np.isnan(fresh.spaces["obs"].low[0])
    again = [fresh.step() for _ in range(5)]
    assert repr(first) == repr(again)
    assert same_state(env, fresh)


def test_a_saved_state_restores_again():
    """The restored object holds copies: changing it leaves the saved state as it was (a
    fixed_initial reset restores one saved state many times)."""
    env = Env()
    env.step()
    st = plaindata.object_state(env, "env")
    fresh = Env()
    plaindata.restore_object(fresh, st, "env")
    fresh.step()
    fresh.spaces["obs"].high[:] = 7.0
    plaindata.restore_object(fresh, st, "env")
    assert same_state(env, fresh)


def test_aliases_and_cycles_are_restored():
    def build():
        env = Env()
        env.twin = env.spaces["obs"]  # the same object twice
        env.spaces["obs"].owner = env  # a cycle back to the top
        env.log = env.history  # the same list twice
        return env

    env = build()
    env.step()
    st = through_checkpoint({"env": plaindata.object_state(env, "env")})["env"]
    fresh = build()
    plaindata.restore_object(fresh, st, "env")
    assert fresh.twin is fresh.spaces["obs"] and fresh.spaces["obs"].owner is fresh and fresh.log is fresh.history
    assert same_state(env, fresh)


@pytest.mark.parametrize("attr, kind", [(threading.Lock(), "lock"), (np.array([None]), "dtype object")])
def test_an_attribute_without_plain_state_is_named(attr, kind):
    env = Env()
    env.spaces["act"][1].extra = attr
    with pytest.raises(plaindata.NotPlain, match=rf"env\.spaces\['act'\]\[1\]\.extra: .*{kind}"):
        plaindata.object_state(env, "env")


def test_restoring_onto_an_object_of_another_class_is_refused():
    env = Env()
    st = plaindata.object_state(env, "env")
    fresh = Env()
    fresh.spaces["obs"] = Spec()
    with pytest.raises(ValueError, match=r"env\.spaces\['obs'\]: saved as .*Space, but .*Spec"):
        plaindata.restore_object(fresh, st, "env")


def test_kept_objects_stay_as_construction_made_them():
    """``kept`` types (a simulator's objects, whose state the caller saves its own way) are
    neither walked nor replaced: the fresh object's own instance stays, and a restore onto an
    object holding something else there is refused."""
    env = Env()
    env.sim = threading.Lock()  # no plain state: refused unless kept
    env.step()
    st = through_checkpoint({"env": plaindata.object_state(env, "env", kept=(type(env.sim),))})["env"]
    fresh = Env()
    sim = fresh.sim = threading.Lock()
    plaindata.restore_object(fresh, st, "env")
    assert fresh.sim is sim
    assert repr([env.step() for _ in range(3)]) == repr([fresh.step() for _ in range(3)])
    fresh.sim = None
    with pytest.raises(ValueError, match=r"env\.sim: saved as a kept .*lock, but .*NoneType"):
        plaindata.restore_object(fresh, st, "env")
