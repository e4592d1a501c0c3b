"""Command line: ``gorl-bench train|show|evaluate|check-run|list|plan`` (also ``python -m gorl``)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

_USER_MUJOCO_GL = os.environ.get("MUJOCO_GL")  # `evaluate --video` picks a renderer if the user set none
os.environ.setdefault("MUJOCO_GL", "disable")

from gorl.errors import BadInput  # noqa: E402

EXIT_BAD_INPUT = 2
EXIT_NO_SPACE = 75
"""A full disk (or quota) stopped the run (EX_TEMPFAIL): nothing is lost, rerun once space is freed."""
EXIT_FAILED = 1
"""The run raised (e.g. a user's env): the line names the task and the env step; files are kept."""
# SIGTERM/SIGINT: the run stops at its next checkpoint and exits 128 + signal (143, 130), which
# the pipeline's job reads as "interrupted, resume next time" (gorl.job.job_outcome).


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train one (algorithm, task, seed) run",
        description="Train one run and write the run-directory contract to --out. Re-running the same "
                    "command on an interrupted run resumes it from its last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("algo", help="algorithm name (see `gorl-bench list`)")
    p.add_argument("task", help="dm_control suite task as 'domain-task' (e.g. cheetah-run, finger-turn_hard), "
                                "'playground:<Name>' for MuJoCo Playground's MJX port (e.g. playground:CheetahRun) "
                                "or 'gym:<id>' for a registered Gymnasium env with a Box action space")
    p.add_argument("--seed", type=int, default=1, help="run seed (networks, envs, evaluation resets)")
    p.add_argument("--steps", type=_env_steps, default=None,
                   help="env-step budget, a whole number (4000, 1_000_000, 1e6; overrides the preset's total_steps; "
                        "GoRL scales its stage budgets)")
    p.add_argument("--preset", default="small", help="hyperparameter preset from the algorithm's presets file "
                                                     "(paper, paper-v1, small, small-v1, smoke; "
                                                     "`gorl-bench list ALGO` shows them)")
    p.add_argument("--out", required=True, type=Path, help="run directory to write (created if missing)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hyperparameter; numbers as usually written (3e-4, 1e9, .5, 1_000_000), "
                        "else YAML (true, null, [64, 64], text); repeatable")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a Python module first (e.g. one registering a Gymnasium env or an algorithm); "
                        "repeatable")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; plain log lines (one per evaluation "
                                                        "and per GoRL stage event)")
    p.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                   help="turn off the TensorBoard event files in OUT/tensorboard/ (written: %(default)s)")
    p.add_argument("--wandb", choices=("offline", "online"), default=None,
                   help="also log to Weights & Biases (pip install wandb); offline keeps it in OUT/wandb/")
    p.add_argument("--force", action="store_true",
                   help="start over: delete what a run wrote in --out (the contract's files and stages/); "
                        "refused if --out holds anything else")
    p.add_argument("--trust-checkpoint", action="store_true",
                   help="resume from a checkpoint that holds pickled objects (one written by an older "
                        "GoRL-Bench); loading it runs whatever it holds: only for a file you wrote yourself")
    return p


