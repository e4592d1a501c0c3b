"""Gaussian PPO throughput: per-1k-step breakdown, update overhead vs a bare torch loop,
peak memory, and the `paper` preset's steady-state rate.

    MUJOCO_GL=disable python benchmarks/bench_ppo.py [--iterations 3]        # small preset, cheetah-run
    MUJOCO_GL=disable python benchmarks/bench_ppo.py --paper [--threads 2]   # paper preset, cartpole-balance

``--paper`` runs one full iteration of the paper geometry (2048 envs x 480 steps =
983,040 env steps, then 16 epochs x 32 minibatches of 1024 x 30-step segments) and
reports env steps/s over it (env construction excluded; eager PyTorch has no compile step,
and first-call costs are negligible next to a minutes-long iteration). What bounds it on a CPU: the update's FLOPs, dominated by the 256x5 critic on 30,720 states per
minibatch; the script prints that count and the rate it implies at the measured matmul
throughput.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common import breakdown, make_trainer
from gorl.core.advantages import brax_gae
from gorl.core.networks import Critic, GaussianHead, gaussian_entropy, gaussian_log_prob
from gorl.provenance import peak_rss_mib


def bare_update(trainer, batch) -> float:
    """The same forward/backward/Adam passes as the trainer's update, written as a plain
    loop on pre-shaped tensors (no agent protocol, no logging, no finiteness checks)."""
    cfg = trainer.cfg
    T, N, S = cfg.unroll_length, cfg.num_envs, cfg.steps_per_env
    K = S // T
    M = K * N
    d_o, d_a = trainer.obs_dim, trainer.act_dim
    actor = GaussianHead(d_o, d_a, trainer.cfg.actor_hidden)
    critic = Critic(d_o, cfg.critic_hidden)
    opt = torch.optim.Adam([*actor.parameters(), *critic.parameters()], lr=cfg.learning_rate)
    obs = batch["obs"].reshape(K, T, N, d_o).transpose(0, 1).reshape(T, M, d_o)
    boot = obs[-1]
    x = torch.randn(T, M, d_a)
    logp_old = torch.randn(T, M)
    reward, disc, trunc = torch.randn(T, M), torch.ones(T, M), torch.zeros(T, M)
    t0 = time.perf_counter()
    for _ in range(cfg.num_epochs):
        perm = torch.randperm(M)
        for mb in range(cfg.num_minibatches):
            idx = perm[mb * cfg.batch_size:(mb + 1) * cfg.batch_size]
            o = obs[:, idx]
            values = critic(o)
            with torch.no_grad():
                vs, adv = brax_gae(reward[:, idx], values.detach(), critic(boot[idx]), disc[:, idx],
                                   trunc[:, idx], cfg.gamma, cfg.gae_lambda)
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            mean, scale = actor(o)
            ratio = torch.exp(gaussian_log_prob(x[:, idx], mean, scale) - logp_old[:, idx])
            surr = -torch.min(ratio * adv, ratio.clamp(0.9, 1.1) * adv).mean()
            loss = surr - 0.01 * gaussian_entropy(scale).mean() + 0.25 * (vs - values).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return time.perf_counter() - t0


def matmul_gflops(threads: int) -> float:
    a, b = torch.randn(30720, 256), torch.randn(256, 256)
    for _ in range(3):
        a @ b
    t0, n = time.perf_counter(), 20
    for _ in range(n):
        a @ b
    return 2 * 30720 * 256 * 256 * n / (time.perf_counter() - t0) / 1e9


def critic_update_flops(cfg, d_o: int) -> float:
    """Forward + backward (~3x forward) FLOPs of the critic over one iteration's update."""
    dims = [d_o, *cfg.critic_hidden, 1]
    per_state = 2 * sum(a * b for a, b in zip(dims[:-1], dims[1:]))
    states = cfg.unroll_length * cfg.batch_size * cfg.num_minibatches * cfg.num_epochs
    return 3 * per_state * states


def small(args) -> None:
    with tempfile.TemporaryDirectory() as d:
        trainer = make_trainer("ppo", args.task, "small", Path(d))
        row = breakdown(trainer, args.iterations)
        batch = trainer.collect()
        t0 = time.perf_counter()
        trainer.update(batch)
        ours = time.perf_counter() - t0
        bare = bare_update(trainer, batch)
    print(f"PPO small on {args.task}: {row['steps']} env steps timed after 1 warm-up iteration, "
          f"torch threads {torch.get_num_threads()}")
    print(f"  per 1k env steps: env {row['env']:.3f} s, inference {row['inference']:.3f} s, "
          f"update {row['update']:.3f} s, total {row['total']:.3f} s ({row['sps']:.0f} env steps/s)")
    print(f"  one update: trainer {ours:.3f} s vs bare torch loop {bare:.3f} s -> {ours / bare:.2f}x (target <= 1.3x)")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB (target < 2048 MiB)")


def paper(args) -> None:
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        t_build = time.perf_counter()
        trainer = make_trainer("ppo", "cartpole-balance", "paper", Path(d), device="cpu")
        t_build = time.perf_counter() - t_build
        cfg = trainer.cfg
        t0 = time.perf_counter()
        batch = trainer.collect()
        t1 = time.perf_counter()
        trainer.update(batch)
        t2 = time.perf_counter()
    steps = cfg.steps_per_iteration
    flops = critic_update_flops(cfg, trainer.obs_dim)
    gf = matmul_gflops(args.threads)
    print(f"PPO paper preset on cartpole-balance, {cfg.num_envs} envs, torch threads {args.threads}")
    print(f"  env construction {t_build:.1f} s (excluded)")
    print(f"  one iteration = {steps} env steps: rollout {t1 - t0:.1f} s "
          f"(env {trainer.timing['env']:.1f} s, inference {trainer.timing['inference']:.1f} s), "
          f"update {t2 - t1:.1f} s")
    print(f"  steady-state throughput {steps / (t2 - t0):.0f} env steps/s "
          f"(peer: reference JAX/MJX on this CPU ~13,000 env steps/s)")
    print(f"  critic update FLOPs per iteration {flops / 1e12:.1f} TFLOP; measured fp32 matmul "
          f"{gf:.0f} GFLOP/s -> update alone >= {flops / gf / 1e9:.0f} s, i.e. <= "
          f"{steps / (flops / gf / 1e9):.0f} env steps/s at this geometry")
    print(f"  peak RSS {peak_rss_mib():.0f} MiB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--task", default="cheetah-run")
    ap.add_argument("--iterations", type=int, default=3)
    ap.add_argument("--paper", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    paper(args) if args.paper else small(args)


if __name__ == "__main__":
    main()
