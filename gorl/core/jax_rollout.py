"""The rollout as one JAX program per iteration on ``playground:`` tasks (``rollout: scan``).

The per-step path calls the torch policy and the jitted env step once per env step (on a GPU
each call is a dispatch with the device idle meanwhile). Here one iteration's rollout, i.e.
normalisation, the actor's forward, sampling, tanh, the env step with its on-device resets
and the storage of everything the update needs, is one ``lax.scan`` over the steps,
compiled once per (task, batch, policy structure).

The torch modules stay the one definition of each policy: :func:`program` reads a module's
*structure* (``nn.Sequential`` of ``Linear`` and activations, :class:`GaussianHead`,
:class:`ConditionalMLP`, GoRL's :class:`Decoder`) and returns a JAX function of the same
weights, which cross by DLPack once per iteration. Only the act rules of the suite's agent
classes are known here (what ``act`` samples and stores); a plug-in agent falls back to the
per-step path (``rollout: auto``, with one note).

Random numbers: the noise is drawn by torch before the scan, one call per env step and
draw with the shapes the per-step ``act`` draws, in its order, so both paths consume the
same random numbers: same weights, env state and torch seed give the same actions, log-probs
and rewards (tests/test_playground.py), and a checkpoint's torch RNG state resumes either.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from gorl.core.networks import GaussianHead
from gorl.core.onpolicy_config import ROLLOUTS

LOG_2PI = math.log(2.0 * math.pi)


class Unsupported(ValueError):
    """A module or agent the translator does not know (the per-step path runs it)."""


class Params:
    """The torch tensors a program reads, in order; a translated function indexes them."""

    def __init__(self):
        self.tensors: list[torch.Tensor] = []

    def add(self, t: torch.Tensor) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1


def _jnp():
    import jax
    import jax.numpy as jnp
    return jax, jnp


def _activation(m: nn.Module):
    jax, jnp = _jnp()
    acts = {nn.SiLU: jax.nn.silu, nn.Tanh: jnp.tanh, nn.ReLU: jax.nn.relu, nn.GELU: jax.nn.gelu}
    if type(m) not in acts:
        raise Unsupported(f"no JAX translation of {type(m).__name__}")
    return acts[type(m)]


def mlp_fn(seq: nn.Module, P: Params) -> Callable:
    """``nn.Sequential`` of ``Linear`` and activation layers -> f(params, x)."""
    if type(seq) is not nn.Sequential:
        raise Unsupported(f"no JAX translation of {type(seq).__name__}")
    ops = []
    for m in seq:
        if isinstance(m, nn.Linear) and type(m) is nn.Linear:
            ops.append((P.add(m.weight), None if m.bias is None else P.add(m.bias)))
        else:
            ops.append(_activation(m))

    def f(p, x):
        for op in ops:
            if isinstance(op, tuple):
                x = x @ p[op[0]].T
                if op[1] is not None:
                    x = x + p[op[1]]
            else:
                x = op(x)
        return x
    return f


def softplus(x):
    """torch's softplus (threshold 20: x itself above it)."""
    _, jnp = _jnp()
    return jnp.where(x > 20.0, x, jnp.log1p(jnp.exp(jnp.minimum(x, 20.0))))


def gaussian_head_fn(head: nn.Module, P: Params) -> Callable:
    """:class:`GaussianHead` -> f(params, obs_norm) = (mean, scale)."""
    _, jnp = _jnp()
    if type(head) is not GaussianHead:
        raise Unsupported(f"no JAX translation of {type(head).__name__}")
    net, lo, cap = mlp_fn(head.net, P), head.min_scale, head.scale_cap

    def f(p, obs_norm):
        mean, pre = jnp.split(net(p, obs_norm), 2, axis=-1)
        scale = softplus(pre) + lo
        return mean, (scale if cap is None else jnp.clip(scale, lo, cap))
    return f


def conditional_fn(net: nn.Module, P: Params) -> Callable:
    """:class:`ConditionalMLP` -> v(params, obs_norm, x, t), t a scalar."""
    from gorl.generative.networks import ConditionalMLP
    _, jnp = _jnp()
    if type(net) is not ConditionalMLP:
        raise Unsupported(f"no JAX translation of {type(net).__name__}")
    f, scale, half = mlp_fn(net.net, P), net.output_scale, net.embed_dim // 2

    def v(p, obs_norm, x, t):
        arg = jnp.asarray(t, jnp.float32) * 2.0 ** jnp.arange(half, dtype=jnp.float32)
        emb = jnp.broadcast_to(jnp.concatenate([jnp.cos(arg), jnp.sin(arg)]), (*x.shape[:-1], 2 * half))
        out = f(p, jnp.concatenate([jnp.broadcast_to(obs_norm, (*x.shape[:-1], obs_norm.shape[-1])), x, emb], -1))
        return out * scale if scale != 1.0 else out
    return v