def _env_steps(text: str) -> int:
    """``--steps`` as budgets are written: 180000000, 1_000_000, 1e6 (a whole number)."""
    from gorl.config import parse_number

    n = parse_number(text)
    if n is None or n != int(n):
        raise argparse.ArgumentTypeError(f"expected a whole number of env steps (4000, 1_000_000, 1e6), got {text!r}")
    return int(n)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gorl-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
    sh = sub.add_parser("show", help="one line per run: algorithm, task, seed, preset, rollout path, status, "
                                     "env steps, final/best return, wall time, steps/s",
                        description="Summarise run directories (a folder of runs, e.g. results/NAME/runs, "
                                    "counts as all the runs under it). Reads only config.yaml, status.json, "
                                    "evals.csv, metrics.csv and provenance.json.")
    sh.add_argument("runs", nargs="+", type=Path, help="run directories, or folders holding ALGO/TASK/seedN runs")
    sh.add_argument("--plot", type=Path, default=None, metavar="OUT.png",
                    help="also draw the runs' learning curves (evaluation return vs env steps) to this file")
    sh.add_argument("--json", action="store_true",
                    help="print the summaries as a JSON list (one object per run, the table's fields) instead")
    ev = sub.add_parser("evaluate", help="run a trained policy on its task (returns; optionally a video)",
                        description="Load a run's policy (gorl.load_policy) and run it for --episodes full "
                                    "episodes from fresh seeded resets; --video renders one episode with MuJoCo "
                                    "offscreen (MUJOCO_GL: egl on GPU machines, osmesa on CPU machines; "
                                    "chosen so when unset).",
                        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ev.add_argument("run", type=Path, help="run directory")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--which", choices=("final", "best"), default="final",
                    help="the policy at the end of training or at its best evaluation")
    ev.add_argument("--sampled", action="store_true", help="sample actions instead of the deterministic "
                                                           "evaluation action")
    ev.add_argument("--seed", type=int, default=0, help="picks the episodes' env seeds (fresh: never used "
                                                        "by training or its evaluations)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--video", type=Path, default=None, metavar="OUT.gif|OUT.mp4",
                    help="render the first episode (dm_control suite and playground: tasks) to a .gif, or an .mp4 "
                         "with imageio-ffmpeg")
    ev.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")
    c = sub.add_parser("check-run", help="validate a run directory against the contract")
    c.add_argument("run_dir", type=Path)
    c.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")
    ls = sub.add_parser("list", help="list registered algorithms with their presets, and the paper tasks; "
                                     "with ALGO, print its resolved preset and where each value comes from")
    ls.add_argument("algo", nargs="?", help="print this algorithm's resolved hyperparameters")
    ls.add_argument("--preset", default="small", help="preset to resolve (with ALGO)")
    ls.add_argument("--task", default=None, help="apply this task's values (with ALGO)")
    ls.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="apply an override, as `train --set` (with ALGO)")
    ls.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")
    pl = sub.add_parser("plan", help="the runs of a pipeline config (config/*.yaml) with their cost",
                        description="Validate a pipeline experiment config as `snakemake` does and print one row "
                                    "per run (algorithm, task, seed, preset, env steps, device, GPU, estimated "
                                    "time from measured rates of completed runs) and the total env steps.")
    pl.add_argument("config", type=Path, help="experiment config, e.g. config/paper.yaml")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")
    pl.add_argument("--results", type=Path, default=Path("results"),
                    help="where completed runs give measured env-step rates (results/*/runs/...)")
    return parser


def _import_modules(mods: list[str]) -> None:
    from gorl.experiment import import_modules  # one home: also the pipeline's run identity
    import_modules(mods)


