"""The shared on-policy loop (Brax-style PPO machinery, spec section 2).

An algorithm supplies an *agent* (the policy half) implementing :class:`Agent`; this
module owns everything else: envs, observation statistics, the critic, the rollout
storage, per-minibatch value targets/advantages, the clipped-objective optimisation
loop, evaluation, action probes and checkpoints. Evaluations, metrics and probes are
appended to the :class:`Run`, which owns the run's records and files. GoRL runs one trainer
per stage (``step_offset``/``stage`` put its evaluations on one global env-step axis).
"""
from __future__ import annotations

import math
import time
from typing import Callable, Protocol

import numpy as np
import torch
from torch import nn

from gorl.core import compiled, jax_rollout
from gorl.core.advantages import brax_gae
from gorl.core.networks import Critic
from gorl.core.normalizer import RunningNormalizer
# OnPolicyConfig lives with its choices in a torch-free module; re-exported here, where plug-ins subclass it
from gorl.core.onpolicy_config import AUTO, EVAL_SCHEDULES, OnPolicyConfig  # noqa: F401
from gorl.core.run import EVAL_STREAM, TRAIN_STREAM, Run, env_seeds, rng_state, set_rng_state
from gorl.errors import ConfigError, Diverged
from gorl.provenance import set_matmul_precision


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


CHECKPOINT_SHARE = 0.05
"""checkpoint_every auto: the most of the iterations' time that checkpoints may take."""


def eval_iterations(num_iterations: int, num_evals: int, schedule: str = "linspace_inclusive",
                    staged: bool = False) -> list[int]:
    """Iterations (0 = before any update, num_iterations = after the last) at which to evaluate.

    An evaluation at iteration i runs before that iteration's update (it sees i updates).
    ``schedule`` 'linspace_inclusive': round(linspace(0, n, num_evals)), both ends included.
    'release' (the 2026 release): 0, n and, for baselines, round(j n / (num_evals - 1)) for
    j = 1 .. num_evals - 2 (half-even, clamped to 1 .. n - 1); for a GoRL stage
    int(linspace(1, n, num_evals - 1)).
    'reference' (spec 1.4): never after the last update; ``staged`` (a GoRL stage):
    int(linspace(0, n - 1, num_evals)) as train_encoder_ppo.py; otherwise (baselines) iteration
    0 and every i with (i + 1) % (n // (num_evals - 1)) == 0, which is the reference's
    {0, 5, 11, ..., 179} for n = 183, num_evals = 31.
    """
    n, k = num_iterations, num_evals
    if schedule == "release":  # an evaluation at iteration i has seen i updates
        if staged:  # dm_control_training.train_stage: update 0, linspace(1, n, k - 1, int), the last
            return sorted({0, n, *(int(p) for p in np.linspace(1, n, max(k - 1, 1), dtype=int))})
        # upstream_fpo.intermediate_eval_iterations: round() is Python's half-even rounding
        inner = {max(1, min(n - 1, round(j * n / (k - 1)))) for j in range(1, k - 1)} if n > 1 else set()
        return sorted({0, n, *inner})
    if schedule == "linspace_inclusive":
        pts = np.linspace(0, n, max(k, 1)) if k > 1 else [n]
        return sorted({int(round(p)) for p in pts})
    if schedule != "reference":
        raise ValueError(f"eval_schedule must be one of {EVAL_SCHEDULES}, got {schedule!r}")
    if staged:
        return sorted({int(p) for p in np.linspace(0, n - 1, max(k, 1))})
    if k <= 1:
        return [0]
    every = max(n // (k - 1), 1)
    return [0] + [i for i in range(1, n) if (i + 1) % every == 0]


def env_action(agent, pre: torch.Tensor) -> torch.Tensor:
    """The env action of an agent's output: tanh of a pre-action (every algorithm's default), or
    the agent's own ``env_action`` (GoRL with bounded actions: the decoded action clipped to [-1, 1])."""
    squash = getattr(agent, "env_action", None)
    return torch.tanh(pre) if squash is None else squash(pre)


def grads_clip_(params: list[nn.Parameter], max_norm: float) -> torch.Tensor:
    """Global-norm clipping with the reference's formula: scale = min(1, c / (norm + 1e-8))."""
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    scale = torch.clamp(max_norm / (norm + 1e-8), max=1.0)
    torch._foreach_mul_(grads, scale)
    return norm


class OnPolicyTrainer:
    compile_backend = "inductor"
    """torch.compile's backend for ``compile_update`` (tests set 'aot_eager' on a trainer: the same
    graphs and graph breaks, run by eager kernels, without inductor's code generation)."""

    def __init__(self, cfg: OnPolicyConfig, run: Run, agent: nn.Module, *, step_offset: int = 0,
                 stage: int = 0, env_stream: int = TRAIN_STREAM, staged_evals: bool = False):
        self.cfg, self.run, self.agent = cfg, run, agent.to(run.device)
        self.staged_evals = staged_evals  # a GoRL stage: the reference's per-stage evaluation rule
        self.device = run.device
        self.step_offset, self.stage = step_offset, stage
        self.envs = run.make_envs(cfg.num_envs, env_stream, cfg.env_workers,
                                  fixed_initial=cfg.reset_mode == "fixed_initial")
        self.obs_dim, self.act_dim = self.envs.obs_dim, self.envs.action_dim
        self._eval_envs = None
        self.normalizer = RunningNormalizer(self.obs_dim, cfg.obs_norm_mode).to(self.device)
        self.critic = Critic(self.obs_dim, cfg.critic_hidden).to(self.device)
        self.params = [*self.agent.parameters(), *self.critic.parameters()]
        self._epoch_graph = cfg.cuda_graph == "epoch"
        """``cuda_graph: epoch``: each epoch's minibatch steps replay as one captured CUDA graph
        (:class:`compiled.Captured`, on static copies of the update's data; off CUDA the same code
        runs uncaptured)."""
        self.optimizer = torch.optim.Adam(self.params, lr=cfg.learning_rate, eps=cfg.adam_eps,
                                          **compiled.adam_options(self.device, cfg.compile_update, self._epoch_graph))
        self._compiled = None  # compile_update: the compiled minibatch step, made at the first update
        self._captured = None  # cuda_graph epoch: the epoch and its static tensors, made at the first update
        self.iteration = 0
        self.checkpoint_every: int | None = None if cfg.checkpoint_every == AUTO else cfg.checkpoint_every
        """Iterations between checkpoints (None: ``auto``, not chosen yet, so every iteration)."""
        self.probe_states: np.ndarray | None = run.records.probe_states
        self.on_evaluate: list[Callable[[dict], None]] = []
        self._episode_return = torch.zeros(cfg.num_envs, dtype=torch.float64, device=self.device)
        self.timing = {"env": 0.0, "inference": 0.0, "update": 0.0, "eval": 0.0}
        """Seconds per phase. On a GPU they time the launches, not the work, unless ``sync_timing``
        (benchmarks set it: a synchronisation where each phase ends). With the scan rollout,
        'env' is the whole fused rollout (env and policy). Likewise metrics.csv's ``rollout_s`` ends
        when the rollout is launched: on a GPU, ``update_s`` holds the rest of its work (the
        rollout ends with no synchronisation); ``sps`` is exact."""
        self.sync_timing = False
        self.matmul_precision = set_matmul_precision(cfg.matmul_precision, self.device)
        if self.device.type == "cuda" and not cfg.compile_update and not run._eager_cuda_noted:
            run._eager_cuda_noted = True  # once per run (GoRL makes a trainer per stage)
            run.log("note: the update runs eagerly on CUDA; --set compile_update=true runs it as CUDA graphs "
                    "(PPO paper on an H200: 3.5x faster update, 2.3x faster iteration; config/paper-gpu.yaml "
                    "sets it)")
        try:
            self._scan = jax_rollout.select(cfg.rollout, self.envs, self.agent, run.log)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        run.rollout = "step" if self._scan is None else "scan"  # what `rollout: auto` chose, for provenance

    # -- bookkeeping ---------------------------------------------------------------------
    @property
    def env_step(self) -> int:
        """Global env step (this trainer's iterations plus the offset of earlier stages)."""
        return self.step_offset + self.iteration * self.cfg.steps_per_iteration

    def close(self) -> None:
        """Release what the trainer holds beyond its modules: its training and evaluation envs (a
        sharded set's worker processes and shared memory, a dm_control set's physics), the compiled
        step, and the ``on_evaluate`` hooks, which may point back at the trainer (GoRL's do): a
        trainer in such a cycle waits for Python's cycle collector, its envs with it, while the next
        stage collects and builds its own. The envs are dropped as well as closed, so that they go
        even while something still holds the trainer. The agent, critic and normaliser stay
        usable; the trainer does not train again."""
        for envs in (self.envs, self._eval_envs):
            if envs is not None:
                envs.close()
        self.envs = self._eval_envs = self._scan = None
        self.on_evaluate.clear()
        self._compiled = self._captured = None

    def state_dict(self) -> dict:
        return {"iteration": self.iteration, "agent": self.agent.state_dict(),
                "critic": self.critic.state_dict(), "optimizer": self.optimizer.state_dict(),
                "normalizer": self.normalizer.state_dict(), "envs": self.envs.get_state(),
                "rng": rng_state(), "episode_return": self._episode_return,
                "step_offset": self.step_offset, "stage": self.stage, "checkpoint_every": self.checkpoint_every}

    def load_state_dict(self, st: dict) -> None:
        self.iteration = st["iteration"]
        self.run.env_steps_done = self.step_offset + self.iteration * self.cfg.steps_per_iteration
        self.agent.load_state_dict(st["agent"])
        self.critic.load_state_dict(st["critic"])
        self.optimizer.load_state_dict(st["optimizer"])  # new state tensors: a captured epoch captures again
        self._captured = None
        self.normalizer.load_state_dict(st["normalizer"])
        self.normalizer.to(self.device)
        self.envs.set_state(st["envs"])
        set_rng_state(st["rng"] if "rng" in st else st["torch_rng"])
        self.probe_states = self.run.records.probe_states
        self._episode_return = torch.as_tensor(st["episode_return"], dtype=torch.float64).to(self.device)
        if self.cfg.checkpoint_every == AUTO:  # the cadence chosen before the interruption, if any
            self.checkpoint_every = st.get("checkpoint_every")

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device)

    # -- rollout -------------------------------------------------------------------------
    @torch.no_grad()
    def collect(self) -> dict[str, torch.Tensor]:
        """One iteration's rollout: (S, N, ...) tensors, S = steps per env.

        Everything stays on the run's device (on-device envs: no host round trip and no
        synchronisation per step or at the end): ``train_return``, the mean return of the training
        episodes that ended (NaN if none), is a 0-dim device tensor that :meth:`train` reads with
        the iteration's other metrics.
        """
        if self._scan is not None:
            return jax_rollout.collect(self, self._scan)
        S, N = self.cfg.steps_per_env, self.cfg.num_envs
        sync = self.sync_timing and self.device.type == "cuda"
        obs_buf = torch.empty(S, N, self.obs_dim, device=self.device)
        next_obs_buf = torch.empty_like(obs_buf)
        reward_buf = torch.empty(S, N, device=self.device)
        disc_buf = torch.empty_like(reward_buf)
        trunc_buf = torch.empty_like(reward_buf)
        stored_buf: dict[str, torch.Tensor] = {}
        episode_return = self._episode_return
        finished_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        finished_n = torch.zeros((), dtype=torch.int64, device=self.device)
        obs = self.envs.obs
        t_env = t_inf = 0.0
        for s in range(S):
            t0 = time.perf_counter()
            pre, stored = self.agent.act(self.normalizer(obs), obs)
            action = env_action(self.agent, pre)
            if sync:
                torch.cuda.synchronize(self.device)
            t1 = time.perf_counter()
            obs_next, reward, term, trunc, final_obs = self.envs.step(action)
            if sync:
                torch.cuda.synchronize(self.device)
            t2 = time.perf_counter()
            t_inf += t1 - t0
            t_env += t2 - t1
            obs_buf[s] = obs
            next_obs_buf[s] = final_obs
            reward_buf[s] = reward
            disc_buf[s] = 1.0 - term.float()
            trunc_buf[s] = trunc.float()
            for k, v in stored.items():
                if k not in stored_buf:
                    stored_buf[k] = torch.empty((S, *v.shape), dtype=v.dtype, device=self.device)
                stored_buf[k][s] = v
            episode_return += reward
            done = term | trunc
            finished_sum += torch.where(done, episode_return, 0.0).sum()
            finished_n += done.sum()
            episode_return.masked_fill_(done, 0.0)
            obs = obs_next
        finish = getattr(self.agent, "finish_rollout", None)
        if finish is not None:  # before any statistics update: rollout-time normalisation
            t0 = time.perf_counter()
            stored_buf.update(finish(self.normalizer(obs_buf), stored_buf))
            t_inf += time.perf_counter() - t0
        self.timing["env"] += t_env
        self.timing["inference"] += t_inf
        return {"obs": obs_buf, "next_obs": next_obs_buf, "reward": reward_buf, "discount": disc_buf,
                "truncation": trunc_buf, "stored": stored_buf, "train_return": finished_sum / finished_n}

    # -- update --------------------------------------------------------------------------
    def minibatch_step(self, o: torch.Tensor, boot_o: torch.Tensor, rdt: torch.Tensor,
                       stored: dict[str, torch.Tensor]) -> tuple[torch.Tensor, tuple[str, ...]]:
        """One optimisation step on a minibatch of segments: the critic, value targets and
        advantages with it (GAE), the algorithm's policy loss, backward, the global-norm clip and
        Adam's step. ``o`` (T, B, d_o) normalised observations, ``boot_o`` (B, d_o) the normalised
        bootstrap observations, ``rdt`` (T, B, 3) scaled reward, discount and truncation,
        ``stored`` (T, B, ...) the agent's rollout tensors. Returns the logged scalars as one
        float64 vector and their names. ``compile_update`` compiles this method as it is."""
        cfg = self.cfg
        reward, discount, truncation = rdt.unbind(-1)
        values = self.critic(o)
        with torch.no_grad():  # V(bootstrap obs) with the current critic, as Brax does
            boot = self.critic(boot_o)
            vs, adv = brax_gae(reward, values.detach(), boot, discount, truncation, cfg.gamma, cfg.gae_lambda)
            if cfg.normalize_advantage:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        policy_loss, info = self.agent.policy_loss(o, stored, adv)
        value_loss = cfg.value_loss_coef * ((vs - values) * (1.0 - truncation)).pow(2).mean()
        loss = policy_loss + value_loss
        for p in self.params:  # zero_grad(set_to_none=True), which torch.compile would not trace
            p.grad = None
        loss.backward()
        if cfg.max_grad_norm is not None:
            info["grad_norm"] = grads_clip_(self.params, cfg.max_grad_norm)
        self.optimizer.step()
        info = {"loss": loss, "policy_loss": policy_loss, "value_loss": value_loss, **info}
        # one stack of the 0-d scalars (float32, then float64 for the sums); a plug-in's
        # Python float goes through torch.tensor
        vals = torch.stack([v.detach().reshape(()) if isinstance(v, torch.Tensor) else
                            torch.tensor(v, device=self.device) for v in info.values()])
        return vals.float().double(), tuple(info)

    def _compiled_step(self):
        """:meth:`minibatch_step` compiled (``compile_update``, :mod:`gorl.core.compiled`), once per
        trainer: the same random numbers as the eager step, so resumes stay exact."""
        if self._compiled is None:
            graphs = not self._epoch_graph  # an epoch graph captures the compiled kernels itself
            self._compiled = compiled.compile_step(self.minibatch_step, self.device, self.compile_backend, graphs)
            self.run.log(f"compile_update: the minibatch step runs compiled by "
                         f"{compiled.describe(self.device, self.compile_backend, graphs)}; the first update compiles it")
        return self._compiled

    @property
    def epoch_captured(self) -> bool | None:
        """``cuda_graph: epoch``: whether the epoch runs as a captured graph (False before the second
        epoch, off CUDA, and after a failed capture); None for 'step'."""
        return None if not self._epoch_graph else self._captured is not None and self._captured["run"].captured

    @property
    def _step_graphs(self) -> bool:
        """Whether each minibatch step runs as CUDA graphs of its own (cudagraph trees)."""
        return self.cfg.compile_update and not self._epoch_graph and \
            compiled.uses_cuda_graphs(self.device, self.compile_backend)

    def _epoch(self, step, data: tuple, perm: torch.Tensor, sums: torch.Tensor | None) -> torch.Tensor:
        """One epoch: ``num_minibatches`` steps on ``data`` (obs_n, boot_obs_n, rdt, stored) in the
        order ``perm``; each step's scalars added to ``sums`` in place (None: a copy of the first)."""
        cfg = self.cfg
        obs_n, boot_obs_n, rdt, stored = data
        for mb in range(cfg.num_minibatches):
            idx = perm[mb * cfg.batch_size:(mb + 1) * cfg.batch_size]
            if self._step_graphs:  # a new step for the CUDA graphs: the previous one's outputs may be reused
                compiled.step_begin(self.device, self.compile_backend)
            vals, self._metric_names = step(obs_n[:, idx], boot_obs_n[idx], rdt[:, idx],
                                            {k: v[:, idx] for k, v in stored.items()})
            # vals may live in a CUDA graph's memory, which the next minibatch's replay
            # overwrites: the sums are a tensor of their own
            sums = vals.clone() if sums is None else sums.add_(vals)
        return sums

    def _epochs(self, step, data: tuple) -> torch.Tensor:
        """The update's ``num_epochs`` epochs, each over a fresh permutation of the segments; returns
        the summed scalars. ``cuda_graph: epoch``: the data is copied into the captured epoch's
        static tensors, the permutation drawn outside the graph (the same draws, in the same order,
        as without it)."""
        M = data[0].shape[1]
        if not self._epoch_graph:
            sums = None
            for _ in range(self.cfg.num_epochs):
                sums = self._epoch(step, data, torch.randperm(M, device=self.device), sums)
            return sums
        c = self._captured
        if c is None:
            c = self._captured = {"data": compiled.static_copy(data), "sums": None,
                                  "perm": torch.empty(M, dtype=torch.long, device=self.device)}

            def epoch() -> None:
                c["sums"] = self._epoch(step, c["data"], c["perm"], c["sums"])
            c["run"] = compiled.Captured(epoch, self.device, self.run.log)
        else:
            compiled.copy_into(c["data"], data)
            c["sums"].zero_()  # 0 + the first step's scalars: those scalars exactly
        for _ in range(self.cfg.num_epochs):
            c["perm"].copy_(torch.randperm(M, device=self.device))
            c["run"]()
        return c["sums"].clone()

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
            boot_obs_n = self.normalizer(segments(batch["next_obs"])[-1])  # only the segments' last rows
        # reward, discount and truncation gathered by one index per minibatch: (T, M, 3)
        rdt = torch.stack([batch["reward"] * cfg.reward_scaling, batch["discount"], batch["truncation"]], -1)
        rdt = segments(rdt)
        stored = {k: segments(v) for k, v in batch["stored"].items()}

        # Per-minibatch scalars are summed on the device (float64, in order, as Python floats
        # were) and read once per iteration: no host synchronisation inside the loop. A
        # non-finite value anywhere makes its sum non-finite, which ends the run as diverged.
        step = self._compiled_step() if cfg.compile_update else self.minibatch_step
        sums = self._epochs(step, (obs_n, boot_obs_n, rdt, stored))
        names, n_steps = self._metric_names, cfg.num_epochs * cfg.num_minibatches
        params_finite = torch.stack([torch.isfinite(p).all() for p in self.params]).all()
        # the iteration's one host read: the update's sums, the parameters' check and the rollout's
        # metrics (kept in self.rollout_metrics for the metrics row)
        host = torch.cat([sums, params_finite.double().reshape(1), *self._rollout_metrics(batch)]).tolist()
        n = len(names)
        sums, params_ok = dict(zip(names, host[:n])), bool(host[n])
        self.rollout_metrics = {"train_episode_return": host[n + 1],
                                "physics_errors": int(host[n + 2]) if len(host) > n + 2 else int(self.envs.physics_errors)}
        if not all(math.isfinite(v) for v in sums.values()):
            bad = [k for k, v in sums.items() if not math.isfinite(v)]
            raise Diverged(f"non-finite loss at iteration {self.iteration}: {', '.join(bad)}")
        if cfg.obs_stats_timing == "rollout":
            self.normalizer.update(batch["obs"])
        if not params_ok:
            raise Diverged(f"non-finite parameters after iteration {self.iteration}")
        return {k: v / n_steps for k, v in sums.items()}

    # -- evaluation and probes -----------------------------------------------------------
    @property
    def eval_envs(self):
        if self._eval_envs is None:
            self._eval_envs = self.run.make_envs(self.cfg.eval_episodes, EVAL_STREAM, self.cfg.env_workers)
        return self._eval_envs

    @torch.no_grad()
    def evaluate(self, index: int) -> dict:
        """``eval_episodes`` full episodes from fresh seeded resets; returns the evals.csv row."""
        t0 = time.perf_counter()
        record = self.probe_states is None
        seen: list[torch.Tensor] = []
        returns = self._episodes(index, self.cfg.eval_deterministic, seen if record else None)
        extra = {}
        if not self.cfg.eval_deterministic:  # the deterministic return beside the reported one
            extra["return_mean_deterministic"] = float(self._episodes(index, True).mean())
        envs = self.eval_envs
        P = self.cfg.num_probe_states
        if record:
            pick = np.linspace(0, len(seen) - 1, min(P, len(seen))).round().astype(int)
            self.probe_states = torch.stack([seen[i] for i in pick]).float().cpu().numpy()
        states = self._tensor(self.probe_states)
        acts = env_action(self.agent, self.agent.sample_actions(self.normalizer(states), states,
                                                               self.cfg.probe_samples))
        self.run.append_probes(self.env_step, self.probe_states, acts.cpu().numpy())
        self.timing["eval"] += time.perf_counter() - t0
        row = {"env_step": self.env_step, "return_mean": float(returns.mean()),
               "return_std": float(returns.std()), "episodes": int(envs.num_envs), "stage": self.stage,
               "wall_time": round(self.run.wall_time(), 3), **extra}
        for hook in self.on_evaluate:
            hook(row)
        return row

    def _episodes(self, index: int, deterministic: bool, seen: list | None = None) -> np.ndarray:
        """Returns of ``eval_episodes`` full episodes from evaluation ``index``'s seeded resets;
        ``seen``: every 50th observation of env 0 is appended (the probe states' pool). With the
        scan rollout the episodes run as one JAX program (:func:`jax_rollout.evaluate_returns`)."""
        envs = self.eval_envs
        obs = envs.reset(env_seeds(self.run.seed, EVAL_STREAM + 1 + index, envs.num_envs))
        if jax_rollout.evaluates(self._scan, envs, deterministic):  # the loop below as one JAX program
            return jax_rollout.evaluate_returns(envs, self._scan, self.normalizer, deterministic, seen).cpu().numpy()
        returns = torch.zeros(envs.num_envs, dtype=torch.float64, device=self.device)
        active = torch.ones(envs.num_envs, dtype=torch.bool, device=self.device)
        step = 0
        # a time limit ends every episode by then: no host check of `active` per step
        limit = getattr(envs, "episode_length", None)
        while True:
            obs_n = self.normalizer(obs)
            pre = self.agent.act_eval(obs_n, obs) if deterministic else self.agent.act(obs_n, obs)[0]
            if seen is not None and step % 50 == 0:
                seen.append(obs[0].clone())
            obs, reward, term, trunc, _ = envs.step(env_action(self.agent, pre))
            returns += reward * active
            active &= ~(term | trunc)
            step += 1
            if (step >= limit) if limit else not active.any():
                break
        return returns.cpu().numpy()

    def _choose_checkpoint_every(self, checkpoint_s: float, iteration_s: float) -> None:
        """checkpoint_every auto: the fewest iterations between checkpoints that keep a checkpoint's
        time under CHECKPOINT_SHARE of theirs (measured: the last checkpoint, this iteration)."""
        self.checkpoint_every = max(1, math.ceil(checkpoint_s / (CHECKPOINT_SHARE * iteration_s)))
        self.run.log(f"checkpoint_every auto: a checkpoint takes {checkpoint_s:.3g} s, an iteration {iteration_s:.3g} s: "
                     f"a checkpoint every {self.checkpoint_every} iteration(s), under {CHECKPOINT_SHARE:.0%} of the time")

    def _rollout_metrics(self, batch: dict) -> list[torch.Tensor]:
        """The rollout's metrics as device scalars, read with the update's own (one host read per
        iteration): the training-episode return, and the physics-error count of on-device envs
        (host envs count on the host)."""
        out = [torch.as_tensor(batch["train_return"], device=self.device).double().reshape(1)]
        on_device = getattr(self.envs, "physics_errors_tensor", None)
        if on_device is not None:
            out.append(on_device().to(self.device).double().reshape(1))
        return out

    # -- the loop ------------------------------------------------------------------------
    def train(self, checkpoint: Callable[[], None] | None = None, progress=None) -> None:
        """Run this trainer's iterations to ``num_iterations`` (resuming at ``self.iteration``).

        Evaluations, metrics and probes are appended to ``self.run`` (the run's records,
        earlier stages' included). ``checkpoint()`` is called after every
        ``checkpoint_every`` iterations (default: save this trainer's state); ``auto`` times it.
        """
        cfg = self.cfg
        n_iter = cfg.num_iterations
        evals_at = eval_iterations(n_iter, cfg.num_evals, cfg.eval_schedule, self.staged_evals)
        save_state = checkpoint or (lambda: self.run.save_checkpoint(self.state_dict()))
        last_save_s = None
        here = 0  # iterations run by this process (its first one compiles)

        def save() -> None:
            nonlocal last_save_s
            t = time.perf_counter()
            save_state()
            last_save_s = time.perf_counter() - t
        while True:
            if self.iteration in evals_at and not self.run.has_eval(self.env_step, self.stage):
                row = self.evaluate(evals_at.index(self.iteration))
                self.run.append_eval(row)
                if cfg.checkpoint_every != AUTO or self.iteration >= n_iter:
                    save()  # a resume after this point keeps this evaluation instead of repeating it
                # (auto: the next cadence checkpoint keeps it; a resume from an earlier one repeats it,
                # exactly, at the same point of every random stream, without costing a checkpoint)
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
            self.run.append_metrics({
                "env_step": self.env_step, "iteration": self.iteration, "stage": self.stage,
                "sps": round(cfg.steps_per_iteration / (t2 - t0), 1), "rollout_s": round(t1 - t0, 4),
                "update_s": round(t2 - t1, 4), **self.rollout_metrics, **info})
            if progress is not None:
                progress.update(cfg.steps_per_iteration)
            here += 1
            if self.checkpoint_every is None and here >= 2 and last_save_s is not None:
                self._choose_checkpoint_every(last_save_s, t2 - t0)
            if self.iteration % (self.checkpoint_every or 1) == 0 or self.iteration == n_iter or self.run.stop_requested:
                save()
            self.run.stop_if_requested()  # SIGTERM/SIGINT: stop here, at a checkpoint
