"""Diffusion (epsilon prediction, deterministic DDIM) for GoRL's diffusion decoder (spec 6.5).

Two forms: v1's (a cosine abar over indices 0..T-1, epsilon prediction, T-1 DDIM steps) and
the 2026 release's (``linear_alpha_bar`` over t in [0, 1] and the identity-centred
``epsilon_delta`` parameterisation: T steps x <- x + c_k net(obs, x, t_k), so an all-zero
network is the identity map exactly)."""
from __future__ import annotations

import math

import torch

from gorl.generative.flow import _mc_align
from gorl.generative.networks import ConditionalMLP


def cosine_alpha_bar(T: int = 10, s: float = 0.008) -> torch.Tensor:
    """abar[i] = f(i) / f(0), f(i) = cos(((i/T) + s)/(1 + s) pi/2)^2, i = 0..T-1 (abar[0] = 1)."""
    i = torch.arange(T + 1, dtype=torch.float64)
    f = torch.cos(((i / T) + s) / (1 + s) * math.pi / 2) ** 2
    return (f / f[0])[:T].float()


def linear_alpha_bar(T: int = 10, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """abar = cumprod(1 - beta), beta linear from beta_start to beta_end over T steps
    (the stage-0 identity diffusion decoder's schedule; abar[T-1] = 0.9037 for T = 10)."""
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return torch.cumprod(1.0 - betas, 0).float()


def eps_prediction_loss(net: ConditionalMLP, obs_norm: torch.Tensor, a: torch.Tensor, eps: torch.Tensor,
                        i: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """Per-sample epsilon-prediction loss, mean over action dims.

    i: integer step indices (shape of t in :func:`cfm_loss`), the network's time input is
    i / T. x_i = sqrt(abar[i]) a + sqrt(1 - abar[i]) eps; l = mean (eps_hat - eps)^2.
    Shapes as :func:`gorl.generative.flow.cfm_loss` (optional trailing MC dim).
    """
    obs_norm, a = _mc_align(obs_norm, a, eps)
    alpha_bar = alpha_bar.to(a.device)
    ab = alpha_bar[i].unsqueeze(-1)
    x_i = ab.sqrt() * a + (1.0 - ab).sqrt() * eps
    eps_hat = net(obs_norm, x_i, i.to(a.dtype) / alpha_bar.shape[0])
    return (eps_hat - eps).pow(2).mean(-1)


def ddim_coefficients(alpha_bar: torch.Tensor) -> list[tuple[int, float, float]]:
    """(i, a_i, b_i) for the deterministic DDIM steps i = T-1, ..., 1, each x <- a_i x + b_i eps_hat(x, i).

    From x0_hat = (x - sqrt(1 - abar[i]) eps_hat) / sqrt(abar[i]) and
    x <- sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat, abar_prev = abar[i-1], forced
    to 1 at the final index 0 (spec 6.5): a_i = sqrt(abar_prev / abar[i]),
    b_i = sqrt(1 - abar_prev) - a_i sqrt(1 - abar[i]).
    """
    ab = [float(v) for v in alpha_bar]
    coefs = []
    for i in range(len(ab) - 1, 0, -1):
        prev = 1.0 if i == 1 else ab[i - 1]
        a = math.sqrt(prev) / math.sqrt(ab[i])
        coefs.append((i, a, math.sqrt(1.0 - prev) - a * math.sqrt(1.0 - ab[i])))
    return coefs


def _ddim_constants(net: ConditionalMLP, alpha_bar: torch.Tensor, device: torch.device) -> tuple:
    """Parameter-derived constants of :func:`ddim_sample` (cached like the Euler sampler's).

    With eps_hat = h W_out^T + b_out, write x_n = y_n + c_n, c_0 = 0, c_{n+1} = a c_n + b b_out:
    then y_{n+1} = a y_n + h (b W_out)^T, and the first layer sees W_x x_n = W_x y_n + W_x c_n,
    whose second part joins the step's time share. Returns W_x^T, the per-step first-layer
    shares (n, h), the per-step (b W_out)^T and a, c_final, and the hidden layers' (W^T, b).
    """
    def build() -> tuple:
        coefs = ddim_coefficients(alpha_bar)
        T = alpha_bar.shape[0]
        w_x = net.x_weight
        w_out, b_out = net.output_layer()
        t_cond = net.time_condition(torch.arange(T, device=device, dtype=torch.float32) / T)  # (T, h)
        c = torch.zeros_like(b_out)
        shares, outs = [], []
        for i, a, b in coefs:
            shares.append(t_cond[i] + w_x @ c)
            outs.append((b * w_out).t())
            c = a * c + b * b_out
        return w_x.t(), torch.stack(shares), outs, [a for _, a, _ in coefs], c, net.hidden_layers_t()
    key = (device, alpha_bar.data_ptr(), alpha_bar._version, alpha_bar.shape[0])
    return net.sampler_constants("ddim", key, build)


def ddim_sample(net: ConditionalMLP, obs_norm: torch.Tensor, xT: torch.Tensor,
                alpha_bar: torch.Tensor) -> torch.Tensor:
    """Deterministic DDIM (eta = 0) over indices T-1 -> ... -> 0 (T-1 network calls at
    i = T-1..1), abar at the final target index 0 forced to 1 (spec 6.5).

    The decoder's sampling hot path: each step is x <- a_i x + b_i eps_hat (see
    :func:`ddim_coefficients`), computed as one addmm for the first layer, the hidden layers,
    and one addmm that scales and updates x (:func:`_ddim_constants`). obs_norm (..., d_o)
    broadcasts against xT (..., d_a). tests/test_gorl.py checks it against the plain loop.
    """
    lead, d_a = xT.shape[:-1], xT.shape[-1]
    w_x_t, shares, outs, gains, c_final, layers_t = _ddim_constants(net, alpha_bar, xT.device)
    hidden = w_x_t.shape[1]
    cond = net.condition(obs_norm).expand(*lead, hidden).reshape(-1, hidden)
    pre = (cond + shares.unsqueeze(1)).unbind(0)
    y = xT.reshape(-1, d_a)
    for step, gain in enumerate(gains):
        h = net.features(torch.addmm(pre[step], y, w_x_t), layers_t)
        y = torch.addmm(y, h, outs[step], beta=gain)
    return (y + c_final).reshape(xT.shape)


def ddim_sample_zero_network(xT: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    """:func:`ddim_sample` of an all-zero network (eps_hat = 0) without evaluating it:
    x <- a_i x per step, i.e. xT / sqrt(abar[T-1]) (GoRL's stage-0 diffusion decoder)."""
    x = xT
    for _, a, _ in ddim_coefficients(alpha_bar):
        x = x * a
    return x


# -- the release's form: linear abar(t), identity-centred epsilon-delta -------------------
ALPHA_MIN, ALPHA_MAX = 1e-3, 1.0  # the release's DecoderTrainingConfig defaults (diffusion_alpha_min/max)


def linear_alpha_bar_t(t: torch.Tensor | float, alpha_min: float = ALPHA_MIN,
                       alpha_max: float = ALPHA_MAX) -> torch.Tensor | float:
    """abar(t) = alpha_min + (alpha_max - alpha_min) (1 - t), t in [0, 1] (t = 1 is noise); a
    tensor or a Python float."""
    return alpha_min + (alpha_max - alpha_min) * (1.0 - t)


def delta_coefficients(t: torch.Tensor, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(r, c) of the DDIM step from t to max(t - 1/steps, 0): r = sqrt(abar_next / abar_t),
    c = sqrt(1 - abar_next) - r sqrt(1 - abar_t). A DDIM step r x + c eps equals
    x + c (eps - ((1 - r) / c) x): the network predicts that epsilon delta."""
    t = t.double()
    ab_t, ab_n = linear_alpha_bar_t(t), linear_alpha_bar_t((t - 1.0 / steps).clamp_min(0.0))
    r = (ab_n / ab_t).sqrt()
    return r, (1.0 - ab_n).sqrt() - r * (1.0 - ab_t).sqrt()


def delta_ddim_sample(net: ConditionalMLP, obs_norm: torch.Tensor, z: torch.Tensor, steps: int) -> torch.Tensor:
    """The release's deterministic sampler: from z at t = 1, for t_k = 1, 1 - 1/T, ..., 1/T,
    x <- x + c_k net(obs, x, t_k) (:func:`delta_coefficients`). obs_norm broadcasts against z."""
    t_shares, c = _delta_constants(net, steps, z.device)
    cond = net.condition(obs_norm)
    x = z
    for t_share, c_k in zip(t_shares, c):
        x = x + c_k * net.from_condition_t(cond + t_share, x)
    return x


def _delta_constants(net: ConditionalMLP, steps: int, device: torch.device) -> tuple:
    """Per-step constants of :func:`delta_ddim_sample`: the first layer's time share at each
    t_k and the step sizes c_k (floats); cached like the other samplers' while the network is
    unchanged. Each share is computed as ``net.from_condition(cond, x, t_k)`` computes it (one
    scalar t at a time), so the cached sampler gives the same floats as the uncached one."""
    def build() -> tuple:
        t, c = delta_schedule(steps)
        return [net.time_condition(t_k, device) for t_k in t], c
    return net.sampler_constants("delta_ddim", (steps, device), build)


def delta_schedule(steps: int) -> tuple[list[float], list[float]]:
    """The times t_k = 1, 1 - 1/T, ..., 1/T of :func:`delta_ddim_sample` and its step sizes c_k
    (:func:`delta_coefficients`'s arithmetic in Python floats: constants to torch.compile, where
    tensors and ``tolist`` would break the graph; math.sqrt rounds correctly, torch's CPU sqrt at
    times one float64 ulp apart), also the JAX translation's schedule."""
    t = [k / steps for k in range(steps, 0, -1)]
    c = []
    for t_k in t:
        ab_t, ab_n = linear_alpha_bar_t(t_k), linear_alpha_bar_t(max(t_k - 1.0 / steps, 0.0))
        r = math.sqrt(ab_n / ab_t)
        c.append(math.sqrt(1.0 - ab_n) - r * math.sqrt(1.0 - ab_t))
    return t, c


def eps_delta_loss(net: ConditionalMLP, obs_norm: torch.Tensor, a: torch.Tensor, eps: torch.Tensor,
                   i: torch.Tensor, steps: int) -> torch.Tensor:
    """Per-sample loss of the epsilon-delta parameterisation, mean over action dims.

    i: integer indices in 1..T (shape of t in :func:`gorl.generative.flow.cfm_loss`), t = i / T;
    x_t = sqrt(abar_t) a + sqrt(1 - abar_t) eps; target eps - ((1 - r) / c) x_t."""
    obs_norm, a = _mc_align(obs_norm, a, eps)
    t = i.to(torch.float64) / steps
    r, c = delta_coefficients(t, steps)
    ab = linear_alpha_bar_t(t)
    ab, r, c = (v.to(a.dtype).unsqueeze(-1) for v in (ab, r, c))
    x_t = ab.sqrt() * a + (1.0 - ab).sqrt() * eps
    target = eps - (1.0 - r) / c * x_t
    return (net(obs_norm, x_t, t.to(a.dtype)) - target).pow(2).mean(-1)
