"""Multimodality check: the toy bandit with two equally good actions, or any task's probe states.

    MUJOCO_GL=disable python benchmarks/bench_multimodality.py [--steps 100000] [--seeds 0 1 2]
    MUJOCO_GL=disable python benchmarks/bench_multimodality.py --task cartpole-balance --preset small \
        --steps 600000 --seeds 0 --algos ppo gorl_fm [--out DIR]

Toy (default task ``gym:GoRLBench/TwoModes-v0``, gorl/envs/toy.py; a = -0.7 and a = +0.7 both
earn ~1, the middle ~0): trains every built-in algorithm with the `smoke` geometry (8 envs,
1,920 steps per iteration; GoRL with the paper's decoder fit, see GORL_DECODER_FIT) for
--steps env steps, two single-threaded runs at a time, then reads the last action probe
(256 samples at the bandit's one state) and prints, per algorithm and seed: the histogram of
sampled actions over [-1, 1] in 10 bins, the mass within 0.2 of each mode and in the middle,
Sarle's bimodality coefficient (> 0.555 suggests two modes) and the two-component mixture's
Ashman D (> 2: separated peaks) with its smaller weight. A policy "keeps both modes" when
each mode holds at least 20% of the samples and the middle (|a| < 0.2) less than 10%: two
separated peaks, not one broad, unconverged distribution (the histogram shows which).

The task family (--family, or --task with several ids; gorl/envs/toy.py FAMILY: asymmetric
modes, narrower and wider modes, unequal mode heights, 2 and 3 action dimensions whose extra
dimensions are unimodal): the same table per task, with the mode windows max(0.2, width)
around each task's modes and 0.2 around their midpoint, then a summary (algorithm x task:
seeds that keep both modes); with --out also DIR/modes.csv and run directories DIR/<task>/:
    MUJOCO_GL=disable python benchmarks/bench_multimodality.py --family --steps 60000 \
        --seeds 0 1 2 3 4 --algos ppo fpo gorl_fm --out DIR

Any other task (the paper's claim is about balancing tasks, spec 7.2): the same runs with
--preset, and for every evaluation the probe actions (K samples at each of the P probe
states, action dimension 0 unless --action-dim) summarised over the probe states: the
evaluation return, the median sample std, the median BC, and how many states look
two-peaked (BC > 5/9, Ashman D > 2 and the smaller mixture weight >= 0.2). With --out the
run directories are kept there, and runs already completed in it are read, not retrained.

GoRL ablation from the README (reward-filtered decoder data, encoder pinned to N(0, I)):
    ... --algos gorl_fm gorl_diffusion --set latent_reg=kl --set decoder_data_filter=percentile \
        --set latent_reg_coef=1.0
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np

from analysis.actions import BC_THRESHOLD, bimodality_coefficient, gmm2
from common import train_runs
from gorl import registry, rundir
from gorl.envs import toy

TASK = "gym:GoRLBench/TwoModes-v0"
# The smoke preset cuts GoRL's decoder fit to a few gradient steps (CI speed); here the
# decoder is fitted as in the paper (50 epochs, patience 20, 8 noise samples per action)
# on a collection of ~1/3 of a stage's encoder steps (the paper's 19.7M per 60M stage).
GORL_DECODER_FIT = ["collect_steps=16000", "decoder_max_epochs=50", "decoder_patience=20",
                    "decoder_mc_samples=8", "decoder_batch_size=512"]


def overrides(algo: str, extra: list[str], toy: bool) -> list[str]:
    fields = {f.name for f in dataclasses.fields(registry.get(algo).config_cls)}
    fit = GORL_DECODER_FIT if toy and "collect_steps" in fields else []
    return [arg for kv in ["probe_samples=256", *fit, *extra] for arg in ("--set", kv)]


def short(task: str) -> str:
    """gym:GoRLBench/TwoModesAsym-v0 -> TwoModesAsym; dm_control names unchanged."""
    return task.split("/")[-1].split("-v")[0] if task.startswith("gym:") else task


def run_dir(args, root: Path, task: str, a: str, s: int) -> Path:
    """One task: root/<algo>_<seed> (as before the family); several: root/<task>/<algo>_<seed>."""
    return (root if len(args.tasks) == 1 else root / short(task)) / f"{a}_{s}"


def is_toy(task: str) -> bool:
    return task.startswith("gym:") and task[4:] in toy.FAMILY


def train_all(args, root: Path) -> None:
    """Every (task, algo, seed) run not yet completed under ``root``, --jobs at a time."""
    train_runs([(run_dir(args, root, t, a, s),
                 [a, t, "--preset", args.preset, "--steps", str(args.steps), "--seed", str(s),
                  *overrides(a, args.extra, is_toy(t))])
                for t in args.tasks for a in args.algos for s in args.seeds], args.jobs)


def evals(run: Path) -> np.ndarray:
    """(E, 3): env_step, return_mean, stage per evaluation."""
    cols = [list(rundir.EVAL_COLUMNS).index(c) for c in ("env_step", "return_mean", "stage")]
    return np.loadtxt(run / rundir.EVALS, delimiter=",", skiprows=1, usecols=cols, ndmin=2)


def mode_masses(x: np.ndarray, spec: toy.Spec) -> tuple[float, float, float]:
    """Shares of the samples (action dimension 0) within max(0.2, width) of each mode and
    within 0.2 of the midpoint between the modes."""
    (m0, m1), (w0, w1) = spec.modes, spec.widths
    return (float(np.mean(np.abs(x - m0) < max(0.2, w0))), float(np.mean(np.abs(x - (m0 + m1) / 2) < 0.2)),
            float(np.mean(np.abs(x - m1) < max(0.2, w1))))


def keeps_both(lo: float, mid: float, hi: float) -> bool:
    """Two separated peaks: each mode holds >= 20% of the samples, the middle < 10%."""
    return lo >= 0.2 and hi >= 0.2 and mid < 0.1


def toy_table(args, root: Path, task: str) -> list[dict]:
    spec = toy.FAMILY[task[4:]]
    m0, m1 = spec.modes
    print(f"{task}: modes {m0:+.2f} / {m1:+.2f}, widths {spec.widths[0]:g} / {spec.widths[1]:g}, heights "
          f"{spec.heights[0]:g} / {spec.heights[1]:g}, {spec.action_dim} action dim(s)")
    extra = "  a_1..: mean" if spec.action_dim > 1 else ""
    print(f"{'algo':15} {'seed':>4}  {'histogram of a_0 over [-1, 1], 10 bins':44} {m0:+5.2f} "
          f"{'mid':>5} {m1:+5.2f} {'BC':>5} {'D':>5} {'w_min':>5} {'return':>6}  both modes{extra}")
    rows = []
    for a in args.algos:
        kept = 0
        for s in args.seeds:
            run = run_dir(args, root, task, a, s)
            acts = np.load(run / rundir.PROBES)["actions"][-1, 0]  # (K, d_a)
            x = acts[:, 0]
            ret = float(evals(run)[-1, 1])
            hist = np.histogram(x, bins=10, range=(-1, 1))[0]
            lo, mid, hi = mode_masses(x, spec)
            dd, wmin, _, _ = gmm2(x)
            both = keeps_both(lo, mid, hi)
            kept += both
            ex = "  " + " ".join(f"{v:+.2f}" for v in acts[:, 1:].mean(0)) if spec.action_dim > 1 else ""
            print(f"{a:15} {s:4d}  {' '.join(f'{h:3d}' for h in hist):44} {lo:5.2f} {mid:5.2f} {hi:5.2f} "
                  f"{float(bimodality_coefficient(x)):5.2f} {dd:5.2f} {wmin:5.2f} {ret:6.3f}  "
                  f"{'yes' if both else 'no':10}{ex}")
            rows.append(dict(task=short(task), algorithm=a, seed=s, mass_low=lo, mass_mid=mid, mass_high=hi,
                             bc=float(bimodality_coefficient(x)), ashman_d=dd, w_min=wmin, last_return=ret,
                             both_modes=bool(both)))
        print(f"{a:15} keeps both modes in {kept}/{len(args.seeds)} seeds")
    print()
    return rows


def family_summary(rows: list[dict], args) -> None:
    """Algorithm x task: seeds that keep both modes (and the mean last return)."""
    import pandas as pd
    df = pd.DataFrame(rows)
    tasks = list(dict.fromkeys(df["task"]))
    print(f"seeds that keep both modes ({len(args.seeds)} seeds, {args.steps} env steps, preset {args.preset}); "
          "mean last evaluation return in brackets")
    print("| algorithm | " + " | ".join(tasks) + " |")
    print("|---|" + "---|" * len(tasks))
    for a in args.algos:
        cells = []
        for t in tasks:
            g = df[(df["algorithm"] == a) & (df["task"] == t)]
            cells.append(f"{int(g['both_modes'].sum())}/{len(g)} ({g['last_return'].mean():.2f})")
        print(f"| {a} | " + " | ".join(cells) + " |")


def two_peaked(x: np.ndarray) -> bool:
    d, wmin, _, _ = gmm2(x)
    return bool(bimodality_coefficient(x) > BC_THRESHOLD and d > 2 and wmin >= 0.2)


def task_table(args, root: Path, task: str) -> None:
    print(f"action dimension {args.action_dim}; per evaluation, over the probe states: median sample std, "
          f"median BC, states two-peaked (BC > 5/9, D > 2, w_min >= 0.2)")
    print(f"{'algo':15} {'seed':>4} {'env step':>9} {'stage':>5} {'return':>7} {'std':>5} {'BC':>5}  two-peaked")
    for a in args.algos:
        for s in args.seeds:
            run = run_dir(args, root, task, a, s)
            probes = np.load(run / rundir.PROBES)
            acts = probes["actions"][..., args.action_dim]  # (E, P, K)
            for x, (step, ret, stage) in zip(acts, evals(run)):
                peaked = sum(two_peaked(xs) for xs in x)
                print(f"{a:15} {s:4d} {int(step):9d} {int(stage):5d} {ret:7.1f} {np.median(x.std(-1)):5.2f} "
                      f"{np.nanmedian(bimodality_coefficient(x, axis=-1)):5.2f}  {peaked}/{len(x)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", dest="tasks", nargs="+", default=[TASK], help="one or more tasks")
    ap.add_argument("--family", action="store_true", help="every one-step task of gorl/envs/toy.py's FAMILY")
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--algos", nargs="+", default=list(registry.algorithms()))
    ap.add_argument("--action-dim", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, help="keep the run directories here (completed runs are reused)")
    ap.add_argument("--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
                    help="extra config override for every run (e.g. decoder_data_filter=percentile)")
    args = ap.parse_args()
    if args.family:
        args.tasks = [f"gym:{t}" for t in toy.FAMILY]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        t0 = time.perf_counter()
        train_all(args, root)
        print(f"{', '.join(args.tasks)}: {args.steps} env steps per run, preset {args.preset}, "
              f"{time.perf_counter() - t0:.0f} s in all\n")
        rows = []
        for task in args.tasks:
            if is_toy(task):
                rows += toy_table(args, root, task)
            else:
                task_table(args, root, task)
        if len(rows) and len(args.tasks) > 1:
            family_summary(rows, args)
        if args.out and rows:
            import pandas as pd
            pd.DataFrame(rows).to_csv(args.out / "modes.csv", index=False)


if __name__ == "__main__":
    main()
