"""Generative building blocks shared by FPO, DPPO and GoRL's decoders (spec 4, 5, 6.4-6.6).

Everything is vectorised over leading dims (batch, MC samples, denoising steps); the
only Python loops are over integration/denoising steps.
"""
from gorl.generative.diffusion import (cosine_alpha_bar, ddim_sample, ddim_sample_zero_network, delta_ddim_sample,
                                      eps_delta_loss, eps_prediction_loss, linear_alpha_bar)
from gorl.generative.flow import cfm_loss, euler_sample, gaussian_step_logprob, grid_time, time_grid
from gorl.generative.networks import ConditionalMLP, sinusoidal_embedding
from gorl.generative.policy import EVAL_MODES, FlowPolicy

__all__ = ["ConditionalMLP", "sinusoidal_embedding", "euler_sample", "cfm_loss", "time_grid", "grid_time",
           "gaussian_step_logprob", "cosine_alpha_bar", "linear_alpha_bar", "eps_prediction_loss",
           "ddim_sample", "ddim_sample_zero_network", "delta_ddim_sample", "eps_delta_loss", "FlowPolicy", "EVAL_MODES"]
