"""Paper scale on one GPU: this suite's trainer on `playground:` tasks next to Brax PPO.

Runs as-is on a bare Python 3.12 machine with an NVIDIA GPU, torch and CUDA jax, after the
offline wheels of the reference bundle (mujoco, mujoco-mjx, playground, brax, ...) are on
PYTHONPATH. ``benchmarks/gpu_session.sh OUT`` does it all in one call (install, then every part
in order of what its figures decide; measured on the H200 on 2026-12-04, seconds per part with its
compilations: ppo 107 (scan and step; 59-95 scan only), brax 80-89, compile 76, precision 10,
cuda_tests 175 (4 workers), gorl over 300 (its last phase, the collection compared at a second
batch size, stopped there); docs/benchmarks.md, sessions 23 and 24:
on a machine lent for minutes, run it with a time limit; every part that ends before the limit is
in OUT/gpu_paper_scale.json. By hand, from the repository root:

    python3 -m pip install -q --no-index --no-deps --target /tmp/site WHEELS/*.whl WHEELS/opt/jaxopt-*.whl \
        WHEELS/opt/trimesh-*.whl
    export PYTHONPATH=/tmp/site:$PWD MUJOCO_GL=disable XLA_PYTHON_CLIENT_PREALLOCATE=false
    python3 benchmarks/gpu_paper_scale.py --out OUT --parts ppo brax compile gorl cuda_tests

(parts run in the order given; a later call with the same OUT adds its parts to the JSON).

Parts (``--parts``; each prints its figures as it ends and adds them to OUT/gpu_paper_scale.json):
  raw     playground:CheetahRun env sets at 2048 envs: env steps/s of the jitted step with
          torch actions in and torch tensors out (DLPack), compile time apart.
  ppo     PPO ``paper`` preset on playground:CheetahRun: one warm-up iteration (compiles),
          then ``--iterations`` iterations of 983,040 env steps, with the per-phase breakdown
          (rollout = env + inference, update), and the time a 180M-step run would take, without
          and with its evaluations (two evaluations: the first compiles, the second is timed); once
          per ``--rollouts`` (scan: the rollout as one JAX program; step: one call per env step),
          recorded as ppo_scan / ppo_step (with ``--compile-update``, as config/paper-gpu.yaml
          runs it: ppo_scan_compiled / ppo_step_compiled), and once per ``--cuda-graphs`` (what one
          CUDA graph of the update holds, ``cuda_graph``; epoch: records ending ``_epoch``), with
          the ratio to the brax part when both ran in the same process.
  brax    Brax PPO (Playground's ``brax_ppo_config`` for the task, MJX ``impl='jax'``) on the
          same GPU at the same geometry: the steady-state training env steps/s Brax reports.
  gorl    GoRL-FM, one stage boundary at paper geometry: one encoder iteration, then the
          decoder-data collection (the release's: 4,096 episodes of 1,000 steps, 64 envs at a
          time) and a shortened decoder fit: ``--decoder-steps`` optimiser steps (the release's
          schedule; `paper` runs 50,000) or ``--decoder-epochs`` epochs (v1's); the seconds per
          step or epoch and the full fit they project to are reported. Then ``--iterations``
          steady encoder iterations through decoder 0 and through the fitted decoder 1, and the
          whole run they project to at the preset's stage budgets (``run_minutes_projected``,
          evaluations apart, as the ppo part's figure).
  fit     GoRL-FM's decoder fit at the preset's size (the release's 50,000 steps in `paper`; on
          the humanoid tasks ``--decoder-epochs`` of its up to 100 epochs) on random rows of the
          task's dimensions: ms per optimiser step eager and compiled (``compile_update``), each
          also with ``cuda_graph: epoch`` (a graph per validation interval, or per epoch), the
          compilation, the full fit each projects to.
  divergence  where the scan and the per-step path part over 1000 steps (the teacher-data check
          of tests/test_cuda.py), beside the same loop run again, nudged by one float32 ulp per
          action, and the scan with JAX at TF32.
  sharded dm_control cheetah-run, 2048 envs: one thread vs sharded over the machine's cores.
  precision  what an f32 matmul is on this GPU: JAX at its default precision (the reference
          stack) and torch at fp32 / tf32 / bf16, each as the error against float64.
  cuda_tests tests/test_cuda.py (device placement, RNG states, cuda:k, scan on CUDA) under pytest.
  compile PPO ``paper`` on --task: seconds per update, eager vs ``compile_update: true``
          (torch.compile, CUDA graphs on CUDA), the compilation's seconds, the two first updates'
          largest relative difference, CUDA-graph skips and graphs compiled after the first update;
          then the same with ``cuda_graph: epoch`` (an epoch as one captured graph), compiled and eager.
          A failure here is recorded as this part's error; the other parts still run.
  checkpoint PPO ``paper`` on --task: seconds per iteration vs seconds per checkpoint (the state to
          the host, serialised, written, synced) and the ``checkpoint_every`` that keeps
          checkpointing under 5% of an iteration (issue 20, item 3). On a CPU, e.g.
          ``--device cpu --task playground:CartpoleBalance --parts checkpoint --iterations 1``.

Run everything:  python3 benchmarks/gpu_paper_scale.py --out $OUT   (then copy the printed
figures and OUT/gpu_paper_scale.json into docs/benchmarks.md with this command).

``--tiny`` shrinks every part to seconds (CartpoleBalance, a few envs; the fit part compiles
with 'aot_eager', without inductor's code generation) to check the script itself on a CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "disable")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

RESULTS: dict = {}
# Which call measured a part (gpu_session.sh sets one id per call; else this process's): a ratio of
# two parts measured in different calls, maybe on two starts of the lent machine, is not one run's.
CALL_ID = os.environ.get("GPU_CALL_ID") or f"{os.uname().nodename}-{os.getpid()}"
PAPER_RUN_STEPS = 179_896_320


def log(msg: str) -> None:
    print(msg, flush=True)


def record(part: str, out: Path, **figures) -> None:
    if not RESULTS and (out / "gpu_paper_scale.json").exists():  # an earlier call's parts, same OUT
        RESULTS.update(json.loads((out / "gpu_paper_scale.json").read_text()))
    RESULTS[part] = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                     "call": CALL_ID}
    (out / "gpu_paper_scale.json").write_text(json.dumps(RESULTS, indent=2))
    log(f"[{part}] " + ", ".join(f"{k}={v}" for k, v in figures.items()))


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def part_raw(args, out: Path) -> None:
    from gorl.envs import make_envs
    n, steps = (16, 50) if args.tiny else (2048, 200)
    t0 = time.perf_counter()
    envs = make_envs(args.task, list(range(n)), args.device)
    acts = torch.rand(steps + 1, n, envs.action_dim, device=args.device) * 2 - 1
    envs.step(acts[0])[0].sum().item()
    t1 = time.perf_counter()
    for i in range(steps):
        o = envs.step(acts[i + 1])
    o[0].sum().item()
    t2 = time.perf_counter()
    record("raw", out, task=args.task, envs=n, env_steps_per_s=round(n * steps / (t2 - t1)),
           first_step_s=round(t1 - t0, 1))


def _trainer(algo: str, args, tmp: Path, **overrides):
    from common import make_trainer
    return make_trainer(algo, args.task, "smoke" if args.tiny else "paper", tmp, device=args.device, **overrides)


def ppo_record(rollout: str, compile_update: bool, cuda_graph: str) -> str:
    """The ppo part's record name for one configuration: ppo_scan, ppo_scan_compiled, ..._epoch."""
    return f"ppo_{rollout}" + ("_compiled" if compile_update else "") + ("_epoch" if cuda_graph == "epoch" else "")