def euler(v: Callable, p, obs_norm, x1, steps: int, noise=None):
    """The Euler sampler of :func:`gorl.generative.flow.euler_sample` (plain form):
    x_{k+1} = x_k - dt v(obs, x_k, t_k) (+ noise_k), t_k = (n - k) / n. Returns (x0, chain, means)."""
    _, jnp = _jnp()
    dt = 1.0 / steps
    x, chain, means = x1, [x1], []
    for k in range(steps):
        mu = x - dt * v(p, obs_norm, x, jnp.float32(steps - k) / jnp.float32(steps))
        x = mu if noise is None else mu + noise[k]
        chain.append(x)
        means.append(mu)
    return x, jnp.stack(chain), jnp.stack(means)


def delta_ddim(v: Callable, p, obs_norm, z, steps: int):
    """The release's deterministic sampler of :func:`gorl.generative.diffusion.delta_ddim_sample`:
    x <- x + c_k v(obs, x, t_k) over the same ``delta_schedule``."""
    from gorl.generative.diffusion import delta_schedule
    _, jnp = _jnp()
    for t_k, c_k in zip(*delta_schedule(steps)):
        z = z + c_k * v(p, obs_norm, z, jnp.float32(t_k))
    return z


def decoder_fn(decode: Callable | None, P: Params) -> Callable:
    """GaussianPolicy's ``decode`` (None, or GoRL's frozen ``Decoder.forward`` or, for a bounded
    latent, ``Decoder.forward_bounded_latent``) -> g(params, obs_raw, z), case by case as
    ``Decoder.forward`` and ``Decoder.decode_normalized`` decide."""
    if decode is None:
        return lambda p, obs_raw, z: z
    from gorl.algorithm.decoder import Decoder
    from gorl.generative.diffusion import ddim_coefficients
    dec, method = getattr(decode, "__self__", None), getattr(decode, "__func__", None)
    if type(dec) is not Decoder or method not in (Decoder.forward, Decoder.forward_bounded_latent):
        raise Unsupported(f"no JAX translation of the decode function {decode!r}")
    if method is Decoder.forward_bounded_latent:  # the decoder of tanh(x) (latent_bounded)
        g = decoder_fn(dec.forward, P)
        _, jnp = _jnp()
        return lambda p, obs_raw, x: g(p, obs_raw, jnp.tanh(x))
    if dec.identity_init and (dec.kind == "fm" or dec.identity_init == "exact"):  # z itself
        return lambda p, obs_raw, z: z
    if dec.identity_init:  # v1's zero-network diffusion decoder: x <- a_i x (1.052 z at T = 10)
        coefs = ddim_coefficients(dec.alpha_bar)

        def zero_ddim(p, obs_raw, z):
            for _, a, _ in coefs:
                z = z * a
            return z
        return zero_ddim
    v = conditional_fn(dec.net, P)
    i_mean, i_std, steps = P.add(dec.obs_mean), P.add(dec.obs_std), dec.steps
    if dec.kind == "fm":
        sample = lambda p, obs_norm, z: euler(v, p, obs_norm, z, steps)[0]  # noqa: E731
    elif dec.diffusion_form == "release":
        sample = lambda p, obs_norm, z: delta_ddim(v, p, obs_norm, z, steps)  # noqa: E731
    elif dec.diffusion_form == "v1":  # DDIM on the cosine schedule, epsilon prediction
        coefs, T = ddim_coefficients(dec.alpha_bar), int(dec.alpha_bar.shape[0])

        def sample(p, obs_norm, z):
            _, jnp = _jnp()
            for i, a, b in coefs:
                z = a * z + b * v(p, obs_norm, z, jnp.float32(i) / jnp.float32(T))
            return z
    else:  # a form added to Decoder without a translation here: the per-step path, never a guess
        raise Unsupported(f"no JAX translation of a diffusion decoder of form {dec.diffusion_form!r}")

    def g(p, obs_raw, z):
        return sample(p, (obs_raw - p[i_mean]) / (p[i_std] + 1e-8), z)
    return g


