"""Command line: ``gorl-bench train|check-run|list`` (also ``python -m gorl``)."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "disable")

from gorl.errors import BadInput  # noqa: E402

EXIT_BAD_INPUT = 2


def _train_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train one (algorithm, task, seed) run",
        description="Train one run and write the run-directory contract to --out. Re-running the same "
                    "command on an interrupted run resumes it from its last checkpoint.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("algo", help="algorithm name (see `gorl-bench list`)")
    p.add_argument("task", help="dm_control suite task as 'domain-task' (e.g. cheetah-run, finger-turn_hard) "
                                "or 'gym:<id>' for a registered Gymnasium env with a Box action space")
    p.add_argument("--seed", type=int, default=1, help="run seed (networks, envs, evaluation resets)")
    p.add_argument("--steps", type=int, default=None,
                   help="env-step budget (overrides the preset's total_steps; GoRL scales its stage budgets)")
    p.add_argument("--preset", default="small", help="hyperparameter preset from the algorithm's presets file "
                                                     "(paper, small, smoke)")
    p.add_argument("--out", required=True, type=Path, help="run directory to write (created if missing)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one hyperparameter; numbers as usually written (3e-4, 1e9, .5, 1_000_000), "
                        "else YAML (true, null, [64, 64], text); repeatable")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="import a Python module first (e.g. one registering a Gymnasium env or an algorithm); "
                        "repeatable")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op threads (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar; plain log lines")
    p.add_argument("--force", action="store_true",
                   help="start over: delete what a run wrote in --out (the contract's files and stages/); "
                        "refused if --out holds anything else")
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gorl-bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _train_parser(sub)
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
    return parser


def _import_modules(mods: list[str]) -> None:
    for m in mods:
        try:
            importlib.import_module(m)
        except ImportError as e:
            raise BadInput(f"--import {m}: {e}") from None


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
    if args.steps is not None and args.steps <= 0:
        raise BadInput(f"--steps must be positive, got {args.steps}")
    if args.seed < 0:
        raise BadInput(f"--seed must be non-negative, got {args.seed}")
    overrides = parse_set(args.overrides)
    if args.steps is not None:
        overrides["total_steps"] = args.steps
    cfg = build_config(algo.config_cls, algo.presets_file, args.preset, args.task, overrides)

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
    resolved = {"algorithm": algo.name, "task": args.task, "seed": args.seed, "preset": args.preset,
                "imports": list(args.imports), "overrides": dict(parse_set(args.overrides)),
                "hyperparameters": config_to_dict(cfg)}
    lock = rundir.Lock(out)  # held while this process trains; a second process stops here
    try:
        _claim(out, args.force, resolved)
    except BaseException:
        lock.release(refused=True)
        raise
    return algo, cfg, resolved, lock


def _claim(out: Path, force: bool, resolved: dict) -> None:
    """With the lock held: refuse an ended run (unless --force), start over (--force), or check
    that an interrupted run has the same configuration."""
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
        old.pop("device", None)  # where it ran may change between attempts
        diff = _diff_keys(old, resolved)
        if diff:
            raise BadInput(f"--out {out} holds an interrupted run with a different configuration "
                           f"({', '.join(diff)}); use another --out or --force to start over")


def _diff_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k), new.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _diff_keys(a, b, f"{prefix}{k}.")
        elif a != b:
            keys.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return keys


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
    from gorl.errors import Diverged, Gated
    from gorl.provenance import set_matmul_precision

    torch.set_num_threads(max(1, threads))
    set_matmul_precision(getattr(cfg, "matmul_precision", None))
    run = Run(algo=algo.name, task=args.task, seed=args.seed, preset=args.preset, dir=args.out,
              config=resolved, device=resolve_device(cfg.device), quiet=args.quiet)
    if lock.stale_pid:
        run.log(f"took over the lock of process {lock.stale_pid}, which ended without releasing it")
    resolved["device"] = str(run.device)
    rundir.write_yaml(args.out / rundir.CONFIG, resolved)
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
    from gorl.envs.playground import PAPER_TASKS as PLAYGROUND_TASKS
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"train": cmd_train, "list": cmd_list, "check-run": cmd_check_run}[args.command]
    from gorl.registry import RegistryError
    try:
        return handler(args)
    except (BadInput, RegistryError) as e:
        print(f"gorl-bench {args.command}: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
