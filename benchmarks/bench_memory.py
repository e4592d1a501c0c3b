"""Peak memory of a `paper` run's process on the CPU, for sizing the pipeline's ``mem_mb``.

    MUJOCO_GL=disable OMP_NUM_THREADS=1 python benchmarks/bench_memory.py cheetah-run humanoid-run
    MUJOCO_GL=disable OMP_NUM_THREADS=1 python benchmarks/bench_memory.py --algo gorl_fm cheetah-run

For each task: builds ALGO's trainer at the ``paper`` preset (2048 dm_control envs in-process),
then runs one rollout (983,040 env steps), and prints the process's peak resident set size after
each (``gorl.provenance.peak_rss_mib``, what provenance.json records). One process per task, so
the figures do not carry over. The update is left out: on one CPU core a `paper` update takes
many minutes, and it holds one minibatch's activations next to the rollout already counted.
GoRL (stage 0's trainer, as the run builds it): then the stage's end as the run has it (the
trainer closed) and the stage boundary's decoder data, the release's 4,096 episodes of 1,000
steps 64 envs at a time (``--collect-episodes N`` fewer), and the decoder fit on them (a few
steps: its memory is the data's split and copies, not the steps), with the peak after each.
Tasks with the humanoid profile need a teacher run first: not measured here. (The peak, not the
resident size afterwards: memory a closed stage frees stays with the process, in glibc's heap,
and what follows reuses it.)
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def measure(algo: str, task: str, collect_episodes: int = 0) -> None:
    import torch
    from common import make_trainer
    from gorl import registry
    from gorl.provenance import peak_rss_mib
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        gorl = registry.get(algo).family == "gorl"
        if gorl:
            from gorl.algorithm.gorl import GoRL, collect_release_data
            from gorl.config import build_config
            from gorl.core.run import Run
            spec = registry.get(algo)
            over = {"device": "cpu", **({"collect_episodes": collect_episodes} if collect_episodes else {})}
            cfg = build_config(spec.config_cls, spec.presets_file, "paper", task, over)
            # the decoder fit shortened to a few steps: its memory is the data's handling, not the steps
            over.update({"decoder_train_steps": 20} if cfg.for_stage(1).decoder_fit_schedule == "steps"
                        else {"decoder_max_epochs": 1})
            cfg = build_config(spec.config_cls, spec.presets_file, "paper", task, over)
            run = Run(algo=algo, task=task, seed=0, preset="paper", dir=Path(tmp) / algo, config={}, quiet=True,
                      device=torch.device("cpu"))
            run.dir.mkdir(parents=True)
            g = GoRL(cfg, run)
            trainer = g.make_trainer(0)
        else:
            trainer = make_trainer(algo, task, "paper", Path(tmp), device="cpu")
        built = peak_rss_mib()
        trainer.collect()
        print(f"{algo:6s} {task:18s} built {built:7,.0f} MiB   after one rollout ({trainer.cfg.steps_per_iteration:,} "
              f"env steps) {peak_rss_mib():7,.0f} MiB   ({time.time() - t0:.0f} s)", flush=True)
        if gorl:
            trainer.close()  # the stage's end, then the boundary's decoder data and the fit on them
            data = collect_release_data(cfg.for_stage(0), run, 0, trainer.agent, trainer.normalizer)
            mib = sum(v.nbytes for k, v in data.items() if k != "summary") / 2**20
            print(f"{algo:6s} {task:18s} after the decoder data ({data['summary']['rows']:,} rows, "
                  f"{data['summary']['episodes_finished']:,} episodes, {data['summary']['envs']} envs at a time, "
                  f"{mib:,.0f} MiB of arrays) {peak_rss_mib():7,.0f} MiB   ({time.time() - t0:.0f} s)", flush=True)
            g.stage_dir(0).mkdir(parents=True, exist_ok=True)
            g.fit(1, data["obs"], data["action"], 0, g.stage_dir(0), episode=data["episode"], latent=data["latent"])
            print(f"{algo:6s} {task:18s} after the decoder fit on them (shortened to a few steps) "
                  f"{peak_rss_mib():7,.0f} MiB   ({time.time() - t0:.0f} s)", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("tasks", nargs="+")
    p.add_argument("--algo", default="ppo")
    p.add_argument("--collect-episodes", type=int, default=0, help="GoRL: decoder-data episodes (0: the preset's)")
    p.add_argument("--one", help=argparse.SUPPRESS)  # the child process's task
    args = p.parse_args()
    if args.one:
        return measure(args.algo, args.one, args.collect_episodes)
    for task in args.tasks:
        subprocess.run([sys.executable, __file__, "--algo", args.algo, "--collect-episodes",
                        str(args.collect_episodes), "--one", task, task], check=True)


if __name__ == "__main__":
    main()
