"""DPPO as run by the GoRL code (spec 5): the flow policy's Euler chain made stochastic
(N(0, 0.05^2) per step) and treated as a 10-step MDP; PPO on each step's Gaussian
transition likelihood.

Acting: x_1 ~ N(0, I); x_{k+1} = x_k + dt v(s, x_k, t_k) + 0.05 z_k; the env receives
tanh(x_0). Stored: the 11 chain states and the 10 rollout-time step log-likelihoods.
Loss: rho_k = exp(logp_k,new - logp_k,old) (no pre-exp clip), clipped surrogate with
epsilon 0.2 per step and the env-step advantage, mean over (t, env, k); no entropy.
Settings: ``DPPOConfig`` (baselines/config.py).
"""
from __future__ import annotations

import torch

from baselines.config import DPPOConfig
from gorl.core.gaussian_policy import clip_fraction, clipped_surrogate
from gorl.core.onpolicy import OnPolicyTrainer
from gorl.core.run import Run
from gorl.generative import FlowPolicy, gaussian_step_logprob, time_grid


class DPPOAgent(FlowPolicy):
    jax_rule = "flow_sde"
    """How gorl/core/jax_rollout.py translates this agent's act (the scan rollout on playground: tasks)."""

    def __init__(self, cfg: DPPOConfig, obs_dim: int, act_dim: int):
        super().__init__(obs_dim, act_dim, cfg.actor_hidden, output_scale=cfg.output_scale,
                         flow_steps=cfg.flow_steps, noise_std=cfg.noise_std, eval_mode=cfg.eval_mode)
        self.clip_eps = cfg.clip_eps

    def act(self, obs_norm, obs_raw):
        x0, chain, means = self.sample(obs_norm, self._noise(obs_norm, obs_norm.shape[0]), return_chain=True)
        logp = gaussian_step_logprob(chain[1:], means, self.noise_std)        # (K, B)
        return x0, {"chain": chain.transpose(0, 1), "logp": logp.transpose(0, 1)}  # (B, K+1, d_a), (B, K)

    def step_logprob(self, obs_norm: torch.Tensor, chain: torch.Tensor) -> torch.Tensor:
        """log p(x_{k+1} | x_k, s) for all K steps in one network call: (..., K+1, d_a) -> (..., K)."""
        K = self.flow_steps
        x_k = chain[..., :-1, :]
        mean = x_k - (1.0 / K) * self.net(obs_norm.unsqueeze(-2), x_k, time_grid(K, chain.device))
        return gaussian_step_logprob(chain[..., 1:, :], mean, self.noise_std)

    def policy_loss(self, obs_norm, stored, advantages):
        logp = self.step_logprob(obs_norm, stored["chain"])
        ratio = torch.exp(logp - stored["logp"])            # (T, B, K); no clip before the exp
        surrogate = clipped_surrogate(ratio, advantages, self.clip_eps)
        return surrogate, {"surrogate": surrogate, "step_logp": logp.mean(),
                           "ratio_mean": ratio.mean().detach(),
                           "clip_frac": clip_fraction(ratio, self.clip_eps)}


def make_agent(cfg: DPPOConfig, obs_dim: int, act_dim: int) -> DPPOAgent:
    return DPPOAgent(cfg, obs_dim, act_dim)


def train(cfg: DPPOConfig, run: Run) -> OnPolicyTrainer:
    from gorl.core.loop import run_single_trainer
    return run_single_trainer(cfg, run, make_agent)
