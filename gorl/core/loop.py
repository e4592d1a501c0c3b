"""Run an algorithm that is one trainer from start to end (PPO, FPO, DPPO)."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from gorl.core.onpolicy import OnPolicyConfig, OnPolicyTrainer
from gorl.core.run import Run


class _Count:
    """The progress of a ``--quiet`` run: counted, never drawn (the evaluations' log lines say it),
    so a quiet run (every pipeline job) does not need tqdm."""

    def __init__(self, n: int):
        self.n = n

    def update(self, k: int) -> None:
        self.n += k

    def set_postfix(self, **_) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def progress_bar(run: Run, total: int, initial: int = 0):
    """The run's progress bar (``update``, ``set_postfix``, ``n``; a context manager)."""
    if run.quiet:
        return _Count(initial)
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit="step", unit_scale=True, dynamic_ncols=True,
                desc=f"{run.algo} {run.task} s{run.seed}")


def run_single_trainer(cfg: OnPolicyConfig, run: Run,
                       make_agent: Callable[[OnPolicyConfig, int, int], nn.Module]) -> OnPolicyTrainer:
    """Build envs and agent, resume from the checkpoint if there is one, train to the budget.

    Raises :class:`gorl.core.run.Diverged` on non-finite losses (the CLI records it).
    """
    torch.manual_seed(run.seed)
    agent = make_agent(cfg, *run.env_dims())
    trainer = OnPolicyTrainer(cfg, run, agent)
    state = run.load_checkpoint()
    if state is not None:
        trainer.load_state_dict(state)
        run.log(f"resumed from {run.checkpoint_path} at env step {trainer.env_step}")
        run.replace_pickled_checkpoints(trainer.state_dict)
    from gorl.policy import policy_state
    trainer.on_evaluate.append(lambda row: run.offer_best_policy(
        row, lambda: policy_state(trainer.agent, trainer.normalizer, env_step=row["env_step"], critic=trainer.critic)))
    with progress_bar(run, cfg.num_iterations * cfg.steps_per_iteration, trainer.env_step) as bar:
        trainer.train(progress=bar)
    run.save_policy("final", policy_state(trainer.agent, trainer.normalizer, env_step=trainer.env_step,
                                          critic=trainer.critic))
    return trainer
