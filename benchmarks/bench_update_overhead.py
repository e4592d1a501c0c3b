"""The update's host time per minibatch, eager vs ``compile_update``, with the compute shrunk away.

    MUJOCO_GL=disable OMP_NUM_THREADS=1 python benchmarks/bench_update_overhead.py [--width 4] [--profile]

PPO ``smoke`` on cartpole-balance (8 minibatches of 16 segments x 30 steps per update) with the
critic's five and the actor's four hidden layers ``--width`` wide (4: their matmuls cost next to
nothing), so what is left per minibatch is the host's part: the gathers, the Python of the step,
and with ``compile_update`` dynamo's guards and inductor's wrappers. On a GPU that part is paid
per minibatch whatever the batch size (512 minibatches per `paper` iteration), and the GPU waits
for it when the kernels are shorter. ``--width 256`` shows the same with the real networks.
One trainer per mode, the best of ``--repeats`` (10) updates after the one that compiles; ``--profile``
prints cProfile's top entries of one compiled update.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, default=4)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--profile", action="store_true")
    args = p.parse_args()
    import torch
    torch.set_num_threads(1)
    from test_compile_update import trainer  # the compile tests' trainer: PPO smoke, cartpole-balance
    tmp = Path(tempfile.mkdtemp())
    for name, compiled in (("eager", False), ("compiled", True)):
        t = trainer("ppo", tmp, name, critic_hidden=[args.width] * 5, actor_hidden=[args.width] * 4,
                    **({"compile_update": True} if compiled else {}))
        batch = t.collect()
        t.update(batch)  # the compiled step compiles here
        seconds = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            t.update(batch)
            seconds.append(time.perf_counter() - t0)
        n = t.cfg.num_epochs * t.cfg.num_minibatches
        print(f"{name:8s} width {args.width}: {1000 * min(seconds) / n:.3f} ms per minibatch "
              f"({n} minibatches, best of {args.repeats} updates)", flush=True)
        if compiled and args.profile:
            prof = cProfile.Profile()
            prof.enable()
            t.update(batch)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
