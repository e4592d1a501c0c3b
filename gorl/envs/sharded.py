"""Host envs sharded over worker processes, for many-core machines without a GPU.

``ShardedVectorEnv(task, seeds, workers)`` splits the envs into ``workers`` contiguous
shards, each stepped in-process (:class:`gorl.envs.vector.VectorEnv`) by its own worker.
Actions and results live in shared memory: one step is one batched round trip (the parent
writes all actions, wakes every worker with one byte, and waits for one byte back from
each), never a pickled array. The interface is :class:`VectorEnv`'s, so
:class:`gorl.envs.vector.TorchVecEnv` presents it to the trainer unchanged, and a run's
results do not depend on the number of workers (each env keeps its own seed and state).

Set ``env_workers`` (``--set env_workers=16``) on a machine with many cores; the default 0
steps the envs in the training process, which is what pays on 2 cores
(``benchmarks/bench_envs.py --sharded`` measures both).
"""
from __future__ import annotations

import multiprocessing as mp
from multiprocessing import shared_memory
from typing import Sequence

import numpy as np

_STEP, _RESET, _GET, _SET, _CLOSE = b"s", b"r", b"g", b"t", b"c"
_FIX, _NO_LIMIT = b"f", b"n"  # VectorEnv.fix_initial_states / remove_time_limit (reset_mode, decoder_collection)


def _layout(n: int, d_o: int, d_a: int) -> list[tuple[str, tuple[int, ...], type, int]]:
    """(name, shape, dtype, offset) of each array in the shared block, 64-byte aligned."""
    out, off = [], 0
    for name, shape, dtype in [("actions", (n, d_a), np.float32), ("obs", (n, d_o), np.float32),
                               ("final_obs", (n, d_o), np.float32), ("reward", (n,), np.float32),
                               ("term", (n,), np.bool_), ("trunc", (n,), np.bool_)]:
        out.append((name, shape, dtype, off))
        off += (int(np.prod(shape)) * np.dtype(dtype).itemsize + 63) // 64 * 64
    out.append(("end", (), None, off))
    return out


def _views(buf, n: int, d_o: int, d_a: int) -> dict[str, np.ndarray]:
    """Named arrays over one shared block: actions, obs, final_obs, reward, term, trunc."""
    return {name: np.ndarray(shape, dtype, buffer=buf, offset=off)
            for name, shape, dtype, off in _layout(n, d_o, d_a)[:-1]}


def _nbytes(n: int, d_o: int, d_a: int) -> int:
    return _layout(n, d_o, d_a)[-1][3]


def _worker(conn, shm_name: str, task: str, seeds: list[int], lo: int, n: int, d_o: int, d_a: int,
            imports: tuple[str, ...]) -> None:
    import importlib
    import signal

    from gorl.envs.single import make_env
    from gorl.envs.vector import VectorEnv
    # Ctrl-C reaches the whole process group: the training process stops at its next checkpoint
    # and closes its workers itself (a worker dying first would break that step). SIGTERM is
    # left as it is: multiprocessing ends leftover workers with it at exit.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for mod in imports:
        importlib.import_module(mod)
    shm = shared_memory.SharedMemory(name=shm_name)
    v = {k: a[lo:lo + len(seeds)] for k, a in _views(shm.buf, n, d_o, d_a).items()}
    venv = VectorEnv([lambda s=s: make_env(task, s) for s in seeds])
    v["obs"][:] = venv.reset(seeds)
    conn.send_bytes(b"k")
    try:
        while True:
            msg = conn.recv_bytes()
            if msg == _STEP:
                obs, r, te, tr, final = venv.step(v["actions"])
                v["obs"][:], v["reward"][:], v["term"][:], v["trunc"][:], v["final_obs"][:] = obs, r, te, tr, final
                conn.send_bytes(venv.physics_errors.to_bytes(8, "little"))
            elif msg == _RESET:
                seeds_now = conn.recv()
                v["obs"][:] = venv.reset(seeds_now)
                conn.send_bytes(b"k")
            elif msg == _GET:
                conn.send(venv.get_state())
            elif msg in (_FIX, _NO_LIMIT):
                try:
                    (venv.fix_initial_states if msg == _FIX else venv.remove_time_limit)()
                    conn.send(None)
                except ValueError as e:
                    conn.send(str(e))
            elif msg == _SET:
                venv.set_state(conn.recv())
                v["obs"][:] = venv.obs
                conn.send_bytes(b"k")
            else:
                break
    finally:
        del v
        shm.close()