def _update_settings(args, cuda_graph: str) -> dict:
    """The trainer overrides of --compile-update and one of --cuda-graphs."""
    return {**({"compile_update": True} if args.compile_update else {}),
            **({"cuda_graph": cuda_graph} if cuda_graph != "step" else {})}


def part_ppo(args, out: Path) -> None:
    for rollout in args.rollouts:
        for graph in args.cuda_graphs:
            name = ppo_record(rollout, args.compile_update, graph)
            t0 = time.perf_counter()
            try:
                _ppo(args, out, rollout, graph)
            except Exception as e:  # the other configurations' figures still count
                import traceback
                traceback.print_exc()
                record(name, out, error=f"{type(e).__name__}: {e}")
            log(f"[{name}] took {time.perf_counter() - t0:.0f} s")


def _ppo(args, out: Path, rollout: str, graph: str = "step") -> None:
    from common import breakdown
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        trainer = _trainer("ppo", args, Path(tmp), rollout=rollout, **_update_settings(args, graph))
        trainer.update(trainer.collect())  # warm-up: compiles the env step for this batch
        sync()
        warm = time.perf_counter() - t0
        b = breakdown(trainer, args.iterations, warmup=0)
        per_iter = b["total"] * trainer.cfg.steps_per_iteration / 1000
        # An evaluation (eval_episodes envs for one episode, the scan on playground tasks): the
        # first compiles, the second is timed; a run makes num_evals of them.
        evals = []
        for index in range(2):
            t0 = time.perf_counter()
            trainer.evaluate(index)
            sync()
            evals.append(time.perf_counter() - t0)
        run_s = PAPER_RUN_STEPS / b["sps"]
        captured = trainer.epoch_captured
        record(ppo_record(rollout, args.compile_update, graph), out, task=args.task,
               rollout=rollout, compile_update=bool(args.compile_update), cuda_graph=graph,
               **({} if captured is None else {"epoch_captured": captured}), env_steps_per_s=round(b["sps"]),
               iteration_s=round(per_iter, 3), rollout_s=round((b["env"] + b["inference"]) *
                                                              trainer.cfg.steps_per_iteration / 1000, 3),
               update_s=round(b["update"] * trainer.cfg.steps_per_iteration / 1000, 3),
               steps_per_iteration=trainer.cfg.steps_per_iteration, warmup_s=round(warm, 1),
               paper_run_minutes=round(run_s / 60, 1), eval_s=round(evals[1], 3),
               eval_first_s=round(evals[0], 1), num_evals=trainer.cfg.num_evals,
               paper_run_minutes_with_evals=round((run_s + trainer.cfg.num_evals * evals[1]) / 60, 1))


