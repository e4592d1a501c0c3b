"""What `obs_stats_timing: pre_update` does to DPPO's update, from a DPPO run directory.

    MUJOCO_GL=disable python benchmarks/dppo_stats_shift.py RUN_DIR [RUN_DIR ...] [--task cartpole-balance]

Reads the run's last checkpoint (policy, critic, observation statistics) and collects one
iteration's rollout with it (the run's num_envs x steps per env, seeded resets). Then, as the
`pre_update` timing does (spec 2.2), the statistics absorb that batch before the loss, and the
script prints:

- the start-of-update per-step log-ratios: the stored rollout-time log-likelihoods against
  the same chains under the updated statistics, before any gradient step (std, share outside
  [1 - clip_eps, 1 + clip_eps]);
- the policy gradient of the advantage-weighted per-step log-likelihood (the unclipped
  surrogate at ratio 1), split in two: with x_{k+1} = mu_old + sigma z, the score is
  (x_{k+1} - mu_new) / sigma^2 = z / sigma + (mu_old - mu_new) / sigma^2. The first part is
  the policy gradient proper (all there is under `rollout` timing); the second comes from the
  statistics' shift alone. Advantages: the run's critic under the updated statistics, Brax
  GAE over the trainer's segments, normalised as the trainer does.

sigma is `noise_std` (0.05): a shift of the per-step mean counts 1 / sigma^2 = 400 times in
the score, where the sampled noise counts 1 / sigma.
"""
from __future__ import annotations

import argparse
import copy
from pathlib import Path

import torch
import yaml

from baselines.dppo import DPPOConfig, make_agent
from gorl.core.advantages import brax_gae
from gorl.core.networks import Critic
from gorl.core.normalizer import RunningNormalizer
from gorl.envs.registry import env_dims, make_envs
from gorl.generative import time_grid


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--task", default="cartpole-balance")
    ap.add_argument("--seed", type=int, default=1000, help="first env seed of the collected rollout")
    args = ap.parse_args()
    torch.manual_seed(0)
    obs_dim, act_dim = env_dims(args.task)
    for run in args.runs:
        saved = yaml.safe_load((run / "config.yaml").read_text())["hyperparameters"]
        cfg = DPPOConfig(**{k: v for k, v in saved.items() if k in DPPOConfig.__dataclass_fields__})
        ck = torch.load(run / "checkpoint.pt", weights_only=False, map_location="cpu")
        agent = make_agent(cfg, obs_dim, act_dim)
        agent.load_state_dict(ck["agent"])
        critic = Critic(obs_dim, cfg.critic_hidden)
        critic.load_state_dict(ck["critic"])
        norm = RunningNormalizer(obs_dim, ck["normalizer"]["mode"])
        norm.load_state_dict(ck["normalizer"])

        N, T = cfg.num_envs, cfg.unroll_length
        S = cfg.num_minibatches * cfg.batch_size * T // N    # steps per env and iteration
        envs = make_envs(args.task, list(range(args.seed, args.seed + N)))
        obs = envs.reset()
        rows = {k: [] for k in ("obs", "next_obs", "chain", "logp", "reward", "discount", "truncation")}
        with torch.no_grad():
            for _ in range(S):
                x0, stored = agent.act(norm(obs), obs)
                nxt, reward, term, trunc, final = envs.step(torch.tanh(x0))
                for k, v in (("obs", obs), ("next_obs", final), ("chain", stored["chain"]),
                             ("logp", stored["logp"]), ("reward", reward),
                             ("discount", 1.0 - term.float()), ("truncation", trunc.float())):
                    rows[k].append(v)
                obs = nxt
        b = {k: torch.stack(v) for k, v in rows.items()}          # (S, N, ...)

        def seg(x):  # (S, N, ...) -> (T, M, ...): the trainer's segments
            return x.reshape(S // T, T, N, *x.shape[2:]).transpose(0, 1).reshape(T, S // T * N, *x.shape[2:])
        b = {k: seg(v) for k, v in b.items()}

        new = copy.deepcopy(norm)
        new.update(b["obs"])                                      # pre_update: before the loss
        K, sigma = cfg.flow_steps, cfg.noise_std
        with torch.no_grad():
            log_ratio = agent.step_logprob(new(b["obs"]), b["chain"]) - b["logp"]
            values, boot = critic(new(b["obs"])), critic(new(b["next_obs"][-1]))
            _, adv = brax_gae(b["reward"] * cfg.reward_scaling, values, boot, b["discount"], b["truncation"],
                              cfg.gamma, cfg.gae_lambda)
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            x_k, x_next = b["chain"][..., :-1, :], b["chain"][..., 1:, :]
            grid = time_grid(K)
            mu_old = x_k - (1.0 / K) * agent.net(norm(b["obs"]).unsqueeze(-2), x_k, grid)
        mu_new = x_k - (1.0 / K) * agent.net(new(b["obs"]).unsqueeze(-2), x_k, grid)
        z = (x_next - mu_old) / sigma
        shift = (mu_old - mu_new).detach()
        a = adv[..., None, None]
        grads = []
        for weight in (z / sigma, shift / sigma ** 2):
            agent.zero_grad()
            (a * weight * mu_new).sum(-1).mean().backward(retain_graph=True)
            grads.append(torch.cat([p.grad.flatten() for p in agent.parameters()]))
        g_noise, g_shift = grads
        outside = ((log_ratio.exp() - 1).abs() > cfg.clip_eps).float().mean()
        print(f"{run} ({norm.mode}, iteration {ck['iteration']}): start-of-update log-ratio std "
              f"{log_ratio.std():.3f}, outside the clip {outside:.3f}; mean |change of normalised obs| "
              f"{(new(b['obs']) - norm(b['obs'])).abs().mean():.3f}; mean-shift / sigma std {(shift / sigma).std():.3f}")
        print(f"    policy gradient |from the noise z| {g_noise.norm():.4f}  |from the statistics' shift| "
              f"{g_shift.norm():.4f}  (x{g_shift.norm() / g_noise.norm():.2f}, cosine "
              f"{torch.nn.functional.cosine_similarity(g_noise, g_shift, 0):+.2f})")


if __name__ == "__main__":
    main()