@dataclass
class Program:
    """One agent's act rule in JAX: ``draws(n)`` the torch noise shapes of one env step (in the
    order ``act`` draws them), ``act(params, obs_norm, obs_raw, noises) -> (pre_action, stored)``.
    ``eval_noise``: what the agent's ``act_eval`` (deterministic evaluation) is in these terms:
    'zero' (``act`` with zero noise, no torch draw), 'drawn' (``act`` itself, the same draws),
    None (neither: deterministic evaluation steps once per env step). ``env_action``: what the
    env receives of act's output (:func:`gorl.core.onpolicy.env_action`), one of
    ``gorl.envs.playground.ENV_ACTIONS``."""

    act: Callable
    draws: Callable[[int], list[tuple[int, ...]]]
    params: Params
    eval_noise: str | None = None
    env_action: str = "tanh"


def env_action_kind(agent: nn.Module) -> str:
    """The agent's env action as one of ``gorl.envs.playground.ENV_ACTIONS`` (Unsupported for a
    map of its own)."""
    from gorl.algorithm.decoder import bounded_action
    squash = getattr(agent, "env_action", None)
    if squash is None:
        return "tanh"
    if squash is bounded_action:
        return "clip"
    raise Unsupported(f"no JAX translation of the agent's env_action {squash!r}")


def gaussian_log_prob(x, mean, scale):
    z = (x - mean) / scale
    _, jnp = _jnp()
    return (-0.5 * z ** 2 - jnp.log(scale) - 0.5 * LOG_2PI).sum(-1)


def program(agent: nn.Module) -> Program:
    """The JAX act rule of one of the suite's agents (exact class; a subclass may act otherwise)."""
    from gorl.core.gaussian_policy import GaussianPolicy
    P, squash = Params(), env_action_kind(agent)
    if type(agent) is GaussianPolicy:  # PPO, GoRL's encoder (+ frozen decoder)
        head, decode = gaussian_head_fn(agent.actor, P), decoder_fn(agent.decode, P)
        d = agent.actor.out_dim

        def act(p, obs_norm, obs_raw, noises):
            mean, scale = head(p, obs_norm)
            x = mean + scale * noises[0]
            return decode(p, obs_raw, x), {"x": x, "logp": gaussian_log_prob(x, mean, scale)}
        # act_eval = decode(mean) = act with zero noise (type(agent) is GaussianPolicy: its own act_eval)
        return Program(act, lambda n: [(n, d)], P, eval_noise="zero", env_action=squash)
    # FPO's and DPPO's agents name their sampler (a class attribute of their own class, so a
    # subclass that may act otherwise is not translated): gorl/ never imports baselines/
    rule = type(agent).__dict__.get("jax_rule")
    # FlowPolicy.act_eval: eval_mode zero_noise samples from x_1 = 0 without per-step noise (act
    # with zero noise: sigma * 0 added at each Euler step is the noise-free chain); stochastic
    # samples as act does, with act's draws in act's order (x_1, then the per-step noise)
    from gorl.generative.policy import FlowPolicy
    own_eval = isinstance(agent, FlowPolicy) and type(agent).act_eval is FlowPolicy.act_eval
    eval_noise = {"zero_noise": "zero", "stochastic": "drawn"}.get(getattr(agent, "eval_mode", None)) \
        if own_eval else None
    if rule == "flow":  # FPO: x_1 ~ N(0, I), K Euler steps
        v, K, d = conditional_fn(agent.net, P), agent.flow_steps, agent.act_dim

        def act(p, obs_norm, obs_raw, noises):
            a = euler(v, p, obs_norm, noises[0], K)[0]
            return a, {"a": a}
        return Program(act, lambda n: [(n, d)], P, eval_noise, squash)
    if rule == "flow_sde":  # DPPO: K Euler steps with N(0, sigma^2) noise added at each
        v, K, d, sigma = conditional_fn(agent.net, P), agent.flow_steps, agent.act_dim, agent.noise_std

        def act(p, obs_norm, obs_raw, noises):
            _, jnp = _jnp()
            x0, chain, means = euler(v, p, obs_norm, noises[0], K, sigma * noises[1])
            z = (chain[1:] - means) / (sigma + 1e-6)                      # gaussian_step_logprob
            logp = -0.5 * (z ** 2).sum(-1) - 0.5 * d * LOG_2PI            # (K, B)
            return x0, {"chain": jnp.swapaxes(chain, 0, 1), "logp": logp.T}
        return Program(act, lambda n: [(n, d), (K, n, d)], P, eval_noise, squash)
    raise Unsupported(f"no JAX act rule for {type(agent).__module__}.{type(agent).__name__}")


