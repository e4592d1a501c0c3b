"""Peak memory of a `paper` run's process on the CPU, for sizing the pipeline's ``mem_mb``.

    MUJOCO_GL=disable OMP_NUM_THREADS=1 python benchmarks/bench_memory.py cheetah-run humanoid-run

For each task: builds ALGO's trainer at the ``paper`` preset (2048 dm_control envs in-process),
then runs one rollout (983,040 env steps), and prints the process's peak resident set size after
each (``gorl.provenance.peak_rss_mib``, what provenance.json records). One process per task, so
the figures do not carry over. The update is left out: on one CPU core a `paper` update takes
many minutes, and it holds one minibatch's activations next to the rollout already counted.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(algo: str, task: str) -> None:
    import torch
    from common import make_trainer
    from gorl.provenance import peak_rss_mib
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        trainer = make_trainer(algo, task, "paper", Path(tmp), device="cpu")
        built = peak_rss_mib()
        trainer.collect()
        print(f"{algo:6s} {task:18s} built {built:7,.0f} MiB   after one rollout ({trainer.cfg.steps_per_iteration:,} "
              f"env steps) {peak_rss_mib():7,.0f} MiB   ({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tasks", nargs="+")
    p.add_argument("--algo", default="ppo")
    p.add_argument("--one", help=argparse.SUPPRESS)  # the child process's task
    args = p.parse_args()
    if args.one:
        return measure(args.algo, args.one)
    for task in args.tasks:
        subprocess.run([sys.executable, __file__, "--algo", args.algo, "--one", task, task], check=True)


if __name__ == "__main__":
    main()
