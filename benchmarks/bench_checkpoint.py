"""What writing and reading a host env set's state costs as tensors and plain data
(gorl.plaindata, read with torch.load(weights_only=True)) next to the pickled format of
earlier versions (numpy arrays and the dm_control task object pickled, read with
weights_only=False).

    MUJOCO_GL=disable python benchmarks/bench_checkpoint.py [--task cheetah-run] [--envs 8 2048]

The state of one env (after a seeded reset and 10 steps) is repeated ``--envs`` times, as a
``VectorEnv`` of that many envs holds it (building 2048 dm_control envs takes 2 GB). Columns:
get_state and set_state per env; encode (plain data only), torch.save, torch.load, decode and
the file's size for the whole set; best of three.
"""
from __future__ import annotations

import argparse
import copy
import io
import pickle
import time

import numpy as np
import torch

import common  # noqa: F401  (sets MUJOCO_GL)
from gorl import plaindata
from gorl.envs import make_env


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="cheetah-run")
    ap.add_argument("--envs", type=int, nargs="+", default=[8, 2048])
    a = ap.parse_args()
    env = make_env(a.task, 0)
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.zeros(env.action_space.shape))
    st = env.get_state()
    per_get = _best(lambda: [env.get_state() for _ in range(200)]) / 200
    per_set = _best(lambda: [env.set_state(st) for _ in range(200)]) / 200
    old_env = dict(st, task=pickle.dumps(env._env.task))  # the earlier get_state's task field
    print(f"{a.task}: get_state {per_get * 1e6:.0f} us, set_state {per_set * 1e6:.0f} us per env")
    print("envs | format | encode s | save s | load s | decode s | MiB")
    for n in a.envs:
        new = {"envs": [copy.deepcopy(st) for _ in range(n)]}  # distinct objects: pickle writes each
        old = {"envs": [copy.deepcopy(old_env) for _ in range(n)]}
        enc = plaindata.encode(new)
        buf = io.BytesIO()
        torch.save(enc, buf)
        data = buf.getvalue()
        t_enc = _best(lambda: plaindata.encode(new))
        t_save = _best(lambda: torch.save(enc, io.BytesIO()))
        t_load = _best(lambda: torch.load(io.BytesIO(data), weights_only=True))
        loaded = torch.load(io.BytesIO(data), weights_only=True)
        t_dec = _best(lambda: plaindata.decode(loaded))
        print(f"{n} | plain data | {t_enc:.3f} | {t_save:.3f} | {t_load:.3f} | {t_dec:.3f} | {len(data) / 2**20:.1f}")
        buf = io.BytesIO()
        torch.save(old, buf)
        data = buf.getvalue()
        t_save = _best(lambda: torch.save(old, io.BytesIO()))
        t_load = _best(lambda: torch.load(io.BytesIO(data), weights_only=False))
        print(f"{n} | pickled (before) | - | {t_save:.3f} | {t_load:.3f} | - | {len(data) / 2**20:.1f}")


if __name__ == "__main__":
    main()
