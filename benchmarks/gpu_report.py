"""Issue 20's targets, read from what benchmarks/gpu_paper_scale.py measured.

    python benchmarks/gpu_report.py OUT            # OUT/gpu_paper_scale.json (or the file itself)
    python benchmarks/gpu_report.py OUT1 OUT2      # the parts of several calls, read as one

Prints a Markdown table for docs/benchmarks.md: each target of issue 20, the figure measured for
it, and whether it is met; then the other parts' figures, and the parts that failed or are
missing. Nothing is measured here and nothing is assumed: a target whose parts did not run says
so. ``benchmarks/gpu_session.sh`` runs it after its parts (OUT/gpu_report.md); it runs on any
machine, so the JSON a GPU session brought back can be read again here.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET_RATIO, MILESTONE_RATIO = 1.0, 0.5  # ours / Brax PPO env steps/s, same GPU
MAX_UPDATE_S = 0.5                         # PPO's update per paper iteration
MAX_RUN_MINUTES = 5.0                      # a 180M-step PPO run
MAX_GORL_OVER_PPO = 1.3                    # GoRL-FM's wall time per encoder env step over PPO's
MAX_CHECKPOINT_SHARE = 0.05                # checkpointing's share of the training time
# The PPO figures the targets read: the scan rollout with the compiled update where measured (what
# config/paper-gpu.yaml runs), each epoch a CUDA graph or each step's graphs, the faster where both
# were measured (the row names which); else with the eager update (the gpu_paper_scale.py default).
PPO_PARTS = ("ppo_scan_compiled_epoch", "ppo_scan_compiled", "ppo_scan_epoch", "ppo_scan")
NOT_SHOWN = ("measured_at", "call")  # provenance of a record, not a figure


def _n(x, digits: int = 0) -> str:
    return f"{x:,.{digits}f}" if isinstance(x, (int, float)) else str(x)


def _part(figures: dict, name: str) -> tuple[dict | None, str]:
    """(the part's figures, or None with why)."""
    f = figures.get(name)
    if f is None:
        return None, f"not measured (no `{name}` in the JSON)"
    if "error" in f:
        return None, f"`{name}` failed: {f['error']}"
    return f, ""


def _ppo_part(figures: dict) -> str:
    """The PPO record the targets read (:data:`PPO_PARTS`): the compiled update's where measured (the
    faster of its two ``cuda_graph`` records), else the eager update's (likewise)."""
    for group in (PPO_PARTS[:2], PPO_PARTS[2:]):
        ok = [n for n in group if n in figures and "error" not in figures[n]]
        if ok:
            return max(ok, key=lambda n: figures[n].get("env_steps_per_s", 0))
        if any(n in figures for n in group):  # only failures: the failure is the row's figure
            return next(n for n in group if n in figures)
    return PPO_PARTS[-1]


def _how(ppo: dict | None) -> str:
    """The update's settings of a PPO record, for the target's row."""
    if not ppo or not ppo.get("compile_update"):
        return " (eager update" + (", `cuda_graph: epoch`)" if ppo and ppo.get("cuda_graph") == "epoch" else ")")
    if ppo.get("cuda_graph") == "epoch":
        return " (`compile_update: true`, `cuda_graph: epoch`)"
    return " (`compile_update: true`, as config/paper-gpu.yaml runs it)"


def _first(figures: dict, prefix: str) -> str:
    return next((k for k in figures if k.startswith(prefix)), prefix.rstrip("_"))


def targets(figures: dict) -> list[tuple[str, str, str]]:
    """(target, measured, met) rows; met is 'yes', 'no', 'milestone only' or '-' (not measured)."""
    rows = []
    name = _ppo_part(figures)
    ppo, why_ppo = _part(figures, name)
    brax, why_brax = _part(figures, "brax")
    how = _how(ppo)
    target = (f"PPO `paper` on {ppo['task'] if ppo else 'playground:CheetahRun'}{how}: env steps/s >= "
              f"{TARGET_RATIO}x Brax PPO on the same GPU (milestone {MILESTONE_RATIO}x)")
    if ppo and brax and brax.get("env_steps_per_s"):
        ratio = ppo["env_steps_per_s"] / brax["env_steps_per_s"]
        met = "yes" if ratio >= TARGET_RATIO else "milestone only" if ratio >= MILESTONE_RATIO else "no"
        if "call" not in ppo or "call" not in brax:
            apart = " (whether in one call is not recorded)"
        elif ppo["call"] != brax["call"]:
            apart = f" (measured in two calls, at {ppo['measured_at']} and {brax['measured_at']}: not one run's ratio)"
        else:
            apart = ""
        rows.append((target, f"{_n(ppo['env_steps_per_s'])} vs {_n(brax['env_steps_per_s'])}: "
                             f"**{ratio:.2f}x**{apart}", met))
    else:
        rows.append((target, why_ppo or why_brax or "Brax gave no rate", "-"))
    if ppo:
        rows.append((f"PPO's update <= {MAX_UPDATE_S} s per iteration", f"{ppo['update_s']:.3f} s "
                     f"(iteration {ppo['iteration_s']:.3f} s, rollout {ppo['rollout_s']:.3f} s)",
                     "yes" if ppo["update_s"] <= MAX_UPDATE_S else "no"))
        with_evals = ppo.get("paper_run_minutes_with_evals")
        evals = "" if with_evals is None else \
            f"; {with_evals} min with its {ppo['num_evals']} evaluations of {ppo['eval_s']:.2f} s"
        rows.append((f"a 180M-step PPO run < {MAX_RUN_MINUTES:g} min", f"{ppo['paper_run_minutes']} min "
                     f"(evaluations apart{evals})",  # a run evaluates: the figure with them decides, where measured
                     "yes" if (with_evals or ppo["paper_run_minutes"]) < MAX_RUN_MINUTES else "no"))
    else:
        rows += [(f"PPO's update <= {MAX_UPDATE_S} s per iteration", why_ppo, "-"),
                 (f"a 180M-step PPO run < {MAX_RUN_MINUTES:g} min", why_ppo, "-")]
    gorl, why_gorl = _part(figures, "gorl")
    target = f"GoRL-FM's wall time per encoder env step <= {MAX_GORL_OVER_PPO}x PPO's"
    if gorl and ppo and "run_minutes_projected" in gorl:
        run_s = gorl.get("run_s_projected", gorl["run_minutes_projected"] * 60)  # the minutes are rounded
        per_step = {"gorl": run_s / gorl["run_encoder_env_steps"],
                    "ppo": ppo["iteration_s"] / ppo["steps_per_iteration"]}
        ratio = per_step["gorl"] / per_step["ppo"]
        steady = gorl.get("run_s_steady_projected")
        steady = "" if not steady else \
            f" ({steady / gorl['run_encoder_env_steps'] / per_step['ppo']:.2f}x with the boundaries' compilations apart, " \
            f"as PPO's figure leaves its own out)"
        same = "" if gorl["task"] == ppo["task"] else f" (GoRL on {gorl['task']}, PPO on {ppo['task']})"
        if bool(gorl.get("compile_update")) != bool(ppo.get("compile_update")):
            same += " (one with the compiled update, the other eager)"
        by_envs = gorl.get("collection_by_envs") or {}
        if by_envs:  # the part's last phase: a boundary's collection at two batch sizes
            same += "; a stage boundary's collection with " + ", ".join(
                f"{int(e):,} envs per batch {f['boundary_s_projected']} s" for e, f in by_envs.items())
        fit = figures.get("fit") or {}
        if "compiled_full_fit_s_projected" in fit:  # the fit part: the full fit eager and compiled, one process
            same += (f"; the `fit` part's full fit on {fit['device']}: {fit['eager_full_fit_s_projected']} s eager, "
                     f"{fit['compiled_full_fit_s_projected']} s compiled")
            if "compiled_epoch_full_fit_s_projected" in fit:  # cuda_graph: epoch
                per = "epoch" if fit.get("schedule") == "epochs" else "validation interval"
                same += f", {fit['compiled_epoch_full_fit_s_projected']} s compiled with a graph per {per}"
        rows.append((target, f"**{ratio:.2f}x**{steady}: the GoRL run projected to {gorl['run_minutes_projected']} min for "
                             f"{_n(gorl['run_encoder_env_steps'])} encoder steps (encoder iteration "
                             f"{gorl['encoder0_iteration_s']:.3f} s through decoder 0, "
                             f"{gorl['encoder_iteration_s']:.3f} s through a fitted one; per stage boundary "
                             f"collection {gorl.get('collect_s_projected', gorl['collect_s'])} s + "
                             f"fit {gorl['decoder_full_fit_s_projected']} s)"
                             f"{same}", "yes" if ratio <= MAX_GORL_OVER_PPO else "no"))
    else:
        why = gorl and (gorl.get("projection_error") or
                        (f"stopped after {gorl['reached']}" if "reached" in gorl else "an older gorl part"))
        rows.append((target, why_gorl or why_ppo or f"no whole-run projection in the gorl part ({why})", "-"))
    name = _first(figures, "checkpoint_")
    ckpt, why = _part(figures, name)
    target = f"checkpointing < {MAX_CHECKPOINT_SHARE:.0%} of the training time (`checkpoint_every: auto`)"
    if ckpt:
        every = ckpt["every_for_5pct"]
        rows.append((target, f"one checkpoint {ckpt['checkpoint_s']} s ({ckpt['checkpoint_mib']} MiB) = "
                             f"{ckpt['checkpoint_over_iteration']:.1%} of an iteration",
                     f"yes, checkpointing every {every} iteration(s)"))  # what `auto` picks from these
    else:
        rows.append((target, why, "-"))
    tests, why = _part(figures, "cuda_tests")
    if tests:
        failures = tests.get("failures") or []
        measured = tests["summary"] + (f"; failed: {', '.join(failures)}" if failures else "")
        met = "yes" if tests["exit_code"] == 0 else "not finished" if tests["exit_code"] is None else "no"
    else:
        measured, met = why, "-"
    rows.append(("the CUDA tests (tests/test_cuda.py) pass", measured, met))
    return rows


def others(figures: dict) -> list[str]:
    """One line per other part that ran: its figures as measured."""
    shown = {_ppo_part(figures), "brax", "gorl", "cuda_tests"} | {k for k in figures if k.startswith("ratio_")}
    lines = []
    for name, f in figures.items():
        if name in shown or "error" in f:
            continue
        lines.append(f"- `{name}`: " + ", ".join(f"{k}={v}" for k, v in f.items() if k not in NOT_SHOWN))
    return lines


def report(figures: dict) -> str:
    out = ["| issue 20 target | measured | met |", "|---|---|---|"]
    out += [f"| {t} | {m} | {ok} |" for t, m, ok in targets(figures)]
    rest = others(figures)
    if rest:
        out += ["", "Other figures:", ""] + rest
    failed = [f"- `{k}`: {f['error']}" for k, f in figures.items() if "error" in f]
    if failed:
        out += ["", "Parts that failed:", ""] + failed
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path, nargs="+",
                   help="gpu_paper_scale.py --out folders (or their gpu_paper_scale.json), e.g. one per call of "
                        "a GPU session; a part measured in several is taken from the last one given")
    args = p.parse_args(argv)
    figures = {}
    for out in args.out:
        path = out / "gpu_paper_scale.json" if out.is_dir() else out
        if not path.is_file():
            print(f"gpu_report: {path} does not exist (run benchmarks/gpu_paper_scale.py --out {out} first)",
                  file=sys.stderr)
            return 2
        figures.update(json.loads(path.read_text()))
    sys.stdout.write(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