def part_compile(args, out: Path) -> None:
    """PPO ``paper`` (--tiny: smoke) on --task: seconds per update, eager vs ``compile_update``
    (torch.compile; on CUDA its 'reduce-overhead' mode, CUDA graphs), and each with ``cuda_graph:
    epoch`` (an epoch's minibatch steps captured as one CUDA graph: ``compiled_epoch``,
    ``eager_epoch``), on one rollout's batch. Every trainer starts from the same weights and seed:
    its first update is compared with the eager one's (``*first_update_max_rel_diff`` over the
    logged metrics; float rounding apart, they compute the same). ``compile_s``: a compiled trainer's
    first update (compilation, CUDA-graph recording or capture) less a steady one. Then
    ``--iterations`` updates each, interleaved, synchronised, median ``*update_s``, ``speedup`` =
    eager / compiled (``*_speedup``: eager / that one). ``cudagraph_skips``: graphs inductor ran
    without a CUDA graph (0 expected; TORCH_LOGS=cudagraphs says why); ``graphs_after_first_update``:
    graphs compiled after the first updates (0 expected: no recompilation per minibatch);
    ``epoch_captured``: whether each epoch variant ran captured (a failed capture falls back, and
    its trainer's log says why)."""
    import statistics
    from torch._dynamo.utils import counters
    variants = {"eager": {}, "compiled": {"compile_update": True},
                "compiled_epoch": {"compile_update": True, "cuda_graph": "epoch"}, "eager_epoch": {"cuda_graph": "epoch"}}
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {name: _trainer("ppo", args, Path(tmp) / name, **over) for name, over in variants.items()}
        eager = trainers["eager"]
        batch = eager.collect()
        sync()
        first, seconds = {}, {}
        for name, t in trainers.items():
            torch.manual_seed(1)
            t0 = time.perf_counter()
            first[name] = t.update(batch)
            sync()
            seconds[name] = [time.perf_counter() - t0]
        graphs = counters["stats"]["unique_graphs"]
        for _ in range(args.iterations):  # interleaved: all see the same load
            for name, t in trainers.items():
                t0 = time.perf_counter()
                t.update(batch)
                sync()
                seconds[name].append(time.perf_counter() - t0)

        def diff(name: str) -> str:
            return f"{max(abs(first[name][k] - v) / max(abs(v), 1e-12) for k, v in first['eager'].items()):.1e}"
        cfg = eager.cfg
        n_mb = cfg.num_epochs * cfg.num_minibatches
        update = {k: statistics.median(v[1:]) for k, v in seconds.items()}
        epochs = {}
        for name in ("compiled_epoch", "eager_epoch"):
            epochs.update({f"{name}_update_s": round(update[name], 4),
                           f"{name}_speedup": round(update["eager"] / update[name], 2),
                           f"{name}_ms_per_minibatch": round(1000 * update[name] / n_mb, 3),
                           f"{name}_first_s": round(seconds[name][0], 1),
                           f"{name}_first_update_max_rel_diff": diff(name)})
        record(f"compile_{args.task.split(':')[-1]}", out, task=args.task, device=str(eager.device),
               steps_per_iteration=cfg.steps_per_iteration, minibatches=n_mb,
               eager_update_s=round(update["eager"], 4), compiled_update_s=round(update["compiled"], 4),
               speedup=round(update["eager"] / update["compiled"], 2),
               compiled_ms_per_minibatch=round(1000 * update["compiled"] / n_mb, 3),
               compile_s=round(seconds["compiled"][0] - update["compiled"], 1),
               first_update_max_rel_diff=diff("compiled"), cudagraph_skips=counters["inductor"]["cudagraph_skips"],
               graphs_after_first_update=counters["stats"]["unique_graphs"] - graphs, **epochs,
               epoch_captured={name: trainers[name].epoch_captured for name in ("compiled_epoch", "eager_epoch")})


def part_checkpoint(args, out: Path) -> None:
    """What a checkpoint costs next to an iteration: PPO (paper; --tiny: smoke) on --task. One rollout
    compiles (torch's update needs no warm-up), ``--iterations`` iterations are timed (collect +
    update, synchronised), then three checkpoints (the trainer's state, Adam's included, to the host,
    serialised, written and synced, as train() saves it). ``every_for_5pct`` is the
    ``checkpoint_every`` that keeps checkpointing under 5% of the iterations' time (what
    ``checkpoint_every: auto`` picks)."""
    import math
    import statistics
    with tempfile.TemporaryDirectory() as tmp:
        trainer = _trainer("ppo", args, Path(tmp))
        trainer.collect()  # compiles the rollout
        sync()
        rollout = update = 0.0
        for _ in range(args.iterations):
            t0 = time.perf_counter()
            batch = trainer.collect()
            sync()
            t1 = time.perf_counter()
            trainer.update(batch)
            sync()
            rollout, update = rollout + t1 - t0, update + time.perf_counter() - t1
        iteration = (rollout + update) / args.iterations
        saves = []
        for _ in range(3):
            t0 = time.perf_counter()
            trainer.run.save_checkpoint(trainer.state_dict())
            saves.append(time.perf_counter() - t0)
        save = statistics.median(saves)
        size = (trainer.run.dir / "checkpoint.pt").stat().st_size
        record(f"checkpoint_{args.task.split(':')[-1]}", out, task=args.task, device=args.device,
               steps_per_iteration=trainer.cfg.steps_per_iteration, iteration_s=round(iteration, 3),
               rollout_s=round(rollout / args.iterations, 3), checkpoint_s=round(save, 4),
               checkpoint_mib=round(size / 2**20, 2), checkpoint_over_iteration=round(save / iteration, 4),
               every_for_5pct=max(1, math.ceil(save / (0.05 * iteration))))