class ShardedVectorEnv:
    def __init__(self, task: str, seeds: Sequence[int], workers: int, imports: tuple[str, ...] = ()):
        from gorl.envs.single import host_env_dims
        seeds = [int(s) for s in seeds]
        self.num_envs = n = len(seeds)
        self.obs_dim, self.action_dim = host_env_dims(task)
        workers = max(1, min(int(workers), n))
        self._shm = shared_memory.SharedMemory(create=True, size=_nbytes(n, self.obs_dim, self.action_dim))
        self._v = _views(self._shm.buf, n, self.obs_dim, self.action_dim)
        bounds = np.linspace(0, n, workers + 1).round().astype(int)
        self._slices = [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
        ctx = mp.get_context("spawn")  # no fork of a process holding torch's threads
        self._conns, self._procs = [], []
        for a, b in self._slices:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, daemon=True,
                            args=(child, self._shm.name, task, seeds[a:b], a, n, self.obs_dim, self.action_dim,
                                  tuple(imports)))
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        for c in self._conns:
            c.recv_bytes()
        self._errors = [0] * workers

    def reset(self, seeds: Sequence[int] | None = None) -> np.ndarray:
        for c, (a, b) in zip(self._conns, self._slices):
            c.send_bytes(_RESET)
            c.send(None if seeds is None else [int(s) for s in seeds[a:b]])
        for c in self._conns:
            c.recv_bytes()
        return self._v["obs"].copy()

    def step(self, actions: np.ndarray):
        self._v["actions"][:] = actions
        for c in self._conns:
            c.send_bytes(_STEP)
        for i, c in enumerate(self._conns):
            self._errors[i] = int.from_bytes(c.recv_bytes(), "little")
        v = self._v
        return v["obs"].copy(), v["reward"].copy(), v["term"].copy(), v["trunc"].copy(), v["final_obs"].copy()

    @property
    def obs(self) -> np.ndarray:
        return self._v["obs"].copy()

    @property
    def physics_errors(self) -> int:
        return sum(self._errors)

    def get_state(self) -> dict:
        for c in self._conns:
            c.send_bytes(_GET)
        shards = [c.recv() for c in self._conns]
        return {"obs": self.obs, "envs": [e for s in shards for e in s["envs"]],
                "physics_errors": sum(s["physics_errors"] for s in shards)}

    def set_state(self, st: dict) -> None:
        """Takes :class:`VectorEnv` states too (a run may resume with another worker count)."""
        for i, (c, (a, b)) in enumerate(zip(self._conns, self._slices)):
            c.send_bytes(_SET)
            c.send({"obs": st["obs"][a:b], "envs": st["envs"][a:b],
                    "physics_errors": st["physics_errors"] if i == 0 else 0})
        for c in self._conns:
            c.recv_bytes()
        self._errors = [int(st["physics_errors"])] + [0] * (len(self._conns) - 1)

    def _each(self, msg: bytes) -> None:
        for c in self._conns:
            c.send_bytes(msg)
        errors = [e for e in (c.recv() for c in self._conns) if e is not None]
        if errors:
            raise ValueError(errors[0])

    def fix_initial_states(self) -> None:
        self._each(_FIX)

    def remove_time_limit(self) -> None:
        self._each(_NO_LIMIT)

    def close(self) -> None:
        if self._shm is None:
            return
        for c in self._conns:
            try:
                c.send_bytes(_CLOSE)
            except OSError:
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        self._v = None
        self._shm.close()
        self._shm.unlink()
        self._shm = None

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass
