"""GoRL's generative decoder a = g(s, z) and its supervised fit (spec 6.4-6.6).

The decoder runs the flow-matching ODE (10 Euler steps) or the deterministic DDIM chain
(9 network calls) *starting from the encoder's latent z* instead of a fresh N(0, I)
draw, so it is a deterministic map. It is fitted by plain supervised regression from
the fixed prior N(0, I) to collected pre-actions; the encoder's latent plays no role in
the fit. It carries its own frozen observation statistics (computed once from its
training data) so that it is independent of the encoder's running statistics.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import torch
from torch import nn

from gorl.algorithm.config import DECODER_KINDS, DIFFUSION_FORMS, IDENTITY_KINDS, DecoderFitConfig
from gorl.core import compiled
from gorl.generative import (ConditionalMLP, cfm_loss, cosine_alpha_bar, ddim_sample, ddim_sample_zero_network,
                             delta_ddim_sample, eps_delta_loss, eps_prediction_loss, euler_sample, linear_alpha_bar)


def bounded_action(action: torch.Tensor) -> torch.Tensor:
    """The env action of a bounded-semantics decoder output (``action_semantics`` 'bounded', spec
    14): clipped to [-1, 1]."""
    return action.clamp(-1.0, 1.0)


class Decoder(nn.Module):
    """g(s, z): ``kind`` 'fm' (Euler ODE from t = 1 to 0) or 'diffusion' (DDIM, ``diffusion_form``).

    ``identity`` (stage 0): False, or one of :data:`IDENTITY_KINDS`."""

    def __init__(self, kind: str, obs_dim: int, act_dim: int, hidden: list[int], steps: int = 10,
                 identity: bool | str = False, output_scale: float = 1.0, zero_init_last: bool = False,
                 diffusion_form: str = "v1"):
        super().__init__()
        if kind not in DECODER_KINDS:
            raise ValueError(f"decoder kind must be one of {DECODER_KINDS}, got {kind!r}")
        if diffusion_form not in DIFFUSION_FORMS:
            raise ValueError(f"diffusion_form must be one of {DIFFUSION_FORMS}, got {diffusion_form!r}")
        identity = "zero_network" if identity is True else identity
        if identity and identity not in IDENTITY_KINDS:
            raise ValueError(f"identity must be one of {IDENTITY_KINDS}, got {identity!r}")
        self.kind, self.steps, self.identity_init, self.diffusion_form = kind, steps, identity, diffusion_form
        self.hidden = [int(h) for h in hidden]
        self.net = ConditionalMLP(obs_dim, act_dim, hidden, output_scale=output_scale, zero_init=bool(identity))
        if zero_init_last:
            self.net.zero_last_()
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
    def identity(cls, kind: str, obs_dim: int, act_dim: int, hidden: list[int], steps: int = 10,
                 how: str = "zero_network") -> "Decoder":
        """Stage 0's decoder: all weights and biases zero (spec 6.6), and with ``how`` 'exact'
        the map z -> z itself (FM returns z either way; v1's diffusion chain 1.052 z)."""
        return cls(kind, obs_dim, act_dim, hidden, steps, identity=how)

    def to_plain(self) -> dict:
        """The decoder as tensors and plain data, everything needed to rebuild it (the format of
        ``stages/stage<k>/decoder.pt`` and of GoRL's policy files; read with ``weights_only=True``)."""
        return {"kind": self.kind, "identity": self.identity_init or False, "hidden": list(self.hidden),
                "steps": self.steps, "output_scale": self.net.output_scale, "diffusion_form": self.diffusion_form,
                "state": {k: v.detach().cpu().clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_plain(cls, st: dict, obs_dim: int, act_dim: int, cfg=None) -> "Decoder":
        """The decoder :meth:`to_plain` wrote; a file from before those keys were written takes
        them from the run's config ``cfg`` (``decoder_hidden``, ``decoder_steps``)."""
        def get(key, cfg_key, default):
            return st[key] if key in st else getattr(cfg, cfg_key, default)
        identity = st.get("identity", False)
        dec = cls(st["kind"], obs_dim, act_dim, get("hidden", "decoder_hidden", None), get("steps", "decoder_steps", 10),
                  identity=st.get("identity_how", "zero_network") if identity is True else identity,
                  output_scale=get("output_scale", "decoder_output_scale", 1.0),
                  diffusion_form=st.get("diffusion_form", "v1"))
        dec.load_state_dict(st["state"])
        return dec

    def normalize(self, obs_raw: torch.Tensor) -> torch.Tensor:
        return (obs_raw - self.obs_mean) / (self.obs_std + 1e-8)

    @torch.no_grad()
    def forward(self, obs_raw: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        t0 = time.perf_counter()
        if self.identity_init:  # FM: x + dt * 0 at every step returns z; v1 diffusion: 1.052 z
            exact = self.kind == "fm" or self.identity_init == "exact"
            out = z.clone() if exact else ddim_sample_zero_network(z, self.alpha_bar)
        else:
            out = self.decode_normalized(self.normalize(obs_raw), z)
        if self.sync_timing and out.is_cuda:
            torch.cuda.synchronize(out.device)
        self.sampling_time += time.perf_counter() - t0
        return out

    def forward_bounded_latent(self, obs_raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The decoder of a bounded latent (``latent_bounded``, spec 14): it receives tanh of the
        encoder's Gaussian sample x."""
        return self(obs_raw, torch.tanh(x))

    def decode_normalized(self, obs_norm: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The fitted decoder's sampler on normalised observations (differentiable under
        autograd: the release's pairwise loss trains through it)."""
        if self.kind == "fm":
            return euler_sample(self.net, obs_norm, z, self.steps)
        if self.diffusion_form == "release":
            return delta_ddim_sample(self.net, obs_norm, z, self.steps)
        return ddim_sample(self.net, obs_norm, z, self.alpha_bar)

    def loss(self, obs_norm: torch.Tensor, actions: torch.Tensor, eps: torch.Tensor,
             t_or_i: torch.Tensor) -> torch.Tensor:
        """Mean regression loss: CFM velocity (fm), epsilon prediction (v1 diffusion) or
        epsilon delta (release diffusion)."""
        if self.kind == "fm":
            return cfm_loss(self.net, obs_norm, actions, eps, t_or_i, "velocity").mean()
        if self.diffusion_form == "release":
            return eps_delta_loss(self.net, obs_norm, actions, eps, t_or_i, self.steps).mean()
        return eps_prediction_loss(self.net, obs_norm, actions, eps, t_or_i, self.alpha_bar).mean()

    def draw_noise(self, n: int, k: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """k (eps, t) pairs per action: t ~ U(0, 1) (fm), i ~ U{0..T-1} (v1 diffusion) or
        i ~ U{1..T} (release diffusion)."""
        dev = self.obs_mean.device
        eps = torch.randn(n, k, self.net.act_dim, generator=gen, device=dev)
        if self.kind == "fm":
            return eps, torch.rand(n, k, generator=gen, device=dev)
        if self.diffusion_form == "release":
            return eps, torch.randint(1, self.steps + 1, (n, k), generator=gen, device=dev)
        return eps, torch.randint(self.alpha_bar.shape[0], (n, k), generator=gen, device=dev)


ENDPOINT_EVAL_SIZE = 4096  # the release's endpoint_eval_size (validation rows decoded from z ~ N(0, I))


def split_rows(n: int, val_fraction: float, gen: torch.Generator, episode: np.ndarray | None = None,
               by: str = "transition") -> tuple[np.ndarray, np.ndarray]:
    """(train rows, validation rows). 'transition': a random ``val_fraction`` of the rows (at
    least one); 'episode': a random max(1, int(E val_fraction)) of the E episodes (at most E - 1),
    all their rows, so no episode is on both sides."""
    if by == "episode":
        ids = np.unique(episode)
        if ids.size < 2:
            raise ValueError(f"a split by episode needs at least two episodes, got {ids.size}")
        n_val = min(max(1, int(ids.size * val_fraction)), ids.size - 1)
        val_ids = ids[torch.randperm(ids.size, generator=gen).numpy()[:n_val]]
        val = np.isin(episode, val_ids)
        return np.flatnonzero(~val), np.flatnonzero(val)
    perm = torch.randperm(n, generator=gen).numpy()
    n_val = max(1, int(round(n * val_fraction)))
    return perm[n_val:], perm[:n_val]


def fit_decoder(kind: str, obs: np.ndarray, actions: np.ndarray, cfg: DecoderFitConfig, seed: int,
                device: torch.device, episode: np.ndarray | None = None,
                latent: np.ndarray | None = None, init: Decoder | None = None, obs_stats: str = "fit",
                prior_rows: int = 0, compile_backend: str = "inductor",
                log=lambda msg: None) -> tuple[Decoder, list[dict]]:
    """Train a fresh decoder on (obs, pre-action) rows (spec 6.4 / 6.5).

    Subsample to ``max_samples`` rows, clip the targets (``target_clip``), split (``split``;
    ``episode``: each row's episode id), frozen observation statistics from the training split,
    Adam, then ``cfg.schedule`` (see :class:`DecoderFitConfig`); keep the parameters with the
    lowest ``checkpoint_metric``. ``latent``: each row's stored z (``pairwise_weight``).
    Deterministic given ``seed``. Returns (decoder, history: one row per validation, with the
    fit's seconds so far, ``wall_s``). ``cfg.compiled``: the optimiser step compiled by
    ``compile_backend`` (tests: 'aot_eager'). ``cfg.captured`` (CUDA): runs of
    steps between validations (the release's schedule) or each epoch (the epochs schedule) as one CUDA
    graph; ``log`` says where a capture fails.

    ``init`` (a warm fit, spec 14): start from a copy of that decoder's network; its statistics
    are kept (``obs_stats`` 'frozen'), pooled with the training split's as if over
    ``prior_rows`` earlier rows plus these ('cumulative'), or replaced ('fit').
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    n = obs.shape[0]
    if n > cfg.max_samples:
        keep = torch.randperm(n, generator=gen)[:cfg.max_samples].numpy()
        obs, actions = obs[keep], actions[keep]
        episode = None if episode is None else episode[keep]
        latent = None if latent is None else latent[keep]
        n = cfg.max_samples
    if cfg.target_clip is not None:
        actions = np.clip(actions, -cfg.target_clip, cfg.target_clip)
    if cfg.pairwise_weight > 0 and latent is None:
        raise ValueError("pairwise_weight > 0 needs each row's latent")
    train_idx, val_idx = split_rows(n, cfg.val_fraction, gen, episode, cfg.split)
    o_tr = torch.as_tensor(obs[train_idx], device=device)
    a_tr = torch.as_tensor(actions[train_idx], device=device)
    o_va = torch.as_tensor(obs[val_idx], device=device)
    a_va = torch.as_tensor(actions[val_idx], device=device)
    z_tr = z_va = None
    if cfg.pairwise_weight > 0:
        z_tr, z_va = (torch.as_tensor(latent[i], device=device) for i in (train_idx, val_idx))

    torch.manual_seed(seed)  # network init
    dec = Decoder(kind, obs.shape[1], actions.shape[1], cfg.hidden, cfg.steps, output_scale=cfg.output_scale,
                  zero_init_last=cfg.zero_init_last, diffusion_form=cfg.diffusion_form).to(device)
    mean, var = o_tr.mean(0), o_tr.var(0, unbiased=False)
    if init is not None:
        dec.net.load_state_dict(init.net.state_dict())
        old_mean, old_var = init.obs_mean.to(device), init.obs_std.to(device).pow(2)
        if obs_stats == "frozen":
            mean, var = old_mean, old_var
        elif obs_stats == "cumulative" and prior_rows > 0:  # pooled mean and variance
            n0, n1 = float(prior_rows), float(o_tr.shape[0])
            pooled = (n0 * old_mean + n1 * mean) / (n0 + n1)
            var = (n0 * (old_var + (old_mean - pooled).pow(2)) + n1 * (var + (mean - pooled).pow(2))) / (n0 + n1)
            mean = pooled
    dec.obs_mean.copy_(mean)
    dec.obs_std.copy_(var.clamp_min(1e-12).sqrt())
    on_tr, on_va = dec.normalize(o_tr), dec.normalize(o_va)
    params = list(dec.net.parameters())
    for p in params:
        p.requires_grad_(True)
    gen_dev = gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed)
    captured = cfg.captured and gen_dev is not gen  # where the noise has its own generator
    opt = torch.optim.Adam(params, lr=cfg.learning_rate, **compiled.adam_options(device, cfg.compiled, captured))

    def batch_loss(o_n: torch.Tensor, a: torch.Tensor, z: torch.Tensor | None, eps, t) -> torch.Tensor:
        loss = dec.loss(o_n, a, eps, t)
        if cfg.pairwise_weight > 0:
            loss = loss + cfg.pairwise_weight * (dec.decode_normalized(o_n, z) - a).pow(2).mean()
        return loss

    optimise = train_step(params, opt, batch_loss, device, compile_backend if cfg.compiled else None,
                          graphs=not captured)
    if cfg.schedule == "steps":
        history = _fit_steps(dec, optimise, batch_loss, (on_tr, a_tr, z_tr), (on_va, a_va, z_va),
                             dataclasses.replace(cfg, captured=captured), gen, gen_dev, device, log=log)
    else:
        history = _fit_epochs(dec, optimise, batch_loss, (on_tr, a_tr, z_tr), (on_va, a_va, z_va),
                              dataclasses.replace(cfg, captured=captured), gen, gen_dev, device, log=log)
    for p in params:
        p.requires_grad_(False)
    return dec, history


def train_step(params: list[torch.Tensor], opt: torch.optim.Optimizer, batch_loss, device: torch.device,
               backend: str | None = None, graphs: bool = True):
    """The fit's optimiser step ``optimise(o_n, a, z, eps, t) -> loss`` (detached): ``batch_loss``,
    backward, Adam. ``backend``: compiled by it (:mod:`gorl.core.compiled`; on CUDA the loss lives
    in the CUDA graph's memory until the next step); None: eager. The rows are gathered before
    the call: a CUDA graph copies its inputs, and the whole training set would be one.
    ``graphs=False``: no CUDA graphs of its own (a captured run of steps holds its kernels)."""
    def step(o_n, a, z, eps, t) -> torch.Tensor:
        loss = batch_loss(o_n, a, z, eps, t)
        for p in params:  # zero_grad(set_to_none=True), which torch.compile would not trace
            p.grad = None
        loss.backward()
        opt.step()
        return loss.detach()

    if backend is None:
        return step
    run = compiled.compile_step(step, device, backend, graphs)
    if not graphs:
        return run

    def compiled_step(*args) -> torch.Tensor:
        compiled.step_begin(device, backend)
        return run(*args)
    return compiled_step


class _CapturedSteps:
    """A run of fit steps as one :class:`compiled.Captured` loop: static rows (n, B) and the n
    steps' (eps, t) it reads; the last step's loss and the float64 sum of the n losses (summed in
    the order the uncaptured epoch sums them) in static tensors."""

    def __init__(self, optimise, train: tuple, rows: torch.Tensor, noise: list[tuple], device, log):
        self.inputs = compiled.static_copy((rows, noise))
        self.loss = torch.zeros((), device=device)
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        on_tr, a_tr, z_tr = train

        def steps() -> None:
            rows, noise = self.inputs
            self.total.zero_()
            for idx, (eps, t) in zip(rows, noise):
                loss = optimise(on_tr[idx], a_tr[idx], None if z_tr is None else z_tr[idx], eps, t)
                self.total += loss.double()
            self.loss.copy_(loss)
        self.run = compiled.Captured(steps, device, log)

    def __call__(self, rows: torch.Tensor, noise: list[tuple]) -> tuple[torch.Tensor, torch.Tensor]:
        """(last loss, sum of the losses) of the steps on these rows and noise (copied in; the first
        call's are its own already)."""
        if self.run.calls:
            compiled.copy_into(self.inputs, (rows, noise))
        self.run()
        return self.loss, self.total


def _fit_epochs(dec, optimise, batch_loss, train, val, cfg: DecoderFitConfig, gen, gen_dev, device,
                log=lambda msg: None) -> list[dict]:
    """v1 (and the release's humanoid profile): epochs of floor(n_train / batch) steps over a fresh
    permutation, validation on one fixed (eps, t) draw per epoch, early stopping after ``patience``
    epochs without a better loss. ``cfg.captured`` (the noise from a generator of its own): each
    epoch's steps as one captured CUDA graph (:class:`_CapturedSteps`; epoch 0 warms it up, epoch 1
    captures it, later epochs replay it), the epoch's noise drawn ahead, step by step, into the
    tensors it reads (the same numbers: nothing else draws from that generator during an epoch's
    steps). ``log``: where a failed capture is said."""
    if cfg.captured and gen_dev is gen:
        # (the epoch's rows are drawn before its noise, so one generator would give the same numbers
        # too; the captured fit keeps the step schedule's precondition, which fit_decoder meets on CUDA)
        raise ValueError("a captured fit draws its noise ahead from a generator of its own (the device's)")
    on_tr, a_tr, z_tr = train
    on_va, a_va, z_va = val
    n_tr, n_val = on_tr.shape[0], on_va.shape[0]
    batch = min(cfg.batch_size, n_tr)
    steps_per_epoch = max(1, n_tr // batch)
    val_batch = min(cfg.batch_size, n_val)
    val_batches = max(1, min(cfg.max_val_batches, n_val // val_batch))
    pick = (lambda z, idx: None if z is None else z[idx])  # noqa: E731

    best, best_state, since_best, history = math.inf, None, 0, []
    captured = None  # the epoch's graph, made at the first epoch
    t0 = time.perf_counter()
    for epoch in range(cfg.max_epochs):
        order = torch.randperm(n_tr, generator=gen).to(device)
        if cfg.captured:
            rows = order[:steps_per_epoch * batch].view(steps_per_epoch, batch)
            noise = [dec.draw_noise(batch, cfg.mc_samples, gen_dev) for _ in range(steps_per_epoch)]
            if captured is None:
                captured = _CapturedSteps(optimise, train, rows, noise, device, log)
            total = captured(rows, noise)[1]
        else:
            total = torch.zeros((), dtype=torch.float64, device=device)  # read once per epoch: no sync per step
            for s in range(steps_per_epoch):
                idx = order[s * batch:(s + 1) * batch]
                eps, t = dec.draw_noise(idx.shape[0], cfg.mc_samples, gen_dev)
                total += optimise(on_tr[idx], a_tr[idx], pick(z_tr, idx), eps, t).double()
        total = float(total)
        with torch.no_grad():
            val = torch.zeros((), dtype=torch.float64, device=device)
            eps, t = dec.draw_noise(val_batch, cfg.mc_samples, gen_dev)  # one fixed draw per epoch
            for b in range(val_batches):
                sl = slice(b * val_batch, (b + 1) * val_batch)
                m = on_va[sl].shape[0]
                val += batch_loss(on_va[sl], a_va[sl], pick(z_va, sl), eps[:m], t[:m]).double()
            val = float(val) / val_batches
        history.append({"epoch": epoch, "steps": (epoch + 1) * steps_per_epoch, "train_loss": total / steps_per_epoch,
                        "val_loss": val, "wall_s": round(time.perf_counter() - t0, 3)})
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
    return history


def _fit_steps(dec, optimise, batch_loss, train, val, cfg: DecoderFitConfig, gen, gen_dev, device,
               draw_ahead: bool | None = None, log=lambda msg: None) -> list[dict]:
    """The release: ``train_steps`` batches of ``batch_size`` rows drawn with replacement;
    validation on ``max_val_batches`` fixed batches (rows drawn with replacement once, one fixed
    (eps, t) draw each) and on the endpoint MSE of :data:`ENDPOINT_EVAL_SIZE` evenly spaced
    validation rows decoded from a fixed z ~ N(0, I); at step 0 (the initial decoder), 1, every
    ``eval_interval`` and the last; the lowest ``checkpoint_metric`` is kept (an earlier one on
    ties), no early stopping. ``draw_ahead``: draw the rows of the steps up to the next validation
    at once (default: where the noise has a generator of its own, i.e. on a GPU; the same rows).
    ``cfg.captured`` (with rows drawn ahead): each run of ``eval_interval`` steps between two
    validations is one captured CUDA graph (:class:`_CapturedSteps`), its noise drawn ahead too (the
    same numbers: nothing else draws from the noise generator between two validations); other runs
    (the first steps, the last) step as without it. ``log``: where a failed capture is said."""
    on_tr, a_tr, z_tr = train
    on_va, a_va, z_va = val
    n_tr, n_val = on_tr.shape[0], on_va.shape[0]
    n_steps = cfg.train_steps or cfg.max_epochs * max(1, n_tr // min(cfg.batch_size, n_tr))
    pick = (lambda z, idx: None if z is None else z[idx])  # noqa: E731
    t0 = time.perf_counter()

    def draw_val_sets() -> list[tuple]:
        sets = []
        for _ in range(cfg.max_val_batches):
            idx = torch.randint(n_val, (cfg.batch_size,), generator=gen).to(device)
            sets.append((idx, *dec.draw_noise(idx.shape[0], cfg.mc_samples, gen_dev)))
        return sets

    val_sets = draw_val_sets()
    size = min(ENDPOINT_EVAL_SIZE, n_val)
    if cfg.val_redraw:  # one random row in each of `size` equal intervals
        edges = torch.arange(size + 1) * n_val // size
        end_idx = (edges[:-1] + (torch.rand(size, generator=gen) * (edges[1:] - edges[:-1])).long()).to(device)
    else:
        end_idx = torch.as_tensor(np.linspace(0, n_val - 1, size).astype(np.int64), device=device)
    end_z = torch.randn(end_idx.shape[0], a_va.shape[1], generator=gen).to(device)

    @torch.no_grad()
    def evaluate(step: int, train_loss: float | None) -> dict:
        nonlocal val_sets
        if cfg.val_redraw and step > 0:
            val_sets = draw_val_sets()
        val = sum(float(batch_loss(on_va[i], a_va[i], pick(z_va, i), eps, t)) for i, eps, t in val_sets)
        end = float((dec.decode_normalized(on_va[end_idx], end_z) - a_va[end_idx]).pow(2).mean())
        return {"step": step, "train_loss": train_loss, "val_loss": val / len(val_sets), "val_endpoint_mse": end,
                "wall_s": round(time.perf_counter() - t0, 3)}

    def validated(step: int) -> bool:
        return step == 1 or step % cfg.eval_interval == 0 or step == n_steps

    # The rows come from the CPU generator. Where the noise comes from another one (the device's),
    # nothing else draws from it between two validations, so the rows of all steps up to the next
    # validation are drawn at once (the same numbers as one draw per step) and cross to the device
    # in one copy: a copy per step would make the host wait for the device at every step.
    ahead = gen_dev is not gen if draw_ahead is None else draw_ahead
    if cfg.captured and not ahead:
        raise ValueError("a captured fit draws its rows ahead: the noise needs a generator of its own")
    captured = None  # the eval_interval steps' graph, made at the first such run
    rows = iter(())
    history = [evaluate(0, None)]
    best = history[0][cfg.checkpoint_metric]
    best_state = {k: v.detach().clone() for k, v in dec.state_dict().items()}
    step = 0
    while step < n_steps:
        step += 1
        if not ahead:
            idx = torch.randint(n_tr, (cfg.batch_size,), generator=gen).to(device)
        else:
            idx = next(rows, None)
            if idx is None:
                upto = next(s for s in range(step, n_steps + 1) if validated(s))
                chunk = torch.randint(n_tr, (upto - step + 1, cfg.batch_size), generator=gen)
                chunk = (chunk.pin_memory() if device.type == "cuda" else chunk).to(device, non_blocking=True)
                if cfg.captured and upto - step + 1 == cfg.eval_interval:  # the run as one graph
                    noise = [dec.draw_noise(cfg.batch_size, cfg.mc_samples, gen_dev) for _ in range(cfg.eval_interval)]
                    if captured is None:
                        captured = _CapturedSteps(optimise, train, chunk, noise, device, log)
                    loss, step = captured(chunk, noise)[0], upto
                    idx = None
                else:
                    rows = iter(chunk)
                    idx = next(rows)
        if idx is not None:
            eps, t = dec.draw_noise(idx.shape[0], cfg.mc_samples, gen_dev)
            loss = optimise(on_tr[idx], a_tr[idx], pick(z_tr, idx), eps, t)
        if validated(step):
            row = evaluate(step, float(loss))
            history.append(row)
            if not all(math.isfinite(row[k]) for k in ("train_loss", "val_loss", "val_endpoint_mse")):
                break
            if row[cfg.checkpoint_metric] < best:
                best = row[cfg.checkpoint_metric]
                best_state = {k: v.detach().clone() for k, v in dec.state_dict().items()}
    dec.load_state_dict(best_state)
    return history