def _device_put_replicated(x, devices):
    """brax 0.14.2 calls jax.device_put_replicated, which jax 0.10 removed: the same copies,
    stacked on a leading axis and placed as pmap places its outputs (no recompilation)."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    sharding = NamedSharding(Mesh(np.array(list(devices)), ("i",)), PartitionSpec("i"))

    def put(a):
        return jax.device_put(jnp.stack([jnp.asarray(a)] * len(devices)), sharding)
    return jax.tree.map(put, x)


def part_brax(args, out: Path) -> None:
    import jax
    if not hasattr(jax, "device_put_replicated"):
        jax.device_put_replicated = _device_put_replicated
    from brax.training.agents.ppo import networks as ppo_networks
    from brax.training.agents.ppo import train as ppo
    from mujoco_playground import registry, wrapper
    from mujoco_playground.config import dm_control_suite_params

    name = args.task.split(":", 1)[1]
    env = registry.load(name, config_overrides={"impl": "jax"})
    cfg = dm_control_suite_params.brax_ppo_config(name)
    epochs = args.iterations + 1
    per_step = cfg.num_envs * cfg.unroll_length * cfg.batch_size * cfg.num_minibatches // cfg.num_envs
    kw = dict(cfg)
    kw.pop("network_factory", None)
    if args.tiny:
        kw.update(num_envs=16, batch_size=16, num_minibatches=2, num_updates_per_batch=1)
        per_step = 16 * kw["unroll_length"] * 2
    # One training iteration per Brax epoch, and the rate is ours to compute: env steps over
    # `training/walltime` between two progress reports, the first epoch (compilation) left out.
    # Not Brax's `training/sps`: it multiplies by num_resets_per_eval while timing only one of the
    # num_resets_per_eval calls that make an epoch (docs/benchmarks.md, "Brax's rate corrected").
    # num_resets_per_eval=0: no env reset between epochs (training only, as the suite's PPO figure).
    kw.update(num_timesteps=epochs * per_step, num_evals=epochs + 1, num_resets_per_eval=0,
              num_eval_envs=16 if args.tiny else 128, run_evals=False)
    reports: list[tuple[int, float, float]] = []  # (env steps, training/walltime, Brax's training/sps)
    t0 = time.perf_counter()
    ppo.train(environment=env, wrap_env_fn=wrapper.wrap_for_brax_training,
              network_factory=ppo_networks.make_ppo_networks,
              progress_fn=lambda step, m: reports.append((int(step), float(m.get("training/walltime", 0.0)),
                                                          float(m.get("training/sps", float("nan"))))), **kw)
    wall = time.perf_counter() - t0
    timed = [r for r in reports if r[1] > 0][1:]  # [0]: the epoch that compiled
    rate = None
    if len(timed) >= 2:
        rate = (timed[-1][0] - timed[0][0]) / (timed[-1][1] - timed[0][1])
    record("brax", out, task=args.task, env_steps_per_s=round(rate) if rate else None,
           brax_training_sps=round(timed[-1][2]) if timed else None, epochs=epochs, steps_per_epoch=per_step,
           wall_s=round(wall, 1))


def shortened_decoder_fit(task: str, preset: str, steps: int, epochs: int) -> tuple[str, int | None, dict]:
    """How the gorl part shortens the fit of decoder 1 (stage 1's settings): (unit, the preset's
    length in that unit, the overrides). The release fits for ``decoder_train_steps`` optimiser
    steps (50,000 in `paper`), v1 and the humanoid profile for up to ``decoder_max_epochs`` epochs."""
    from gorl import registry
    from gorl.config import build_config
    algo = registry.get("gorl_fm")
    fit = build_config(algo.config_cls, algo.presets_file, preset, task, {}).for_stage(1)
    if fit.decoder_fit_schedule == "steps":
        full = fit.decoder_train_steps
        return "step", full, {"decoder_train_steps": min(steps, full or steps)}
    full = fit.decoder_max_epochs
    return "epoch", full, {"decoder_max_epochs": min(epochs, full or epochs)}


def fit_rate(history: list[dict]) -> tuple[float, float]:
    """(steady seconds per optimiser step, seconds of the first step) of a decoder fit, from its
    history's ``wall_s`` (seconds since the fit began, at each validation): the first step
    compiles where the fit is compiled, so the rate is the later steps' (their validations
    included, as a full fit runs them). The epochs schedule counts an epoch's steps."""
    steps = [r["step"] if "step" in r else r["steps"] for r in history]
    first = 1 if "step" in history[0] else 0  # 'steps': validations at step 0 and 1; 'epochs': per epoch
    if len(history) - first < 2:
        return history[-1]["wall_s"] / max(steps[-1], 1), history[-1]["wall_s"]
    start = history[first]
    first_s = start["wall_s"] - (history[0]["wall_s"] if first else 0.0)
    return (history[-1]["wall_s"] - start["wall_s"]) / (steps[-1] - steps[first]), first_s