def select(rollout: str, envs, agent: nn.Module, log: Callable[[str], None]) -> Program | None:
    """The program for ``rollout`` (config key): 'scan' needs a playground: task and a known
    agent (ValueError naming the key otherwise), 'auto' uses it when both hold (one note when
    only the agent is unknown), 'step' never."""
    if rollout not in ROLLOUTS:
        raise ValueError(f"rollout must be one of {ROLLOUTS}, got {rollout!r}")
    if rollout == "step":
        return None
    if not hasattr(envs, "scan_rollout"):
        if rollout == "scan":  # (build_config refuses it before anything runs)
            raise ValueError("rollout=scan needs a playground: task; use rollout=auto or step")
        return None
    try:
        return program(agent)
    except Unsupported as e:
        if rollout == "scan":
            raise ValueError(f"rollout=scan: {e}; use rollout=auto or step") from None
        log(f"note: rollout=auto: {e}; this run's rollout steps the env once per step")
        return None


def running_returns(reward: torch.Tensor, done: torch.Tensor, episode_return: torch.Tensor) -> torch.Tensor:
    """The per-step loop's episode bookkeeping over a whole rollout at once: reward, done (S, N);
    episode_return (N,) float64, the running return before the first step, updated in place to
    the one after the last. Returns each step's running return (S, N) float64 (at a done step:
    the return of the episode that ended there)."""
    S = reward.shape[0]
    total = episode_return + torch.cumsum(reward.to(torch.float64), 0)       # (S, N) running sum
    steps = torch.arange(S, device=reward.device)[:, None]
    last = torch.cummax(torch.where(done, steps, -1), 0).values              # last end at or before s
    prev = torch.cat([torch.full_like(last[:1], -1), last[:-1]])             # ... strictly before s
    base = torch.where(prev >= 0, total.gather(0, prev.clamp(min=0)), 0.0)
    end = last[-1]                                                           # each env's last end
    episode_return.copy_(total[-1] - torch.where(end >= 0, total.gather(0, end.clamp(min=0)[None])[0], 0.0))
    return total - base


def episode_sums(reward: torch.Tensor, done: torch.Tensor, episode_return: torch.Tensor):
    """(sum of the returns of the episodes that ended in the rollout, how many), 0-dim device
    tensors; ``episode_return`` updated in place (:func:`running_returns`)."""
    return torch.where(done, running_returns(reward, done, episode_return), 0.0).sum(), done.sum()


def collect(trainer, prog: Program) -> dict:
    """One iteration's rollout through the scan; the batch of ``OnPolicyTrainer.collect``."""
    import time
    S, N, dev = trainer.cfg.steps_per_env, trainer.cfg.num_envs, trainer.device
    t0 = time.perf_counter()
    noises = draw_noises(prog, S, N, dev)
    norm = trainer.normalizer
    obs, packed, stored, _ = trainer.envs.scan_rollout(prog.act, prog.params.tensors, norm.mean, norm.std, noises,
                                                       prog.env_action)
    d = trainer.obs_dim
    reward, term, trunc = packed[..., 2 * d], packed[..., 2 * d + 1] > 0.5, packed[..., 2 * d + 2] > 0.5
    finished_sum, finished_n = episode_sums(reward, term | trunc, trainer._episode_return)
    stored = dict(stored)
    finish = getattr(trainer.agent, "finish_rollout", None)
    if finish is not None:
        stored.update(finish(norm(obs), stored))
    if trainer.sync_timing and dev.type == "cuda":
        torch.cuda.synchronize(dev)
    trainer.timing["env"] += time.perf_counter() - t0  # env and inference in one program
    return {"obs": obs, "next_obs": packed[..., d:2 * d], "reward": reward, "discount": 1.0 - term.float(),
            "truncation": trunc.float(), "stored": stored, "train_return": finished_sum / finished_n}