def prepare_train(args):
    """Validate everything and resolve the config before any env is built."""
    from gorl import registry, rundir
    from gorl.config import build_config, config_to_dict, parse_set
    from gorl.envs import check_task

    _import_modules(args.imports)
    try:
        algo = registry.get(args.algo)
    except KeyError as e:
        raise BadInput(str(e.args[0])) from None
    check_task(args.task)  # TaskError (BadInput) names the task
    if getattr(args, "wandb", None):
        from gorl.sinks import require_wandb
        require_wandb(args.wandb)
    if args.steps is not None and args.steps <= 0:
        raise BadInput(f"--steps must be positive, got {args.steps}")
    if args.seed < 0:
        raise BadInput(f"--seed must be non-negative, got {args.seed}")
    overrides = parse_set(args.overrides)
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    cfg = build_config(algo.config_cls, algo.presets_file, args.preset, args.task, overrides)
    from gorl.core.run import resolve_device
    resolve_device(str(getattr(cfg, "device", "auto")))  # a GPU this machine lacks: one line, nothing written

    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise BadInput(f"--out {out} exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise BadInput(f"--out {out} is not writable: {e.strerror or e}") from None
    from gorl.experiment import run_identity
    resolved = run_identity(algo.name, args.task, args.seed, args.preset, args.imports, parse_set(args.overrides),
                            config_to_dict(cfg))
    lock = rundir.Lock(out)  # held while this process trains; a second process stops here
    try:
        _claim(out, args.force, resolved, args.trust_checkpoint)
    except BaseException:
        lock.release(refused=True)
        raise
    return algo, cfg, resolved, lock


def _claim(out: Path, force: bool, resolved: dict, trust_checkpoint: bool = False) -> None:
    """With the lock held: refuse an ended run (unless --force), start over (--force), or check
    that an interrupted run has the same configuration and that its checkpoints hold only
    tensors and plain data (unless --trust-checkpoint), before anything in --out is written."""
    from gorl import rundir

    status = rundir.read_status(out)
    if status is not None and status.get("status") in rundir.FINAL_STATUSES:
        if not force:
            raise BadInput(f"--out {out} already holds a {status['status']} run; "
                           f"refusing to overwrite it (pass --force to start over)")
    if force:
        rundir.clear(out)
    elif ((out / rundir.CHECKPOINT).exists() or (out / rundir.CHECKPOINT_PREVIOUS).exists()) \
            and (old := rundir.read_config(out)) is not None:
        from gorl.experiment import run_differences  # the one rule, shared with the pipeline
        diff = run_differences(old, resolved)
        if diff:
            raise BadInput(f"--out {out} holds an interrupted run with a different configuration "
                           f"({', '.join(diff)}); use another --out or --force to start over")
        if changed := rundir.teacher_change(out):  # its data set came from another teacher
            raise BadInput(f"--out {out} holds an interrupted run whose teacher is not the one it read: "
                           f"{changed}; use another --out or --force to start over")
    if not force and not trust_checkpoint:
        rundir.refuse_pickled_checkpoints(out)


def cmd_train(args) -> int:
    algo, cfg, resolved, lock = prepare_train(args)
    try:
        return _train(args, algo, cfg, resolved, lock)
    finally:
        lock.release()  # an ended run leaves no PID in the lock file


def _train(args, algo, cfg, resolved, lock) -> int:
    threads = args.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    import torch

    from gorl import rundir
    from gorl.core.run import Run, resolve_device
    from gorl.errors import Diverged, Gated, Interrupted
    from gorl.provenance import set_matmul_precision

    torch.set_num_threads(max(1, threads))
    run = Run(algo=algo.name, task=args.task, seed=args.seed, preset=args.preset, dir=args.out,
              config=resolved, device=resolve_device(cfg.device), quiet=args.quiet,
              trust_checkpoint=args.trust_checkpoint)
    set_matmul_precision(getattr(cfg, "matmul_precision", None), run.device)  # plug-ins too
    if lock.stale_pid:
        run.log(f"took over the lock of process {lock.stale_pid}, which ended without releasing it")
    resolved["device"] = str(run.device)
    budget = getattr(cfg, "effective_steps", None)
    if budget is not None:
        resolved["effective_total_steps"] = run.total_steps = int(budget)
        if budget != cfg.total_steps:
            run.log(f"total_steps {cfg.total_steps:,} rounded down to {budget:,} env steps (whole iterations of "
                    f"{cfg.steps_per_iteration:,}); config.yaml records effective_total_steps: {budget}")
    previous = _install_stop_handlers(run)
    try:
        rundir.write_yaml(args.out / rundir.CONFIG, resolved)
        run.open_sinks(tensorboard=args.tensorboard, wandb=args.wandb)
        try:
            algo.train(cfg, run)
        except Diverged as e:
            run.log(f"diverged: {e}")
            run.finish(rundir.DIVERGED, run.env_steps_done, reason=str(e))
            return 0
        except Gated as e:  # data like diverged: the run ends with its reason, exit 0
            run.log(f"gated: {e}")
            run.finish(rundir.GATED, run.env_steps_done, reason=str(e))
            return 0
        run.finish(rundir.COMPLETED, run.env_steps_done)
        run.log(f"completed {run.env_steps_done} env steps in {run.wall_time():.1f}s -> {args.out}")
        return 0
    except Interrupted as e:
        run.log(f"{e}; the checkpoint is written and no status.json: rerun the same command to resume")
        return 128 + e.signum
    except OSError as e:
        if not rundir.no_space(e):
            raise
        print(f"gorl-bench train: error: {e.strerror} (at env step {run.env_steps_done}; the last checkpoint "
              f"is intact: free space and rerun the same command to resume)", file=sys.stderr)
        return EXIT_NO_SPACE
    except BadInput:
        raise  # one line, exit 2 (e.g. no usable checkpoint)
    except Exception as e:
        import traceback
        traceback.print_exc()  # the user's code (an env, a plug-in) gets its traceback
        print(f"gorl-bench train: error: {algo.name} on {args.task} (seed {args.seed}) failed at env step "
              f"{run.env_steps_done}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
              f" (files kept; the run resumes from its last checkpoint when rerun)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        run.close_sinks()
        _restore_handlers(previous)


def _install_stop_handlers(run) -> dict:
    """SIGTERM (SLURM's time limit and preemption) and SIGINT (Ctrl-C) ask the run to stop at its
    next checkpoint; a second one stops at once."""
    import signal

    def stop(signum, frame):
        if run.stop_requested is not None:
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        run.stop_requested = signum
        run.log(f"received {signal.Signals(signum).name}: stopping at the next checkpoint "
                f"(send it again to stop at once)")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, stop)
        except ValueError:  # not the main thread (e.g. main() called from a worker thread)
            pass
    return previous


def _restore_handlers(previous: dict) -> None:
    import signal
    for sig, handler in previous.items():
        signal.signal(sig, handler)


def cmd_list(args) -> int:
    from gorl import registry
    from gorl.config import preset_names
    from gorl.envs import PAPER_TASKS

    _import_modules(args.imports)
    if args.algo:
        return _show_config(args)
    rows = [(name, ", ".join(preset_names(a.presets_file)), a.description) for name, a in registry.algorithms().items()]
    w = max(len(r[1]) for r in rows)
    for name, presets, description in rows:
        print(f"{name:16s} presets: {presets:{w}s}  {description}")
    print("\npaper = the authors' ICML 2026 release, paper-v1 = the arXiv v1 code, small = paper on a workstation, "
          "smoke = seconds (spec 11, 13)")
    from gorl.envs.names import PAPER_TASKS as PLAYGROUND_TASKS
    print(f"\npaper tasks: {', '.join(PAPER_TASKS)} (any dm_control suite 'domain-task' or gym:<id> works)")
    print(f"paper tasks on the paper's physics (MJX, pip install -e '.[playground]'): "
          f"{', '.join(PLAYGROUND_TASKS)}, playground:CartpoleBalance (any Playground DM Control Suite task)")
    return 0


def _show_config(args) -> int:
    """``gorl-bench list ALGO --preset P [--task T] [--set k=v]``: every value and its source; for a
    staged algorithm (GoRL) the value of each stage where they differ."""
    import dataclasses

    from gorl import registry
    from gorl.config import STAGE_OVERRIDES, parse_set, resolve_config_sources, resolve_stage_sources

    try:
        algo = registry.get(args.algo)
    except KeyError as e:
        raise BadInput(str(e.args[0])) from None
    overrides = parse_set(args.overrides)
    title = f"# {algo.name}, preset {args.preset}" + (f", task {args.task}" if args.task else "")
    if STAGE_OVERRIDES not in {f.name for f in dataclasses.fields(algo.config_cls)}:
        values, origin = resolve_config_sources(algo.config_cls, algo.presets_file, args.preset, args.task,
                                                overrides)
        print(title)
        width = max(map(len, values))
        for key, value in values.items():
            print(f"{key:{width}s}  {value!r:28s}  # {origin[key]}")
        return 0
    stages = resolve_stage_sources(algo.config_cls, algo.presets_file, args.preset, args.task, overrides)
    n = len(stages)
    print(title)
    print(f"# {n} stages; a value that differs between stages is shown per stage: "
          + " / ".join(f"stage {k}" for k in range(n)))
    width = max(map(len, stages[0][0]))
    for key in stages[0][0]:
        vals = [s[key] for s, _ in stages]
        srcs = [o[key] for _, o in stages]
        if all(v == vals[0] for v in vals) and all(o == srcs[0] for o in srcs):
            print(f"{key:{width}s}  {vals[0]!r:28s}  # {srcs[0]}")
            continue
        groups: list[tuple[list[int], str]] = []  # runs of stages with the same source
        for k, o in enumerate(srcs):
            if groups and groups[-1][1] == o:
                groups[-1][0].append(k)
            else:
                groups.append(([k], o))
        where = "; ".join((f"stage {ks[0]}" if len(ks) == 1 else f"stages {ks[0]}-{ks[-1]}") + f": {o}"
                          for ks, o in groups)
        shown = " / ".join(repr(v) for v in vals)
        print(f"{key:{width}s}  {shown:28s}  # {where}")
    return 0


def _run_dirs(paths: list[Path]) -> list[Path]:
    from gorl import rundir
    out = []
    for p in paths:
        if not p.is_dir():
            raise BadInput(f"{p} is not a directory")
        if (p / rundir.CONFIG).exists() or (p / rundir.EVALS).exists():
            out.append(p)
            continue
        found = [rundir.run_path(p, *key) for key in rundir.discover(p)]
        if not found:
            raise BadInput(f"{p} is neither a run directory (no {rundir.CONFIG}) nor a folder of ALGO/TASK/seedN runs")
        out.extend(found)
    return out


def run_summary(run_dir: Path) -> dict:
    """What `show` prints for one run, from its text files only."""
    from gorl import rundir
    from gorl.provenance import attempts_summary
    cfg = rundir.read_config(run_dir) or {}
    status = rundir.read_status(run_dir)
    evals = rundir.read_evals(run_dir)
    prov = rundir.read_provenance(run_dir)
    steps = status.get("env_steps") if status else None
    wall = prov.get("wall_time_s") if status else None
    rollout, memory = rundir.provenance_section(prov, "rollout"), rundir.provenance_section(prov, "memory")
    if evals is not None and len(evals):
        steps = steps if steps is not None else int(evals["env_step"].iloc[-1])
        wall = wall if wall is not None else float(evals["wall_time"].iloc[-1])
    return {"run": str(run_dir), "algorithm": cfg.get("algorithm", "?"), "task": cfg.get("task", "?"),
            "seed": cfg.get("seed", "?"), "preset": cfg.get("preset", "?"),
            "rollout": rollout.get("used"),  # scan or step: what steps/s depends on (playground: tasks)
            "status": status.get("status", "?") if status else (rundir.INCOMPLETE if evals is not None else "empty"),
            "env_steps": steps,
            "final_return": float(evals["return_mean"].iloc[-1]) if evals is not None and len(evals) else None,
            "best_return": float(evals["return_mean"].max()) if evals is not None and len(evals) else None,
            "wall_time_s": wall,
            "steps_per_s": steps / wall if steps and wall else None,
            "peak_rss_mib": memory.get("peak_rss_mib"),
            "peak_rss_children_mib": memory.get("peak_rss_children_mib"),  # sharded env workers
            **attempts_summary(prov)}


def cmd_show(args) -> int:
    runs = _run_dirs(args.runs)
    rows = [run_summary(r) for r in runs]
    if args.json:
        import json
        print(json.dumps(rows, indent=1))
    else:
        _print_summaries(rows)
    if args.plot is not None:
        _plot_curves(runs, rows, args.plot)
        if not args.json:
            print(f"learning curves -> {args.plot}")
    return 0


def _print_summaries(rows: list[dict]) -> None:
    def fmt(v, spec=""):
        return "-" if v is None else format(v, spec)

    def hms(s):
        return "-" if s is None else f"{int(s) // 3600}:{int(s) // 60 % 60:02d}:{int(s) % 60:02d}"

    table = [("run", "algorithm", "task", "seed", "preset", "rollout", "status", "env steps", "final", "best",
              "wall", "steps/s")]
    for r in rows:
        table.append((r["run"], r["algorithm"], r["task"], str(r["seed"]), r["preset"], fmt(r["rollout"]), r["status"],
                      fmt(r["env_steps"], ","), fmt(r["final_return"], ".1f"), fmt(r["best_return"], ".1f"),
                      hms(r["wall_time_s"]), fmt(r["steps_per_s"], ",.0f")))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        print("  ".join(c.ljust(w) if i < 7 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    for r in rows:
        for what, key in (("under other code", "code_changes"), ("on another kind of device", "device_changes")):
            if r[key]:
                print(f"note: {r['run']} was resumed {what} ({'; '.join(r[key])}); "
                      f"its provenance.json lists the {r['attempts']} attempts")


def _plot_curves(runs: list[Path], rows: list[dict], out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gorl import rundir
    tasks = sorted({r["task"] for r in rows})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for run, r in zip(runs, rows):
        ev = rundir.read_evals(run)
        if ev is None:
            continue
        ax = axes[0][tasks.index(r["task"])]
        x, y, sd = ev["env_step"].to_numpy(), ev["return_mean"].to_numpy(), ev["return_std"].to_numpy()
        line, = ax.plot(x, y, marker="o", ms=3, label=f"{r['algorithm']} seed {r['seed']}")
        ax.fill_between(x, y - sd, y + sd, color=line.get_color(), alpha=0.15, lw=0)
    for ax, task in zip(axes[0], tasks):
        ax.set_title(task)
        ax.set_xlabel("env steps")
        ax.set_ylabel("evaluation return (mean +- std over episodes)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def cmd_evaluate(args) -> int:
    if args.episodes <= 0:
        raise BadInput(f"--episodes must be positive, got {args.episodes}")
    if args.video is not None:
        from gorl.policy import check_video_path
        check_video_path(args.video)
        if _USER_MUJOCO_GL is None:  # MuJoCo's offscreen renderer: EGL with a GPU, OSMesa (software) without
            import torch
            os.environ["MUJOCO_GL"] = "egl" if torch.cuda.is_available() else "osmesa"
        elif _USER_MUJOCO_GL == "disable":
            raise BadInput("--video needs MUJOCO_GL=egl (GPU machines) or osmesa (CPU machines), not disable")
    _import_modules(args.imports)
    import numpy as np

    from gorl.policy import evaluate_policy, load_policy, record_video
    policy = load_policy(args.run, args.which, device=args.device)
    print(policy)
    returns = evaluate_policy(policy, args.episodes, seed=args.seed, deterministic=not args.sampled)
    print(f"return {np.mean(returns):.1f} +- {np.std(returns):.1f} over {args.episodes} episodes "
          f"({'sampled' if args.sampled else 'deterministic'} actions; {', '.join(f'{r:.1f}' for r in returns)})")
    if args.video is not None:
        try:
            info = record_video(policy, args.video, seed=args.seed, deterministic=not args.sampled)
        except BadInput:
            raise
        except Exception as e:  # noqa: BLE001 - no GL library, no display: one line naming MUJOCO_GL
            raise BadInput(f"--video: MuJoCo could not render with MUJOCO_GL={os.environ['MUJOCO_GL']} "
                           f"({type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}); "
                           f"install libosmesa6 (osmesa) or libegl1 (egl), or set MUJOCO_GL") from None
        print(f"video of episode 1 (return {info['return']:.1f}): {info['frames']} frames at {info['fps']:.0f} fps "
              f"-> {args.video}")
    return 0


def cmd_check_run(args) -> int:
    from gorl.check_run import check_run
    _import_modules(args.imports)
    problems = check_run(args.run_dir)
    if problems:
        for p in problems:
            print(f"{args.run_dir}: {p}", file=sys.stderr)
        return 1
    print(f"{args.run_dir}: ok")
    return 0


def cmd_plan(args) -> int:
    import json

    from gorl import experiment
    exp = experiment.load(args.config)
    experiment.estimate(exp, args.results)
    print(json.dumps(experiment.plan_json(exp), indent=1) if args.json else experiment.plan_text(exp))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "list": cmd_list, "check-run": cmd_check_run, "show": cmd_show,
               "evaluate": cmd_evaluate, "plan": cmd_plan}[args.command]
    from gorl import experiment  # noqa: F401  (checks every plug-in's presets when it registers)
    from gorl.registry import RegistryError
    try:
        code = handler(args)
        sys.stdout.flush()  # a closed pipe raises here, not in the interpreter's exit
        return code
    except (BadInput, RegistryError) as e:
        print(f"gorl-bench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        if args.command == "train":  # a run's own output: its failure is the run's to report
            raise
        # the reader went away (`gorl-bench show results/ | head`): stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # killed by SIGPIPE, as the shell reports it


if __name__ == "__main__":
    sys.exit(main())
