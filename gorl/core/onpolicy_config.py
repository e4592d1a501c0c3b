"""The settings of the shared on-policy machinery (:class:`OnPolicyConfig`) and their choices.

Importable without torch: the registry, the pipeline's Snakefile and ``gorl-bench plan`` read
config classes (fields, defaults, validation) and never train. Every algorithm's config class
subclasses this one (re-exported as ``gorl.core.onpolicy.OnPolicyConfig``).
"""
from __future__ import annotations

from dataclasses import dataclass

from gorl.config import COMMON_PRESETS, defaults_from
from gorl.errors import ConfigError

EVAL_SCHEDULES = ("linspace_inclusive", "reference", "release")
AUTO = "auto"
RESET_MODES = ("random", "fixed_initial")
OBS_NORM_MODES = ("legacy", "welford")
"""Observation statistics (gorl/core/normalizer.py): the reference's 'legacy' or 'welford'."""
ROLLOUTS = ("auto", "scan", "step")
"""How an iteration's rollout runs (gorl/core/jax_rollout.py)."""
CUDA_GRAPHS = ("step", "epoch")
"""What one CUDA graph of the update holds on CUDA (``cuda_graph``; gorl/core/compiled.py)."""
EVAL_MODES = ("stochastic", "zero_noise")
"""How the flow policies (FPO, DPPO: gorl/generative/policy.py) act at evaluation."""