def draw_noises(prog: Program, S: int, N: int, device) -> list[torch.Tensor]:
    """S steps of ``act``'s torch draws, in its order (one call per step and draw): (S, ...) each."""
    shapes = prog.draws(N)
    draws = [[torch.randn(shape, device=device) for shape in shapes] for _ in range(S)]
    return [torch.stack([d[i] for d in draws]) for i in range(len(shapes))]


def generator(device: torch.device) -> torch.Generator:
    """The torch generator ``act``'s draws on ``device`` come from."""
    if device.type == "cuda":
        return torch.cuda.default_generators[device.index if device.index is not None
                                             else torch.cuda.current_device()]
    return torch.default_generator


def keep_draws(prog: Program, before: torch.Tensor, steps: int, N: int, device) -> None:
    """A scan drew more steps' noise than the per-step loop it stands for ran: set the generator
    back to ``before`` (its state when the scan drew) and advance it by ``steps`` steps' draws,
    where the loop leaves it."""
    generator(torch.device(device)).set_state(before)
    draw_noises(prog, steps, N, device)


def rollout_rows(envs, prog: Program, normalizer, steps: int):
    """``steps`` env steps through the scan from the envs' current state, with ``act``'s torch
    draws in the per-step order: the acted-on obs, pre-actions, what ``act`` stores (GoRL's
    latent ``x``, ...), rewards and episode ends, each (steps, N, ...)."""
    noises = draw_noises(prog, steps, envs.num_envs, normalizer.mean.device)
    obs, packed, stored, pre = envs.scan_rollout(prog.act, prog.params.tensors, normalizer.mean, normalizer.std,
                                                 noises, prog.env_action)
    d = envs.obs_dim
    reward, done = packed[..., 2 * d], (packed[..., 2 * d + 1] > 0.5) | (packed[..., 2 * d + 2] > 0.5)
    return obs, pre, stored, reward, done


def collect_rows(envs, prog: Program, normalizer, steps: int):
    """GoRL's decoder-data collection (``collect_decoder_data``) through the scan: the
    (obs, pre-action, done, reward, running return) rows of ``steps`` env steps, (steps, N, ...)."""
    obs, pre, _, reward, done = rollout_rows(envs, prog, normalizer, steps)
    ep = torch.zeros(envs.num_envs, dtype=torch.float64, device=reward.device)
    return obs, pre, done, reward.to(torch.float64), running_returns(reward, done, ep)


def evaluates(prog: Program | None, envs, deterministic: bool) -> bool:
    """Whether an evaluation (``OnPolicyTrainer._episodes``) runs through the scan: a program,
    envs with ``scan_rollout`` and a time limit (``episode_length`` steps end every episode),
    and for a deterministic evaluation an ``act_eval`` the program knows (``eval_noise``)."""
    return (prog is not None and hasattr(envs, "scan_rollout") and bool(getattr(envs, "episode_length", None))
            and (not deterministic or prog.eval_noise is not None))


def evaluate_returns(envs, prog: Program, normalizer, deterministic: bool, seen: list | None = None) -> torch.Tensor:
    """An evaluation's ``episode_length`` env steps as one scan from the envs' current (freshly
    reset) state, as the per-step loop of ``OnPolicyTrainer._episodes`` runs them: each env's
    return (float64) up to and including its first episode end, and every 50th observation of
    env 0 appended to ``seen``. The noise is ``act``'s draws (stochastic evaluation, or an
    ``act_eval`` that samples as ``act`` does) or zeros (an ``act_eval`` that is ``act`` without
    noise, which draws nothing), so torch's random numbers are consumed as step by step."""
    S, N, dev = envs.episode_length, envs.num_envs, normalizer.mean.device
    if deterministic and prog.eval_noise == "zero":
        noises = [torch.zeros((S, *shape), device=dev) for shape in prog.draws(N)]
    else:
        noises = draw_noises(prog, S, N, dev)
    obs, packed, _, _ = envs.scan_rollout(prog.act, prog.params.tensors, normalizer.mean, normalizer.std, noises,
                                          prog.env_action)
    d = envs.obs_dim
    reward, done = packed[..., 2 * d], (packed[..., 2 * d + 1] > 0.5) | (packed[..., 2 * d + 2] > 0.5)
    ended = torch.cumsum(done.int(), 0) - done.int()                  # episode ends strictly before each step
    if seen is not None:
        seen.extend(obs[::50, 0].clone().unbind(0))
    return torch.where(ended == 0, reward.to(torch.float64), 0.0).sum(0)
