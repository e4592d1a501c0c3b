"""The shared on-policy loop (Brax-style PPO machinery, spec section 2).

An algorithm supplies an *agent* (the policy half) implementing :class:`Agent`; this
module owns everything else: envs, observation statistics, the critic, the rollout
storage, per-minibatch value targets/advantages, the clipped-objective optimisation
loop, evaluation, action probes, checkpoints and logs. GoRL runs one trainer per stage
(``step_offset``/``stage`` put its evaluations on one global env-step axis).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from gorl.config import ConfigError
from gorl.core.advantages import brax_gae
from gorl.core.networks import Critic
from gorl.core.normalizer import RunningNormalizer
from gorl.core.run import EVAL_STREAM, TRAIN_STREAM, Diverged, Run, env_seeds


@dataclass
class OnPolicyConfig:
    """Hyperparameters of the shared PPO machinery (defaults = spec section 2.7)."""

    total_steps: int = 179_896_320
    """Env-step budget of the run (``--steps``); rounded down to whole iterations."""
    num_envs: int = 2048
    """Parallel training envs."""
    unroll_length: int = 30
    """Segment length T: advantages are computed over segments of T steps."""
    num_minibatches: int = 32
    """Minibatches per epoch."""
    batch_size: int = 1024
    """Segments per minibatch; one iteration collects batch_size*num_minibatches*unroll_length steps."""
    num_epochs: int = 16
    """Passes over each iteration's data (Brax num_updates_per_batch)."""
    gamma: float = 0.995
    """Discount."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    reward_scaling: float = 10.0
    """Rewards are multiplied by this inside the loss only."""
    value_loss_coef: float = 0.25
    """Value loss = coef * mean(((vs - V) * (1 - truncation))^2)."""
    learning_rate: float = 1e-3
    """Adam learning rate (actor and critic share one Adam)."""
    adam_eps: float = 1e-8
    """Adam epsilon."""
    max_grad_norm: float | None = None
    """Clip the global norm of actor+critic gradients jointly (None: no clipping)."""
    normalize_advantage: bool = True
    """Normalise advantages per minibatch."""
    obs_norm_mode: str = "legacy"
    """'legacy' (reference code: variance sum not accumulated, spec 2.2) or 'welford' (correct)."""
    obs_stats_timing: str = "pre_update"
    """'pre_update' (reference: stats updated with the batch before the losses) or 'rollout'."""
    critic_hidden: list[int] = field(default_factory=lambda: [256] * 5)
    """Critic hidden layer sizes."""
    num_evals: int = 31
    """Evaluations spread evenly over the run, the first before any update, the last after the final one."""
    eval_episodes: int = 128
    """Episodes (parallel envs) per evaluation."""
    num_probe_states: int = 8
    """Fixed probe states at which action samples are saved at every evaluation."""
    probe_samples: int = 256
    """Action samples per probe state per evaluation."""
    checkpoint_every: int = 1
    """Write a checkpoint every N iterations (and at the end)."""
    device: str = "auto"
    """'auto' (CUDA when present), 'cpu' or 'cuda[:k]'."""

    @property
    def steps_per_env(self) -> int:
        return self.batch_size * self.num_minibatches * self.unroll_length // self.num_envs

    @property
    def steps_per_iteration(self) -> int:
        return self.steps_per_env * self.num_envs

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.steps_per_iteration

    def validate(self) -> None:
        for key in ("total_steps", "num_envs", "unroll_length", "num_minibatches", "batch_size",
                    "num_epochs", "num_evals", "eval_episodes", "checkpoint_every", "probe_samples"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.obs_norm_mode not in RunningNormalizer.MODES:
            raise ConfigError(f"obs_norm_mode must be one of {RunningNormalizer.MODES}, got {self.obs_norm_mode!r}")
        if self.obs_stats_timing not in ("pre_update", "rollout"):
            raise ConfigError(f"obs_stats_timing must be 'pre_update' or 'rollout', got {self.obs_stats_timing!r}")
        if (self.batch_size * self.num_minibatches) % self.num_envs:
            raise ConfigError(f"batch_size*num_minibatches ({self.batch_size * self.num_minibatches}) must be a "
                              f"multiple of num_envs ({self.num_envs}) so each env runs whole segments")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(f"max_grad_norm must be positive or null, got {self.max_grad_norm}")
        self.validate_budget()

    def validate_budget(self) -> None:
        if self.num_iterations < 1:
            raise ConfigError(f"total_steps={self.total_steps} is less than one iteration "
                              f"({self.steps_per_iteration} env steps with this preset)")


class Agent(Protocol):
    """The policy half of an on-policy algorithm (an ``nn.Module``).

    Tensors: ``obs_norm`` normalised by the trainer's running statistics, ``obs_raw`` as
    the env gave it; a *pre-action* is unbounded and the env receives tanh(pre-action).
    Randomness comes from torch's global generator (seeded and checkpointed by the trainer).
    """

    def act(self, obs_norm: torch.Tensor, obs_raw: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Rollout sampling: pre-action (B, d_a) and the per-transition tensors to store (B, ...)."""

    def act_eval(self, obs_norm: torch.Tensor, obs_raw: torch.Tensor) -> torch.Tensor:
        """Evaluation pre-action (B, d_a): deterministic, or as the algorithm's spec says."""

    def policy_loss(self, obs_norm: torch.Tensor, stored: dict[str, torch.Tensor],
                    advantages: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Minibatch (T, B, ...) -> scalar loss (surrogate + entropy + extras) and scalars to log."""

    def sample_actions(self, obs_norm: torch.Tensor, obs_raw: torch.Tensor, k: int) -> torch.Tensor:
        """(P, d_o) -> (P, k, d_a) pre-action samples for the action probes."""

    # Optional: ``finish_rollout(obs_norm (S, N, d_o), stored (S, N, ...)) -> dict`` adds
    # per-transition tensors that depend only on rollout-time parameters and statistics,
    # computed in one batch after the rollout instead of once per env step (FPO's l_old).


def eval_iterations(num_iterations: int, num_evals: int) -> list[int]:
    """Iterations (0 = before any update, num_iterations = after the last) at which to evaluate."""
    pts = np.linspace(0, num_iterations, max(num_evals, 1)) if num_evals > 1 else [num_iterations]
    return sorted({int(round(p)) for p in pts})


def grads_clip_(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global-norm clipping with the reference's formula: scale = min(1, c / (norm + 1e-8))."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (norm + 1e-8), max=1.0)
    torch._foreach_mul_(grads, scale)
    return norm


class OnPolicyTrainer:
    def __init__(self, cfg: OnPolicyConfig, run: Run, agent: nn.Module, *, step_offset: int = 0,
                 stage: int = 0, env_stream: int = TRAIN_STREAM):
        self.cfg, self.run, self.agent = cfg, run, agent.to(run.device)
        self.device = run.device
        self.step_offset, self.stage = step_offset, stage
        self.envs = run.make_envs(cfg.num_envs, env_stream)
        self.obs_dim, self.act_dim = self.envs.obs_dim, self.envs.action_dim
        self._eval_envs = None
        self.normalizer = RunningNormalizer(self.obs_dim, cfg.obs_norm_mode).to(self.device)
        self.critic = Critic(self.obs_dim, cfg.critic_hidden).to(self.device)
        self.params = [*self.agent.parameters(), *self.critic.parameters()]
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.learning_rate, eps=cfg.adam_eps)
        self.iteration = 0
        self.evals: list[dict] = []
        self.metrics: list[dict] = []
        self.probe_states: np.ndarray | None = None
        self.probe_steps: list[int] = []
        self.probe_actions: list[np.ndarray] = []
        self.on_evaluate: list[Callable[[dict], None]] = []
        self._episode_return = np.zeros(cfg.num_envs)
        self.timing = {"env": 0.0, "inference": 0.0, "update": 0.0, "eval": 0.0}

    # -- bookkeeping ---------------------------------------------------------------------
    @property
    def env_step(self) -> int:
        """Global env step (this trainer's iterations plus the offset of earlier stages)."""
        return self.step_offset + self.iteration * self.cfg.steps_per_iteration

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "agent": self.agent.state_dict(),
                "critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(), "envs": self.envs.get_state(),
                "torch_rng": torch.get_rng_state(), "evals": self.evals, "metrics": self.metrics,
                "probe_states": self.probe_states, "probe_steps": self.probe_steps,
                "probe_actions": self.probe_actions, "episode_return": self._episode_return,
                "step_offset": self.step_offset, "stage": self.stage}

    def load_state_dict(self, st: dict) -> None:
        self.iteration = st["iteration"]
        self.run.env_steps_done = self.step_offset + self.iteration * self.cfg.steps_per_iteration
        self.agent.load_state_dict(st["agent"])
        self.critic.load_state_dict(st["critic"])
        self.optimizer.load_state_dict(st["optimizer"])
        self.normalizer.load_state_dict(st["normalizer"])
        self.normalizer.to(self.device)
        self.envs.set_state(st["envs"])
        torch.set_rng_state(st["torch_rng"])
        self.evals, self.metrics = st["evals"], st["metrics"]
        self.probe_states, self.probe_steps = st["probe_states"], st["probe_steps"]
        self.probe_actions, self._episode_return = st["probe_actions"], st["episode_return"]

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device)

    # -- rollout -------------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        """One iteration's rollout: (S, N, ...) tensors, S = steps per env."""
        S, N = self.cfg.steps_per_env, self.cfg.num_envs
        obs_buf = torch.empty(S, N, self.obs_dim, device=self.device)
        next_obs_buf = torch.empty_like(obs_buf)
        reward_buf = torch.empty(S, N, device=self.device)
        disc_buf = torch.empty_like(reward_buf)
        trunc_buf = torch.empty_like(reward_buf)
        stored_buf: dict[str, torch.Tensor] = {}
        finished: list[float] = []
        obs = self.envs.obs
        t_env = t_inf = 0.0
        for s in range(S):
            t0 = time.perf_counter()
            obs_t = self._tensor(obs)
            pre, stored = self.agent.act(self.normalizer(obs_t), obs_t)
            action = torch.tanh(pre).cpu().numpy()
            t1 = time.perf_counter()
            obs_next, reward, term, trunc, final_obs = self.envs.step(action)
            t2 = time.perf_counter()
            t_inf += t1 - t0
            t_env += t2 - t1
            obs_buf[s] = obs_t
            next_obs_buf[s] = self._tensor(final_obs)
            reward_buf[s] = self._tensor(reward)
            disc_buf[s] = self._tensor(1.0 - term.astype(np.float32))
            trunc_buf[s] = self._tensor(trunc.astype(np.float32))
            for k, v in stored.items():
                if k not in stored_buf:
                    stored_buf[k] = torch.empty((S, *v.shape), dtype=v.dtype, device=self.device)
                stored_buf[k][s] = v
            self._episode_return += reward
            done = term | trunc
            if done.any():
                finished.extend(self._episode_return[done].tolist())
                self._episode_return[done] = 0.0
            obs = obs_next
        finish = getattr(self.agent, "finish_rollout", None)
        if finish is not None:  # before any statistics update: rollout-time normalisation
            t0 = time.perf_counter()
            stored_buf.update(finish(self.normalizer(obs_buf), stored_buf))
            t_inf += time.perf_counter() - t0
        self.timing["env"] += t_env
        self.timing["inference"] += t_inf
        return {"obs": obs_buf, "next_obs": next_obs_buf, "reward": reward_buf, "discount": disc_buf,
                "truncation": trunc_buf, "stored": stored_buf,
                "train_return": float(np.mean(finished)) if finished else float("nan")}

    # -- update --------------------------------------------------------------------------
    def update(self, batch: dict) -> dict[str, float]:
        cfg = self.cfg
        T, S, N = cfg.unroll_length, cfg.steps_per_env, cfg.num_envs
        if cfg.obs_stats_timing == "pre_update":
            self.normalizer.update(batch["obs"])
        K = S // T  # segments per env
        M = K * N   # segments in the batch

        def segments(x: torch.Tensor) -> torch.Tensor:  # (S, N, ...) -> (T, M, ...)
            x = x.reshape(K, T, N, *x.shape[2:]).transpose(0, 1)
            return x.reshape(T, M, *x.shape[3:])

        with torch.no_grad():
            obs_n = segments(self.normalizer(batch["obs"]))
            boot_obs_n = segments(self.normalizer(batch["next_obs"]))[-1]
        reward = segments(batch["reward"]) * cfg.reward_scaling
        discount, truncation = segments(batch["discount"]), segments(batch["truncation"])
        stored = {k: segments(v) for k, v in batch["stored"].items()}

        sums: dict[str, float] = {}
        n_steps = 0
        for _ in range(cfg.num_epochs):
            perm = torch.randperm(M, device=self.device)
            for mb in range(cfg.num_minibatches):
                idx = perm[mb * cfg.batch_size:(mb + 1) * cfg.batch_size]
                o = obs_n[:, idx]
                values = self.critic(o)
                with torch.no_grad():
                    boot = self.critic(boot_obs_n[idx])
                    vs, adv = brax_gae(reward[:, idx], values.detach(), boot, discount[:, idx],
                                       truncation[:, idx], cfg.gamma, cfg.gae_lambda)
                    if cfg.normalize_advantage:
                        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
                policy_loss, info = self.agent.policy_loss(o, {k: v[:, idx] for k, v in stored.items()}, adv)
                value_loss = cfg.value_loss_coef * ((vs - values) * (1.0 - truncation[:, idx])).pow(2).mean()
                loss = policy_loss + value_loss
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm is not None:
                    info["grad_norm"] = grads_clip_(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                info = {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, **info}
                vals = torch.stack([torch.as_tensor(v, dtype=torch.float32).detach().reshape(()).cpu()
                                    for v in info.values()]).tolist()
                if not all(math.isfinite(v) for v in vals):
                    bad = {k: v for k, v in zip(info, vals) if not math.isfinite(v)}
                    raise Diverged(f"non-finite loss at iteration {self.iteration}: {bad}")
                for k, v in zip(info, vals):
                    sums[k] = sums.get(k, 0.0) + v
                n_steps += 1
        if cfg.obs_stats_timing == "rollout":
            self.normalizer.update(batch["obs"])
        for p in self.params:
            if not torch.isfinite(p).all():
                raise Diverged(f"non-finite parameters after iteration {self.iteration}")
        return {k: v / n_steps for k, v in sums.items()}

    # -- evaluation and probes -----------------------------------------------------------
    @property
    def eval_envs(self):
        if self._eval_envs is None:
            self._eval_envs = self.run.make_envs(self.cfg.eval_episodes, EVAL_STREAM)
        return self._eval_envs

    @torch.no_grad()
    def evaluate(self, index: int) -> dict:
        """``eval_episodes`` full episodes from fresh seeded resets; returns the evals.csv row."""
        t0 = time.perf_counter()
        envs = self.eval_envs
        obs = envs.reset(env_seeds(self.run.seed, EVAL_STREAM + 1 + index, envs.num_envs))
        returns = np.zeros(envs.num_envs)
        active = np.ones(envs.num_envs, bool)
        record = self.probe_states is None
        seen: list[np.ndarray] = []
        P = self.cfg.num_probe_states
        step = 0
        while active.any():
            obs_t = self._tensor(obs)
            action = torch.tanh(self.agent.act_eval(self.normalizer(obs_t), obs_t)).cpu().numpy()
            if record and step % 50 == 0:
                seen.append(obs[0].copy())
            obs, reward, term, trunc, _ = envs.step(action)
            returns += reward * active
            active &= ~(term | trunc)
            step += 1
        if record:
            pick = np.linspace(0, len(seen) - 1, min(P, len(seen))).round().astype(int)
            self.probe_states = np.stack([seen[i] for i in pick]).astype(np.float32)
        states = self._tensor(self.probe_states)
        acts = torch.tanh(self.agent.sample_actions(self.normalizer(states), states, self.cfg.probe_samples))
        self.probe_steps.append(self.env_step)
        self.probe_actions.append(acts.cpu().numpy().astype(np.float32))
        self.timing["eval"] += time.perf_counter() - t0
        row = {"env_step": self.env_step, "return_mean": float(returns.mean()),
               "return_std": float(returns.std()), "episodes": int(envs.num_envs), "stage": self.stage,
               "wall_time": round(self.run.wall_time(), 3)}
        self.evals.append(row)
        for hook in self.on_evaluate:
            hook(row)
        return row

    # -- the loop ------------------------------------------------------------------------
    def train(self, checkpoint: Callable[[], None] | None = None, progress=None,
              prior_evals: list[dict] | None = None, prior_probes: tuple | None = None,
              prior_metrics: list[dict] | None = None) -> None:
        """Run this trainer's iterations to ``num_iterations`` (resuming at ``self.iteration``).

        ``checkpoint()`` is called after every ``checkpoint_every`` iterations (default:
        save this trainer's state); ``prior_evals``/``prior_probes``/``prior_metrics`` are
        earlier stages' records, written in front of this trainer's own.
        """
        cfg = self.cfg
        n_iter = cfg.num_iterations
        evals_at = eval_iterations(n_iter, cfg.num_evals)
        save = checkpoint or (lambda: self.run.save_checkpoint(self.state_dict()))
        prior_evals, prior_metrics = prior_evals or [], prior_metrics or []
        while True:
            if self.iteration in evals_at and not any(
                    r["env_step"] == self.env_step and r["stage"] == self.stage for r in self.evals):
                row = self.evaluate(evals_at.index(self.iteration))
                self.run.write_evals(prior_evals + self.evals)
                self._write_probes(prior_probes)
                save()  # a resume after this point keeps this evaluation instead of repeating it
                if progress is not None:
                    progress.set_postfix(eval_return=f"{row['return_mean']:.1f}", refresh=False)
            if self.iteration >= n_iter:
                break
            t0 = time.perf_counter()
            batch = self.collect()
            t1 = time.perf_counter()
            info = self.update(batch)
            t2 = time.perf_counter()
            self.timing["update"] += t2 - t1
            self.iteration += 1
            self.run.env_steps_done = self.env_step
            row = {"env_step": self.env_step, "iteration": self.iteration, "stage": self.stage,
                   "sps": round(cfg.steps_per_iteration / (t2 - t0), 1), "rollout_s": round(t1 - t0, 4),
                   "update_s": round(t2 - t1, 4), "train_episode_return": batch["train_return"],
                   "physics_errors": self.envs.physics_errors, **info}
            self.metrics.append(row)
            if progress is not None:
                progress.update(cfg.steps_per_iteration)
            if self.iteration % cfg.checkpoint_every == 0 or self.iteration == n_iter:
                self.run.write_metrics(prior_metrics + self.metrics)
                save()

    def _write_probes(self, prior: tuple | None) -> None:
        steps, acts = list(self.probe_steps), list(self.probe_actions)
        if prior is not None:
            steps, acts = list(prior[0]) + steps, list(prior[1]) + acts
        self.run.write_probes(self.probe_states, steps, acts)
