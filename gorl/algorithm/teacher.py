"""GoRL's teacher path (the release's humanoid recipe, spec 14).

A teacher is an ordinary run directory of a Gaussian-policy algorithm (``ppo_teacher``: PPO
with the teacher's settings): the run contract, resume and ``check-run`` hold for it as for any
run. A GoRL run names it with ``teacher_run: PATH``; without one it trains its own teacher
into ``<run dir>/teacher/`` with the same preset and seed (``gorl-bench train`` in a child
process, so a resume of the GoRL run resumes the teacher too, and the child sets its own
precision before any JAX import, as the release's separate teacher process does).

From the teacher GoRL collects ``teacher_episodes`` complete episodes (the teacher samples, the
env receives tanh of its pre-action), refuses to go on if their mean return is below
``teacher_min_return`` (:class:`gorl.errors.Gated`: the run ends with status ``gated`` and the
reason) and fits decoder 0 on them; ``teacher_warm_start`` also starts stage 0's encoder from
the teacher's actor, critic and observation statistics.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from gorl import rundir
from gorl.algorithm.episode_filter import episodes_of_rows, stage_seed
from gorl.core import jax_rollout
from gorl.errors import Gated, RunDirError

TEACHER_STREAM = 3_000_000
"""Env seeds of the teacher-data collector."""


def teacher_dir(cfg, run) -> Path:
    """The teacher run directory a GoRL run uses: ``teacher_run`` or its own ``teacher/``."""
    if cfg.teacher_run:
        p = Path(cfg.teacher_run)
        return p if p.is_absolute() else Path.cwd() / p
    return Path(run.dir) / rundir.TEACHER


def ensure_teacher(cfg, run) -> Path:
    """A completed teacher run for this run's task: the named one (checked), or the run's own,
    trained (or resumed) now. Raises RunDirError (one line, bad input) for an unusable named one."""
    d = teacher_dir(cfg, run)
    status = rundir.read_status(d)
    if cfg.teacher_run:
        if status is None or status.get("status") != rundir.COMPLETED:
            got = "no status.json" if status is None else f"status {status.get('status')!r}"
            raise RunDirError(f"teacher_run {d}: not a completed run ({got}); train it first "
                              f"(gorl-bench train {cfg.teacher} {run.task} --out {d})")
    elif status is None or status.get("status") != rundir.COMPLETED:
        if status is not None:
            raise RuntimeError(f"the run's own teacher {d} ended {status.get('status')!r}: {status.get('reason')}")
        cmd = [sys.executable, "-m", "gorl", "train", cfg.teacher, run.task, "--preset", run.preset,
               "--seed", str(run.seed), "--out", str(d), "--quiet"]
        for module in run.config.get("imports") or ():
            cmd += ["--import", module]
        if run.trust_checkpoint:  # the user vouched for this directory, its teacher/ included
            cmd.append(rundir.TRUST_CHECKPOINT)
        run.log(f"training the teacher: {' '.join(cmd[2:])}")
        proc = subprocess.run(cmd, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
            raise RuntimeError(f"the teacher run {d} failed (exit {proc.returncode}):\n{tail}")
        status = rundir.read_status(d)
        if status is None or status.get("status") != rundir.COMPLETED:
            raise RuntimeError(f"the teacher run {d} did not complete: {status}")
    config = rundir.read_config(d) or {}
    if config.get("task") != run.task:
        raise RunDirError(f"teacher_run {d} trained task {config.get('task')!r}, this run's task is {run.task!r}")
    return d


def load_teacher(d: Path, obs_dim: int, act_dim: int, device: torch.device, critic: bool = False) -> dict:
    """The teacher's final actor, observation statistics and (``critic``: needed, for a warm
    start) critic state: :func:`gorl.policy.load_policy` of its ``policy_final.pt`` (tensors and
    plain data only: a teacher run may be a directory someone shared; a file holding anything
    else is refused in one line and nothing in it runs), rebuilt by ``ppo_teacher``'s own
    ``make_agent`` (the dims are its task's, which :func:`ensure_teacher` checked is this run's)."""
    from gorl.policy import load_policy

    policy = load_policy(d, "final", device=device)
    if critic and policy.critic_state is None:
        raise RunDirError(f"teacher_run {d}: {rundir.POLICIES['final']} holds no critic (the run predates "
                          f"policy files with one), which teacher_warm_start needs: train the teacher again")
    hp = policy.config.get("hyperparameters") or {}
    status = rundir.read_status(d) or {}
    return {"dir": str(Path(d).resolve()), "policy_sha256": policy.sha256,  # of the bytes loaded
            "agent": policy.agent, "normalizer": policy.normalizer,
            "critic": policy.critic_state, "actor_hidden": list(hp["actor_hidden"]),
            "obs_norm_mode": hp["obs_norm_mode"], "env_steps": int(status.get("env_steps") or 0)}


@torch.no_grad()
def collect_teacher_data(cfg, run, teacher: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """``teacher_episodes`` complete episodes of the teacher (sampling), ``collect_envs`` at a time
    from seeded resets: (obs, target, episode id) rows of those episodes only (episode-major) and a
    summary. The target is the env action (tanh of the pre-action) clipped to [-1, 1] with
    ``action_semantics`` 'bounded', else the pre-action. On ``playground:`` tasks the steps run
    as JAX programs of ``episode_length`` steps each (``rollout``; the same draws and rows)."""
    torch.manual_seed(stage_seed(run.seed, 0, 4))
    envs = run.make_envs(cfg.collect_envs, TEACHER_STREAM, cfg.env_workers)
    agent, normalizer = teacher["agent"], teacher["normalizer"]
    N, want = envs.num_envs, cfg.teacher_episodes
    scan = jax_rollout.select(cfg.rollout, envs, agent, lambda note: None) \
        if getattr(envs, "episode_length", None) else None

    def target(pre):  # the env action (tanh of the pre-action) clipped to [-1, 1], or the pre-action
        return torch.tanh(pre).clamp(-1.0, 1.0) if cfg.action_semantics == "bounded" else pre
    if scan is not None:
        rows = teacher_rows_through_the_scan(envs, scan, normalizer, want, envs.episode_length, target)
    else:
        rows = ([], [], [], [])
        ep_ret = torch.zeros(N, dtype=torch.float64, device=run.device)
        finished = 0
        obs = envs.obs
        while finished < want:
            pre, _ = agent.act(normalizer(obs), obs)
            for r, v in zip(rows[:2], (obs, target(pre))):
                r.append(v.cpu().numpy())
            obs, reward, term, trunc, _ = envs.step(torch.tanh(pre))
            ep_ret += reward
            done = term | trunc
            rows[2].append(done.cpu().numpy())
            rows[3].append(ep_ret.cpu().numpy().copy())
            ep_ret.masked_fill_(done, 0.0)
            finished += int(done.sum())
        rows = tuple(np.stack(r) for r in rows)
    envs.close()
    obs_rows, act_rows, ends, ret_rows = rows  # (S, N, ...)
    S = obs_rows.shape[0]
    row_episode, episode_return = episodes_of_rows(ends, ret_rows)
    # the first `want` episodes to finish, in (step, env) order: ids N.. are assigned in that order
    first_ids = row_episode.reshape(S, N)[ends][:want]
    keep = np.flatnonzero(np.isin(row_episode, first_ids))
    keep = keep[np.argsort(row_episode[keep], kind="stable")]  # episode-major rows
    obs_all = obs_rows.reshape(S * N, -1)[keep]
    act_all = act_rows.reshape(S * N, -1)[keep]
    returns = episode_return[first_ids]
    summary = {"teacher_run": teacher["dir"], "teacher_policy_sha256": teacher.get("policy_sha256"),
               "teacher_env_steps": teacher["env_steps"],
               "episodes": int(want), "rows": int(keep.shape[0]), "env_steps": int(S * N), "envs": N,
               "episode_return_mean": float(returns.mean()), "episode_return_std": float(returns.std()),
               "episode_return_min": float(returns.min()), "episode_return_max": float(returns.max()),
               "action_semantics": cfg.action_semantics, "min_return": cfg.teacher_min_return}
    return obs_all.astype(np.float32), act_all.astype(np.float32), row_episode[keep], summary


def teacher_rows_through_the_scan(envs, scan, normalizer, want: int, chunk: int, target):
    """The per-step loop of :func:`collect_teacher_data` as scans of ``chunk`` steps: (obs,
    ``target(pre-action)``, episode end, running return) per step, (S, N, ...) numpy arrays,
    S the step at which ``want`` episodes have finished (one host read per chunk); torch's
    generator is left where the loop leaves it."""
    N, device = envs.num_envs, normalizer.mean.device
    ep_ret = torch.zeros(N, dtype=torch.float64, device=device)
    parts, finished = [], 0
    while True:
        before = jax_rollout.generator(device).get_state()
        obs, pre, _, reward, done = jax_rollout.rollout_rows(envs, scan, normalizer, chunk)
        ret = jax_rollout.running_returns(reward, done, ep_ret)
        counts = (finished + torch.cumsum(done.sum(1), 0)).cpu().numpy()
        reached = np.flatnonzero(counts >= want)
        n = int(reached[0]) + 1 if reached.size else chunk
        parts.append([v[:n].cpu().numpy() for v in (obs, target(pre), done, ret)])
        if reached.size:
            if n < chunk:  # the loop stops at step n of this chunk
                jax_rollout.keep_draws(scan, before, n, N, device)
            return tuple(np.concatenate(p) for p in zip(*parts))
        finished = int(counts[-1])


def gate(cfg, summary: dict) -> None:
    """Refuse a teacher data set whose mean episode return is below ``teacher_min_return``."""
    floor = cfg.teacher_min_return
    if floor is not None and not summary["episode_return_mean"] >= floor:
        raise Gated(f"teacher data set mean return {summary['episode_return_mean']:.3f} over "
                    f"{summary['episodes']} episodes is below teacher_min_return {floor:g} "
                    f"(teacher {summary['teacher_run']})")