def part_fit(args, out: Path) -> None:
    """GoRL-FM's decoder fit at the preset's size for --task (stage 1's settings: hidden layers,
    batch, Monte Carlo samples, validation; the release's 50,000 steps in `paper`, or on the humanoid
    tasks up to 100 epochs), eager and compiled (``compile_update``: torch.compile, CUDA graphs on
    CUDA), on random rows of the task's dimensions (a step's cost depends on the shapes, not the
    values): ``--decoder-steps`` steps (``--decoder-epochs`` epochs, each run to the end) each, the
    steady seconds per step (the first step or epoch, which compiles, apart: ``compile_s``), the
    full fit each projects to (epochs: all of them, an upper bound), the last validation's relative
    difference (float rounding apart, the two fits compute the same) and, on CUDA, each fit's peak
    memory. Then both again with ``cuda_graph: epoch`` (on CUDA each run of eval_interval steps
    between validations, or each epoch, as one captured graph; ``*_epoch`` figures,
    ``epoch_capture_notes`` empty when every capture held)."""
    import numpy as np

    from gorl import registry
    from gorl.algorithm.decoder import fit_decoder
    from gorl.config import build_config
    from gorl.envs.registry import env_dims
    from gorl.provenance import set_matmul_precision
    algo = registry.get("gorl_fm")
    preset = "smoke" if args.tiny else "paper"
    cfg = build_config(algo.config_cls, algo.presets_file, preset, args.task, {"device": args.device}).for_stage(1)
    fit = cfg.decoder_fit_config()
    if fit.schedule == "steps":
        unit, full = "step", fit.train_steps
        fit = dataclasses.replace(fit, train_steps=min(args.decoder_steps, full))
    else:  # the humanoid profile (and v1): every one of --decoder-epochs epochs runs (no early stop)
        unit, full = "epoch", fit.max_epochs
        fit = dataclasses.replace(fit, max_epochs=min(args.decoder_epochs, full), patience=full)
    obs_dim, act_dim = env_dims(args.task)  # nothing stepped or compiled
    device = torch.device(args.device)
    precision = set_matmul_precision(cfg.matmul_precision, device)  # as the run's trainer sets it
    rows = min(fit.max_samples, 20_000 if args.tiny else 1_000_000)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(rows, obs_dim)).astype(np.float32)
    acts = rng.normal(size=(rows, act_dim)).astype(np.float32)
    episode = np.arange(rows) // 1000  # 1000-step episodes, for the release's split by episode
    figures = dict(task=args.task, preset=preset, device=str(device), matmul_precision=precision,
                   batch_size=fit.batch_size, mc_samples=fit.mc_samples, hidden=fit.hidden, schedule=fit.schedule,
                   eval_interval=fit.eval_interval, **{f"{unit}s_timed": fit.train_steps or fit.max_epochs,
                                                       f"{unit}s_in_preset": full})
    last = {}
    said = []  # a captured variant whose capture fell back says so here
    variants = {"eager": (False, False), "compiled": (True, False),
                "compiled_epoch": (True, True), "eager_epoch": (False, True)}
    for name, (compiled, captured) in variants.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        try:
            _, history = fit_decoder("fm", obs, acts, dataclasses.replace(fit, compiled=compiled, captured=captured),
                                     0, device, episode=episode, log=said.append,
                                     compile_backend="aot_eager" if args.tiny else "inductor")
        except Exception as e:  # the other variants' figures still count
            import traceback
            traceback.print_exc()
            figures[f"{name}_error"] = f"{type(e).__name__}: {e}"
            continue
        sync()
        per, first = fit_rate(history)
        last[name] = history[-1]["val_loss"]
        steps_per_unit = 1 if unit == "step" else history[0]["steps"]  # an epoch's steps
        figures.update({f"{name}_ms_per_step": round(1000 * per, 3), f"{name}_first_{unit}_s": round(first, 1),
                        f"{name}_full_fit_s_projected": round(per * full * steps_per_unit, 1)})  # epochs: at most
        if device.type == "cuda":  # the fit's peak, the rows on the device included (CUDA graphs keep a pool)
            figures[f"{name}_peak_mib"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
        record("fit", out, **figures)
    if "eager" in last and "compiled" in last:
        figures["speedup"] = round(figures["eager_ms_per_step"] / figures["compiled_ms_per_step"], 2)
        figures["compile_s"] = round(figures[f"compiled_first_{unit}_s"]
                                     - figures["compiled_ms_per_step"] / 1000 * steps_per_unit, 1)
        figures["last_val_loss_rel_diff"] = f"{abs(last['compiled'] - last['eager']) / abs(last['eager']):.1e}"
    for name in ("compiled_epoch", "eager_epoch"):  # runs of eval_interval steps as one graph (cuda_graph: epoch)
        if "eager" in last and name in last:
            figures[f"{name}_speedup"] = round(figures["eager_ms_per_step"] / figures[f"{name}_ms_per_step"], 2)
            figures[f"{name}_last_val_loss_rel_diff"] = f"{abs(last[name] - last['eager']) / abs(last['eager']):.1e}"
    figures["epoch_capture_notes"] = said  # empty: every capture held (on a CPU nothing is captured)
    record("fit", out, **figures)


def projected_collection(collect_s: float, batch_s: list[float] | None, cfg, whole) -> dict:
    """A stage boundary's collection at the preset's episode count (``whole``) from a shortened
    one (``cfg``): the measured seconds (the first batch compiles the collection's program) plus
    the batches not run at the later batches' mean. {} where the summary has no batch times."""
    if not batch_s or cfg.collect_episodes is None:
        return {}
    full = -(-whole.collect_episodes // cfg.collect_envs)
    steady = sum(batch_s[1:]) / (len(batch_s) - 1) if len(batch_s) > 1 else batch_s[0]
    return dict(collect_episodes=cfg.collect_episodes, collect_episodes_in_preset=whole.collect_episodes,
                collect_first_batch_s=batch_s[0], collect_batch_s=round(steady, 3),
                collect_s_projected=round(collect_s + (full - len(batch_s)) * steady, 1))


def part_gorl(args, out: Path) -> None:
    from common import breakdown
    from gorl.algorithm.gorl import GoRL, collect_release_data
    from gorl.config import build_config
    from gorl.core.run import Run
    from gorl import registry, rundir
    algo = registry.get("gorl_fm")
    preset = "smoke" if args.tiny else "paper"
    unit, full, short = shortened_decoder_fit(args.task, preset, args.decoder_steps, args.decoder_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        over = _update_settings(args, args.cuda_graphs[0])  # of the whole run, as of this one
        if args.collect_envs:  # the release collects 64 envs at a time; on a GPU a small batch is latency-bound
            over["collect_envs"] = args.collect_envs
        whole = build_config(algo.config_cls, algo.presets_file, preset, args.task, {"device": args.device, **over})
        if args.collect_episodes and whole.collect_episodes:  # a shortened collection, like the fit
            short["collect_episodes"] = min(args.collect_episodes, whole.collect_episodes)
        cfg = build_config(algo.config_cls, algo.presets_file, preset, args.task,
                           {"device": args.device, **over, **short})
        cfg.stage_steps = [1, 1]
        cfg.total_steps = 2 * cfg.steps_per_iteration
        run = Run(algo="gorl_fm", task=args.task, seed=0, preset=preset, dir=Path(tmp), config={},
                  device=torch.device(args.device if args.device != "auto" else
                                      ("cuda" if torch.cuda.is_available() else "cpu")), quiet=True)
        g = GoRL(cfg, run)
        trainer = g.make_trainer(0)
        t0 = time.perf_counter()
        trainer.train(checkpoint=lambda: None)  # evaluations + 1 encoder iteration (compiles)
        sync()
        t1 = time.perf_counter()
        # Recorded as each phase ends: a call stopped at its time limit still says how far it got.
        progress = dict(task=args.task, preset=preset, compile_update=bool(args.compile_update),
                        cuda_graph=args.cuda_graphs[0],
                        stage0_s=round(t1 - t0, 1))
        record("gorl", out, **progress, reached="stage 0 (evaluations and one encoder iteration)")
        encoder = {0: breakdown(trainer, args.iterations, warmup=0)}  # steady (compiled above), through decoder 0
        progress["encoder0_iteration_s"] = round(encoder[0]["total"] * cfg.steps_per_iteration / 1000, 3)
        record("gorl", out, **progress, reached=f"{args.iterations} steady encoder iterations through decoder 0")
        trainer.close()  # as GoRL.train does at a stage's end
        t_refit = time.perf_counter()
        g.refit_decoder(0)
        sync()
        t2 = time.perf_counter()
        summary = json.loads((g.stage_dir(0) / rundir.STAGE_DATASET_SUMMARY).read_text())
        done = summary["decoder_steps"] if unit == "step" else summary["decoder_epochs"]  # what the fit ran
        history = rundir.read_csv(g.stage_dir(0), rundir.STAGE_DECODER_FIT).to_dict("records")
        per_step, first_step = fit_rate(history)
        # per unit, the first step (compiled: the compilation) apart
        per = per_step * (1 if unit == "step" else summary["decoder_steps"] / max(done, 1))
        collect = projected_collection(g.timing["collect"], summary.get("batch_s"), cfg, whole)
        if "setup_s" in summary:  # where a collection's seconds go besides its batches
            collect.update(collect_setup_s=summary["setup_s"], collect_assemble_s=summary["assemble_s"],
                           collect_outside_s=round(g.timing["collect"] - summary["setup_s"] - summary["assemble_s"]
                                                   - sum(summary["batch_s"]), 3))
        figures = dict(**progress, collect_s=round(g.timing["collect"], 1), collect_env_steps=g.collection_env_steps,
                       collect_envs=cfg.collect_envs, **collect, decoder_fit_s=round(g.timing["decoder_fit"], 1),
                       decoder_fit_unit=unit, decoder_fit_units_run=done, **{f"s_per_decoder_{unit}": round(per, 4)},
                       decoder_first_step_s=round(first_step, 1),
                       decoder_fit_units_in_preset=full,
                       decoder_full_fit_s_projected=round(per * full, 1) if full else None,
                       refit_s=round(t2 - t_refit, 1))
        record("gorl", out, **figures)  # kept if what follows (a new program to compile) runs out of time
        g.previous_best = g.best  # what stage 1 starts from (GoRL.train hands it over the same way)
        try:
            stage1 = g.make_trainer(1)
            encoder[1] = breakdown(stage1, args.iterations, warmup=1)  # through the fitted decoder 1
        except Exception as e:  # the stage boundary's figures above still count
            import traceback
            traceback.print_exc()
            record("gorl", out, **figures, projection_error=f"{type(e).__name__}: {e}")
            return
        # The whole run at the preset's stage budgets, evaluations apart (as the ppo part's figure):
        # stage 0's iterations through decoder 0, the later ones through a fitted decoder, and one
        # collection and full decoder fit per stage boundary.
        iters, spi = whole.stage_iterations(), whole.steps_per_iteration
        iteration_s = {k: b["total"] * spi / 1000 for k, b in encoder.items()}
        fit_s = per * full + first_step if full else g.timing["decoder_fit"]  # each boundary compiles its fit anew
        boundaries = len(iters) - 1
        programs = min(boundaries, 2)
        projected = "collect_s_projected" in collect
        if projected:  # boundary k collects through stage k's policy: stage 0's (decoder 0) and stage 1's are
            # two collection programs, later stages reuse stage 1's (scan programs are kept per process
            # and act rule, docs/benchmarks.md): the first batch's compilation counted once per program
            compile_s = max(collect["collect_first_batch_s"] - collect["collect_batch_s"], 0.0)
            collect_run_s = boundaries * (collect["collect_s_projected"] - compile_s) + programs * compile_s
        else:
            collect_run_s = boundaries * g.timing["collect"]
        run_s = iters[0] * iteration_s[0] + sum(iters[1:]) * iteration_s[1] + collect_run_s + boundaries * fit_s
        # compilations apart, as the ppo part's run figure leaves its own out (its warm-up iteration)
        steady_s = None
        if projected and full:
            steady_s = iters[0] * iteration_s[0] + sum(iters[1:]) * iteration_s[1] + \
                boundaries * (collect["collect_s_projected"] - compile_s + per * full)
        figures.update(steps_per_iteration=spi, stage_iterations=iters, encoder_iteration_s=round(iteration_s[1], 3),
                       collect_programs_compiled=programs if projected else None,
                       encoder_update_s=round(encoder[1]["update"] * spi / 1000, 3),
                       run_s_projected=round(run_s, 1), run_minutes_projected=round(run_s / 60, 1),
                       run_s_steady_projected=None if steady_s is None else round(steady_s, 1),
                       run_encoder_env_steps=sum(iters) * spi)
        record("gorl", out, **figures)
        # Last, so that it costs the figures above nothing: a stage boundary's collection at the
        # release's batch (64 envs) and at --collect-compare's, through decoder 1 (what the later
        # boundaries collect with): two batches each (the first compiles), projected to the preset's
        # episodes. The data are the same in distribution (episode i from the i-th seeded reset).
        # --collect-compare's first: the run's own batch size is timed above already (through decoder 0)
        sizes = [e for e in dict.fromkeys((args.collect_compare, whole.collect_envs)) if e]
        if whole.collect_episodes is None or len(sizes) < 2:
            return
        per_envs = {}
        for E in sizes:
            scfg = build_config(algo.config_cls, algo.presets_file, preset, args.task,
                                {"device": args.device, **over, "collect_envs": E, "collect_episodes": 2 * E})
            batch_s = collect_release_data(scfg.for_stage(1), run, 1, stage1.agent, stage1.normalizer)["summary"]["batch_s"]
            per_envs[str(E)] = {"batch_s": batch_s,
                                "boundary_s_projected": round(batch_s[1] * -(-whole.collect_episodes // E), 1)}
            record("gorl", out, **figures, collection_by_envs=per_envs)


def part_sharded(args, out: Path) -> None:
    from gorl.envs import VectorEnv, make_env
    from gorl.envs.sharded import ShardedVectorEnv
    import numpy as np
    n, steps = (8, 20) if args.tiny else (2048, 100)
    workers = args.workers or os.cpu_count()
    seeds = list(range(n))
    acts = np.random.default_rng(0).uniform(-1, 1, (steps, n, 6)).astype(np.float32)
    rates = {}
    for label, make in (("one_thread", lambda: VectorEnv([lambda s=s: make_env("cheetah-run", s) for s in seeds])),
                        (f"workers_{workers}", lambda: ShardedVectorEnv("cheetah-run", seeds, workers))):
        venv = make()
        venv.reset(seeds)
        venv.step(acts[0])
        t0 = time.perf_counter()
        for a in acts:
            venv.step(a)
        rates[label] = round(n * steps / (time.perf_counter() - t0))
        getattr(venv, "close", lambda: None)()
    record("sharded", out, task="cheetah-run", envs=n, **rates,
           speedup=round(rates[f"workers_{workers}"] / rates["one_thread"], 2))


def part_precision(args, out: Path) -> None:
    import jax
    import jax.numpy as jnp
    import numpy as np
    g = np.random.default_rng(0)
    a, b = g.standard_normal((1024, 256)).astype(np.float32), g.standard_normal((256, 256)).astype(np.float32)
    exact = a.astype(np.float64) @ b.astype(np.float64)

    def err(x) -> float:
        return float(np.abs(np.asarray(x, np.float64) - exact).max() / np.abs(exact).max())
    figures = {}
    for name in ("default", "float32", "tensorfloat32", "bfloat16"):
        with jax.default_matmul_precision(None if name == "default" else name):
            figures[f"jax_{name}"] = err(jax.jit(jnp.matmul)(jnp.asarray(a), jnp.asarray(b)))
    dev = args.device
    ta, tb = torch.from_numpy(a).to(dev), torch.from_numpy(b).to(dev)
    for name, tf32 in (("fp32", False), ("tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        figures[f"torch_{name}"] = err((ta @ tb).cpu())
    torch.backends.cuda.matmul.allow_tf32 = False
    figures["torch_bf16"] = err((ta.bfloat16() @ tb.bfloat16()).float().cpu())
    record("precision", out, jax_backend=jax.default_backend(), **{k: f"{v:.2e}" for k, v in figures.items()})


def part_divergence(args, out: Path) -> None:
    """Where the scan and the per-step path part over 1000 steps (tests/test_cuda.py's two
    long-horizon comparisons; on an H200 in session 24 the teacher returns differed by up to
    1.7%, the first 200 steps to within 1e-4). The teacher-data check's episodes
    (playground:CartpoleBalance, 8 envs, 3 episodes, a small Gaussian teacher, bounded actions)
    collected by the per-step loop at fp32 (the reference) and by: the same loop again
    (determinism), the loop with its env actions moved by one float32 ulp each step (a
    rounding-sized change: how far 1000 steps of this task carry one), the scan at fp32, the scan
    with JAX at TF32 (whether a TF32 matmul on one side explains the gap). Each: the largest
    relative difference of the episode returns' mean, min and max to the reference's, and per
    threshold (1e-5, 1e-3, 1e-1) the first step of an episode whose observation differs by more."""
    import numpy as np

    from gorl import registry
    from gorl.algorithm import teacher as tp
    from gorl.config import build_config
    from gorl.core.gaussian_policy import GaussianPolicy
    from gorl.core.normalizer import RunningNormalizer
    from gorl.core.run import Run
    from gorl.envs import playground as pg
    from gorl.provenance import set_matmul_precision
    dev = torch.device(args.device)
    task, n = "playground:CartpoleBalance", 8
    step = pg.PlaygroundEnvs.step
    ulp = float(np.finfo(np.float32).eps)

    def collect(rollout: str, precision: str, nudge: bool, tmp: Path):
        set_matmul_precision(precision, dev)
        signs = np.random.default_rng(0)

        def nudged(self, actions):  # each action times (1 +- one ulp), signs from a fixed stream
            s = torch.as_tensor(signs.choice([-1.0, 1.0], size=tuple(actions.shape)), dtype=actions.dtype)
            return step(self, actions * (1 + ulp * s.to(actions.device)))
        pg.PlaygroundEnvs.step = nudged if nudge else step
        try:
            spec = registry.get("gorl_fm")
            cfg = build_config(spec.config_cls, spec.presets_file, "smoke", task, dict(
                rollout=rollout, stage_steps=[1, 1], teacher="ppo_teacher", teacher_episodes=3, collect_envs=n,
                action_semantics="bounded", latent_bounded=True))
            run = Run(algo="gorl_fm", task=task, seed=0, preset="smoke", dir=tmp, config={}, quiet=True, device=dev)
            torch.manual_seed(3)
            agent = GaussianPolicy(5, 1, [8], clip_eps=0.3, entropy_coef=0.0, entropy_tanh_correction=True).to(dev)
            norm = RunningNormalizer(5, "welford").to(dev)
            norm.update(torch.randn(64, 5, device=dev) * 2 + 1)
            obs, _, _, summary = tp.collect_teacher_data(cfg, run, {"agent": agent, "normalizer": norm, "dir": "t",
                                                                   "env_steps": 7})
        finally:
            pg.PlaygroundEnvs.step = step
        return obs, np.array([summary[f"episode_return_{k}"] for k in ("mean", "min", "max")])

    variants = {"step_again": ("step", "fp32", False), "step_one_ulp": ("step", "fp32", True),
                "scan_fp32": ("scan", "fp32", False), "scan_jax_tf32": ("scan", "tf32", False)}
    figures = dict(task=task, envs=n, episodes=3, device=str(dev))
    with tempfile.TemporaryDirectory() as tmp:
        ref_obs, ref_ret = collect("step", "fp32", False, Path(tmp) / "ref")
        figures["returns_mean_min_max"] = [round(float(r), 3) for r in ref_ret]
        for name, (rollout, precision, nudge) in variants.items():
            obs, ret = collect(rollout, precision, nudge, Path(tmp) / name)
            gap = np.abs(obs - ref_obs).max(-1).reshape(3, -1)  # (episode, step)
            first = {f"{th:g}": min((int(np.argmax(g > th)) for g in gap if (g > th).any()), default=None)
                     for th in (1e-5, 1e-3, 1e-1)}
            figures[name] = {"return_rel_diff": float(f"{(np.abs(ret - ref_ret) / np.abs(ref_ret)).max():.2e}"),
                             "first_step_obs_differs_by": first}
            record("divergence", out, **figures)
    set_matmul_precision("auto", dev)


def part_cuda_tests(args, out: Path) -> None:
    """tests/test_cuda.py, verbose, its output streamed to OUT/cuda_tests.log as it runs; over
    pytest-xdist's workers where it is installed (``--test-workers``; the GPU is shared, each
    worker's JAX allocating as it goes). Stopped after ``--tests-timeout`` seconds (within the
    part's own limit, so what ran is still recorded): the record then counts the tests that passed,
    failed and were skipped so far and names the failures."""
    import importlib.util
    import re
    import signal
    import subprocess
    root = Path(__file__).resolve().parent.parent
    workers = args.test_workers if importlib.util.find_spec("xdist") else 0
    # addopts dropped: the project's (--timeout) needs pytest-timeout, which a bare machine may lack
    cmd = [sys.executable, "-m", "pytest", "-v", "-rs", "--durations=0", "-p", "no:cacheprovider", "-o", "addopts=",
           *(["-n", str(workers)] if workers else []), str(root / "tests" / "test_cuda.py")]
    log_path = out / "cuda_tests.log"
    t0 = time.perf_counter()
    with log_path.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, text=True, cwd=root, start_new_session=True,
                                env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                                    [str(root / "tests"), str(root), os.environ.get("PYTHONPATH", "")])))
        try:
            code = proc.wait(timeout=args.tests_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    text = log_path.read_text()
    log(text[-6000:])
    outcome = re.findall(r"(PASSED|FAILED|SKIPPED|ERROR)\s+(?:tests/)?test_cuda\.py::(\S+)|"
                         r"test_cuda\.py::(\S+)\s+(PASSED|FAILED|SKIPPED|ERROR)", text)
    results = [(a or d, b or c) for a, b, c, d in outcome]
    # not "error" (a part's record with that key is a part that failed): "errors"
    counts = {name: sum(1 for r, _ in results if r == k)
              for k, name in (("PASSED", "passed"), ("FAILED", "failed"), ("SKIPPED", "skipped"), ("ERROR", "errors"))}
    summary = (text.strip().splitlines() or [""])[-1].strip("= ") if code is not None else \
        f"stopped after {args.tests_timeout} s: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v)
    record("cuda_tests", out, exit_code=code, summary=summary, workers=workers, wall_s=round(time.perf_counter() - t0),
           **counts,
           failures=[name for r, name in results if r in ("FAILED", "ERROR")])


PARTS = {"raw": part_raw, "ppo": part_ppo, "brax": part_brax, "gorl": part_gorl, "sharded": part_sharded,
         "precision": part_precision, "cuda_tests": part_cuda_tests, "checkpoint": part_checkpoint,
         "compile": part_compile, "fit": part_fit, "divergence": part_divergence}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("."))
    p.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    p.add_argument("--task", default="playground:CheetahRun")
    p.add_argument("--device", default="auto")
    p.add_argument("--iterations", type=int, default=2)
    p.add_argument("--compile-update", action="store_true",
                   help="ppo and gorl parts: the trainers with compile_update, as config/paper-gpu.yaml runs "
                        "them (the ppo part's records: ppo_ROLLOUT_compiled)")
    p.add_argument("--rollouts", nargs="+", default=["scan", "step"], choices=["scan", "step"])
    p.add_argument("--cuda-graphs", nargs="+", default=["step"], choices=["step", "epoch"],
                   help="ppo part: once per value of cuda_graph (what one CUDA graph of the update holds); "
                        "gorl part: the first")
    p.add_argument("--decoder-steps", type=int, default=500,
                   help="gorl and fit parts: decoder optimiser steps to time (the release's fit schedule)")
    p.add_argument("--decoder-epochs", type=int, default=3,
                   help="gorl and fit parts: decoder epochs to time (v1's fit schedule, the release's humanoid "
                        "profile; the fit part's epoch graphs replay from the third)")
    p.add_argument("--test-workers", type=int, default=4,
                   help="cuda_tests part: pytest-xdist workers where it is installed (0: one process)")
    p.add_argument("--tests-timeout", type=int, default=270,
                   help="cuda_tests part: seconds before the tests are stopped and what ran is recorded")
    p.add_argument("--collect-envs", type=int, default=0,
                   help="gorl part: envs per batch of the decoder-data collection (default: the preset's, 64)")
    p.add_argument("--collect-compare", type=int, default=2048,
                   help="gorl part, last: a stage boundary's collection timed at this many envs per batch "
                        "beside the preset's (0: not)")
    p.add_argument("--collect-episodes", type=int, default=512,
                   help="gorl part: episodes to collect and time, projected to the preset's 4,096 from the "
                        "seconds of each batch (0: the preset's)")
    p.add_argument("--workers", type=int, default=0, help="sharded part: worker processes (default: all cores)")
    p.add_argument("--tiny", action="store_true", help="seconds-long version of every part, to check the script")
    args = p.parse_args()
    if args.tiny and args.task == "playground:CheetahRun":
        args.task = "playground:CartpoleBalance"
    if args.tiny and args.collect_compare == 2048:
        args.collect_compare = 4
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    if args.device == "cpu":
        torch.set_num_threads(1)  # torch's and XLA's CPU thread pools would fight over the cores
    import jax
    log(f"torch {torch.__version__} on {args.device}; jax {jax.__version__} on {jax.default_backend()}; "
        f"{os.cpu_count()} cores")
    for part in args.parts:
        t0 = time.perf_counter()
        try:
            PARTS[part](args, args.out)
        except Exception as e:  # one broken part must not cost the others' figures
            import traceback
            traceback.print_exc()
            record(part, args.out, error=f"{type(e).__name__}: {e}")
        log(f"[{part}] took {time.perf_counter() - t0:.0f} s")
    brax = RESULTS.get("brax", {}).get("env_steps_per_s")
    for name in [k for k in RESULTS if k.startswith("ppo_")]:
        ours = RESULTS[name].get("env_steps_per_s")
        if brax and ours:
            record("ratio_" + name[len("ppo_"):], args.out, ours_over_brax=round(ours / brax, 3))


if __name__ == "__main__":
    main()