@dataclass
@defaults_from(COMMON_PRESETS)
class OnPolicyConfig:
    """Hyperparameters of the shared PPO machinery; defaults: ``paper`` of gorl/presets/common.yaml (spec 2.7)."""

    total_steps: int
    """Env-step budget of the run (``--steps``); rounded down to whole iterations."""
    num_envs: int
    """Parallel training envs."""
    unroll_length: int
    """Segment length T: advantages are computed over segments of T steps."""
    num_minibatches: int
    """Minibatches per epoch."""
    batch_size: int
    """Segments per minibatch; one iteration collects batch_size*num_minibatches*unroll_length steps."""
    num_epochs: int
    """Passes over each iteration's data (Brax num_updates_per_batch)."""
    gamma: float
    """Discount."""
    gae_lambda: float
    """GAE lambda."""
    reward_scaling: float
    """Rewards are multiplied by this inside the loss only."""
    value_loss_coef: float
    """Value loss = coef * mean(((vs - V) * (1 - truncation))^2)."""
    learning_rate: float
    """Adam learning rate (actor and critic share one Adam)."""
    adam_eps: float
    """Adam epsilon."""
    max_grad_norm: float | None
    """Clip the global norm of actor+critic gradients jointly (None: no clipping)."""
    normalize_advantage: bool
    """Normalise advantages per minibatch."""
    obs_norm_mode: str
    """'legacy' (reference code: variance sum not accumulated, spec 2.2) or 'welford' (correct)."""
    obs_stats_timing: str
    """'pre_update' (reference: stats updated with the batch before the losses) or 'rollout'."""
    reset_mode: str
    """'random' (a fresh seeded reset per episode, dm_control's own) or 'fixed_initial' (the
    reference, spec 2.3: each training env returns to its own first state for the whole run;
    GoRL's collectors reuse those states)."""
    critic_hidden: list[int]
    """Critic hidden layer sizes."""
    num_evals: int
    """Evaluations per run (GoRL: per stage); where they fall is set by ``eval_schedule``."""
    eval_schedule: str
    """'reference' (spec 1.4: baselines at iteration 0 and every (n // (num_evals - 1))-th from
    there, {0, 5, 11, ..., 179} in paper; GoRL at int(linspace(0, n - 1, num_evals)) per stage;
    always before that iteration's update, never after the last), 'linspace_inclusive'
    (round(linspace(0, n, num_evals)): the first before any update, the last after the final one)
    or 'release' (the 2026 release: before any update, after the last, and in between
    round(j n / (num_evals - 1)) for j = 1 .. num_evals - 2 with Python's half-even rounding,
    {6, 12, 18, 24, 30, 37, ...} for n = 183, num_evals = 31; GoRL per stage:
    int(linspace(1, n, num_evals - 1)) after update 0)."""
    eval_episodes: int
    """Episodes (parallel envs) per evaluation."""
    eval_deterministic: bool
    """True: the evaluation acts on the policy's mean (return_mean). False (Brax's default, the
    release's humanoid PPO): it samples, and a deterministic evaluation on the same resets is
    kept beside it (evals.csv column return_mean_deterministic)."""
    num_probe_states: int
    """Fixed probe states at which action samples are saved at every evaluation."""
    probe_samples: int
    """Action samples per probe state per evaluation."""
    checkpoint_every: int | str
    """Write a checkpoint every N iterations (and after each evaluation, and at the end). 'auto': every
    k iterations, k chosen on this machine when the second iteration of the process ends,
    k = ceil(checkpoint seconds / (0.05 x iteration seconds)), so that checkpointing costs under 5% of
    the iterations' time (evaluations get no checkpoint of their own, except the last); said in the
    run's log and kept in the checkpoint (a resumed run keeps it). Where checkpoints fall never
    changes a result."""
    device: str
    """'auto' (CUDA when present), 'cpu' or 'cuda[:k]'."""
    env_workers: int
    """Host (dm_control, gym) envs: 0 steps them in the training process; N > 0 shards them over
    N worker processes with shared-memory buffers (many-core machines). Results do not depend on it."""
    matmul_precision: str
    """Float32 matmuls of torch and JAX: 'fp32', 'tf32' (TensorFloat-32 on GPUs that have it) or 'auto'
    (fp32 on a CPU; tf32 on CUDA, as JAX's default precision ran the reference stack on a GPU); the
    release's humanoid runs use fp32 ('highest'). Applied before training, stated in provenance.json."""
    rollout: str
    """'auto' (the scan on playground: tasks for the suite's algorithms), 'scan' (each iteration's
    rollout is one JAX program, gorl/core/jax_rollout.py; playground: tasks only; so is each
    evaluation's episode where the agent's evaluation action is known to it) or 'step' (one
    policy call and one env step call per env step). Same random numbers, same results up to
    float rounding (XLA and torch sum matmuls in different orders)."""
    compile_update: bool
    """True: each minibatch's step (critic, GAE, policy loss, backward, clip, Adam) runs compiled by
    torch.compile: on CUDA in 'reduce-overhead' mode (CUDA graphs, a capturable Adam), elsewhere in
    the default mode; the first update of a process compiles (seconds to a minute). GoRL: also
    each decoder fit's optimiser step (compiled anew per fit). False: eager. Same random numbers;
    results equal up to float rounding (compiled kernels sum in other orders)."""
    cuda_graph: str
    """On CUDA, what one CUDA graph of the update holds. 'step': with ``compile_update``, each
    minibatch step's compiled graphs (cudagraph trees; eager without it: no graph). 'epoch': an
    epoch's minibatch steps (``num_minibatches`` of them, compiled or eager) captured once as one
    graph and replayed, the permutation drawn outside it; the host launches one graph per epoch.
    GoRL: also each run of ``decoder_eval_interval`` steps of the release's decoder fit. Off CUDA
    both run the same kernels. Same random numbers, same results up to float rounding."""

    @property
    def steps_per_env(self) -> int:
        return self.batch_size * self.num_minibatches * self.unroll_length // self.num_envs

    @property
    def steps_per_iteration(self) -> int:
        return self.steps_per_env * self.num_envs

    @property
    def num_iterations(self) -> int:
        return self.total_steps // self.steps_per_iteration

    @property
    def effective_steps(self) -> int:
        """The budget trained: total_steps rounded down to whole iterations (in config.yaml)."""
        return self.num_iterations * self.steps_per_iteration

    def validate(self) -> None:
        for key in ("total_steps", "num_envs", "unroll_length", "num_minibatches", "batch_size",
                    "num_epochs", "num_evals", "eval_episodes", "probe_samples"):
            if getattr(self, key) <= 0:
                raise ConfigError(f"{key} must be positive, got {getattr(self, key)}")
        if self.checkpoint_every != AUTO and not (isinstance(self.checkpoint_every, int) and self.checkpoint_every > 0):
            raise ConfigError(f"checkpoint_every must be a positive number of iterations or 'auto', "
                              f"got {self.checkpoint_every!r}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0 < self.gamma <= 1 or not 0 <= self.gae_lambda <= 1:
            raise ConfigError(f"gamma must be in (0, 1] and gae_lambda in [0, 1], got {self.gamma}, {self.gae_lambda}")
        if self.obs_norm_mode not in OBS_NORM_MODES:
            raise ConfigError(f"obs_norm_mode must be one of {OBS_NORM_MODES}, got {self.obs_norm_mode!r}")
        if self.eval_schedule not in EVAL_SCHEDULES:
            raise ConfigError(f"eval_schedule must be one of {EVAL_SCHEDULES}, got {self.eval_schedule!r}")
        if self.reset_mode not in RESET_MODES:
            raise ConfigError(f"reset_mode must be one of {RESET_MODES}, got {self.reset_mode!r}")
        if self.obs_stats_timing not in ("pre_update", "rollout"):
            raise ConfigError(f"obs_stats_timing must be 'pre_update' or 'rollout', got {self.obs_stats_timing!r}")
        if (self.batch_size * self.num_minibatches) % self.num_envs:
            raise ConfigError(f"batch_size*num_minibatches ({self.batch_size * self.num_minibatches}) must be a "
                              f"multiple of num_envs ({self.num_envs}) so each env runs whole segments")
        if self.cuda_graph not in CUDA_GRAPHS:
            raise ConfigError(f"cuda_graph must be one of {CUDA_GRAPHS}, got {self.cuda_graph!r}")
        if self.rollout not in ROLLOUTS:
            raise ConfigError(f"rollout must be one of {ROLLOUTS}, got {self.rollout!r}")
        if self.env_workers < 0:
            raise ConfigError(f"env_workers must be 0 (in-process) or a number of worker processes, "
                              f"got {self.env_workers}")
        from gorl.provenance import MATMUL_PRECISIONS
        if self.matmul_precision not in MATMUL_PRECISIONS:
            raise ConfigError(f"matmul_precision must be one of {MATMUL_PRECISIONS}, got {self.matmul_precision!r}")
        if self.max_grad_norm is not None and self.max_grad_norm <= 0:
            raise ConfigError(f"max_grad_norm must be positive or null, got {self.max_grad_norm}")
        self.validate_budget()

    def validate_budget(self) -> None:
        if self.num_iterations < 1:
            raise ConfigError(f"total_steps={self.total_steps} is less than one iteration "
                              f"({self.steps_per_iteration} env steps with this preset)")
