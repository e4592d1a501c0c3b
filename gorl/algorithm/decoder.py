"""GoRL's generative decoder a = g(s, z) and its supervised fit (spec 6.4-6.6).

The decoder runs the flow-matching ODE (10 Euler steps) or the deterministic DDIM chain
(9 network calls) *starting from the encoder's latent z* instead of a fresh N(0, I)
draw, so it is a deterministic map. It is fitted by plain supervised regression from
the fixed prior N(0, I) to collected pre-actions; the encoder's latent plays no role in
the fit. It carries its own frozen observation statistics (computed once from its
training data) so that it is independent of the encoder's running statistics.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gorl.generative import (ConditionalMLP, cfm_loss, cosine_alpha_bar, ddim_sample, ddim_sample_zero_network,
                             eps_prediction_loss, euler_sample, linear_alpha_bar)

DECODER_KINDS = ("fm", "diffusion")


class Decoder(nn.Module):
    """g(s, z): ``kind`` 'fm' (Euler ODE from t = 1 to 0) or 'diffusion' (DDIM from index T-1)."""

    def __init__(self, kind: str, obs_dim: int, act_dim: int, hidden: list[int], steps: int = 10,
                 identity: bool = False):
        super().__init__()
        if kind not in DECODER_KINDS:
            raise ValueError(f"decoder kind must be one of {DECODER_KINDS}, got {kind!r}")
        self.kind, self.steps, self.identity_init = kind, steps, identity
        self.net = ConditionalMLP(obs_dim, act_dim, hidden, zero_init=identity)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        # stage 0's "identity" diffusion decoder uses the linear schedule (spec 6.5): with a
        # zero network the DDIM chain returns z / sqrt(abar[T-1]) = 1.052 z for T = 10
        schedule = linear_alpha_bar(steps) if identity else cosine_alpha_bar(steps)
        self.register_buffer("alpha_bar", schedule)
        for p in self.parameters():
            p.requires_grad_(False)
        self.sampling_time = 0.0
        """Seconds spent decoding (read by the throughput benchmark). On a GPU this times the
        launches, not the work, unless ``sync_timing`` (a synchronisation after each call)."""
        self.sync_timing = False

    @classmethod
    def identity(cls, kind: str, obs_dim: int, act_dim: int, hidden: list[int], steps: int = 10) -> "Decoder":
        """All weights and biases zero (spec 6.6): FM returns z, diffusion 1.052 z."""
        return cls(kind, obs_dim, act_dim, hidden, steps, identity=True)

    def normalize(self, obs_raw: torch.Tensor) -> torch.Tensor:
        return (obs_raw - self.obs_mean) / (self.obs_std + 1e-8)

    @torch.no_grad()
    def forward(self, obs_raw: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        obs_norm = self.normalize(obs_raw)
        if self.kind == "fm":  # x + dt * 0 at every step: the identity decoder returns z
            out = z.clone() if self.identity_init else euler_sample(self.net, obs_norm, z, self.steps)
        else:
            out = ddim_sample_zero_network(z, self.alpha_bar) if self.identity_init else \
                ddim_sample(self.net, obs_norm, z, self.alpha_bar)
        if self.sync_timing and out.is_cuda:
            torch.cuda.synchronize(out.device)
        self.sampling_time += time.perf_counter() - t0
        return out

    def loss(self, obs_norm: torch.Tensor, actions: torch.Tensor, eps: torch.Tensor,
             t_or_i: torch.Tensor) -> torch.Tensor:
        """Mean regression loss: CFM velocity (fm) or epsilon prediction (diffusion)."""
        if self.kind == "fm":
            return cfm_loss(self.net, obs_norm, actions, eps, t_or_i, "velocity").mean()
        return eps_prediction_loss(self.net, obs_norm, actions, eps, t_or_i, self.alpha_bar).mean()

    def draw_noise(self, n: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """k (eps, t) pairs per action: t ~ U(0, 1) (fm) or i ~ U{0..T-1} (diffusion)."""
        dev = self.obs_mean.device
        eps = torch.randn(n, k, self.net.act_dim, generator=gen, device=dev)
        if self.kind == "fm":
            return eps, torch.rand(n, k, generator=gen, device=dev)
        return eps, torch.randint(self.alpha_bar.shape[0], (n, k), generator=gen, device=dev)


@dataclass
class DecoderFitConfig:
    hidden: list[int]
    steps: int
    learning_rate: float
    batch_size: int
    max_epochs: int
    patience: int
    mc_samples: int
    max_samples: int
    val_fraction: float
    max_val_batches: int


def fit_decoder(kind: str, obs: np.ndarray, actions: np.ndarray, cfg: DecoderFitConfig, seed: int,
                device: torch.device) -> tuple[Decoder, list[dict]]:
    """Train a fresh decoder on (obs, pre-action) rows (spec 6.4 / 6.5).

    Subsample to ``max_samples`` rows, 90/10 split by transition, frozen observation
    statistics from the training split, Adam, epochs of floor(n_train / batch) steps over
    a fresh permutation, validation on one fixed (eps, t) draw per epoch, keep the
    parameters with the lowest validation loss, stop after ``patience`` epochs without
    improvement. Deterministic given ``seed``. Returns (decoder, per-epoch history).
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = obs.shape[0]
    if n > cfg.max_samples:
        keep = torch.randperm(n, generator=gen)[:cfg.max_samples].numpy()
        obs, actions = obs[keep], actions[keep]
        n = cfg.max_samples
    perm = torch.randperm(n, generator=gen).numpy()
    n_val = max(1, int(round(n * cfg.val_fraction)))
    val_idx, train_idx = perm[:n_val], perm[n_val:]
    o_tr = torch.as_tensor(obs[train_idx], device=device)
    a_tr = torch.as_tensor(actions[train_idx], device=device)
    o_va = torch.as_tensor(obs[val_idx], device=device)
    a_va = torch.as_tensor(actions[val_idx], device=device)

    torch.manual_seed(seed)  # network init
    dec = Decoder(kind, obs.shape[1], actions.shape[1], cfg.hidden, cfg.steps).to(device)
    dec.obs_mean.copy_(o_tr.mean(0))
    dec.obs_std.copy_(o_tr.var(0, unbiased=False).clamp_min(1e-12).sqrt())
    on_tr, on_va = dec.normalize(o_tr), dec.normalize(o_va)
    params = list(dec.net.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=cfg.learning_rate)

    n_tr = o_tr.shape[0]
    batch = min(cfg.batch_size, n_tr)
    steps_per_epoch = max(1, n_tr // batch)
    val_batch = min(cfg.batch_size, n_val)
    val_batches = max(1, min(cfg.max_val_batches, n_val // val_batch))
    gen_dev = gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed)

    best, best_state, since_best, history = math.inf, None, 0, []
    for epoch in range(cfg.max_epochs):
        order = torch.randperm(n_tr, generator=gen).to(device)
        total = torch.zeros((), dtype=torch.float64, device=device)  # read once per epoch: no sync per step
        for s in range(steps_per_epoch):
            idx = order[s * batch:(s + 1) * batch]
            eps, t = dec.draw_noise(idx.shape[0], cfg.mc_samples, gen_dev)
            loss = dec.loss(on_tr[idx], a_tr[idx], eps, t)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.detach().double()
        total = float(total)
        with torch.no_grad():
            val = torch.zeros((), dtype=torch.float64, device=device)
            eps, t = dec.draw_noise(val_batch, cfg.mc_samples, gen_dev)  # one fixed draw per epoch
            for b in range(val_batches):
                sl = slice(b * val_batch, (b + 1) * val_batch)
                val += dec.loss(on_va[sl], a_va[sl], eps[:on_va[sl].shape[0]], t[:on_va[sl].shape[0]]).double()
            val = float(val) / val_batches
        history.append({"epoch": epoch, "train_loss": total / steps_per_epoch, "val_loss": val})
        if not (math.isfinite(val) and math.isfinite(total)):
            break
        if val < best:
            best, since_best = val, 0
            best_state = {k: v.detach().clone() for k, v in dec.state_dict().items()}
        else:
            since_best += 1
            if since_best >= cfg.patience:
                break
    if best_state is not None:
        dec.load_state_dict(best_state)
    for p in params:
        p.requires_grad_(False)
    return dec, history
