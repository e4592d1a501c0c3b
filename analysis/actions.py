"""Bimodality of the probe actions (probes.npz: actions (E, P, K, d_a) in [-1, 1]).

Two numbers per (evaluation, probe state), computed on the K samples of one action dimension:

* Sarle's bimodality coefficient BC = (g^2 + 1) / (k + 3 (n-1)^2 / ((n-2)(n-3))), with g the
  bias-corrected sample skewness and k the bias-corrected excess kurtosis. BC > 5/9 ~ 0.555
  (the value of a uniform distribution) suggests bi- or multimodality; a Gaussian gives 1/3.
* A two-component 1-D Gaussian mixture fitted by EM, summarised by Ashman's D =
  sqrt(2) |mu1 - mu2| / sqrt(s1^2 + s2^2) (D > 2: two cleanly separated peaks) and the
  smaller mixture weight (a second peak with ~0 weight is no second peak).

Samples piled at the action bounds +-1 (bang-bang control) also count as two peaks; that is
the behaviour the paper describes for balancing tasks, so it is kept.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

BC_THRESHOLD = 5.0 / 9.0


def bimodality_coefficient(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    n = x.shape[axis]
    if n < 4:
        return np.full(np.delete(x.shape, axis if axis >= 0 else x.ndim + axis), np.nan)
    m = x.mean(axis=axis, keepdims=True)
    d = x - m
    m2 = (d ** 2).mean(axis=axis)
    m3 = (d ** 3).mean(axis=axis)
    m4 = (d ** 4).mean(axis=axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        g1 = m3 / m2 ** 1.5
        g2 = m4 / m2 ** 2 - 3.0
        skew = g1 * np.sqrt(n * (n - 1)) / (n - 2)
        kurt = ((n + 1) * g2 + 6) * (n - 1) / ((n - 2) * (n - 3))
        bc = (skew ** 2 + 1) / (kurt + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    return np.where(m2 > 1e-12, bc, np.nan)  # constant samples: undefined


def gmm2(x: np.ndarray, iters: int = 200, tol: float = 1e-8) -> tuple[float, float, float, float]:
    """Two-component 1-D Gaussian mixture by EM -> (ashman_d, min_weight, mu_low, mu_high)."""
    x = np.asarray(x, dtype=float).ravel()
    if x.size < 4 or np.std(x) < 1e-9:
        return 0.0, 0.0, float(np.mean(x)), float(np.mean(x))
    lo, hi = np.quantile(x, [0.25, 0.75])
    mu = np.array([lo, hi], dtype=float)
    var = np.full(2, max(np.var(x) / 4, 1e-6))
    w = np.array([0.5, 0.5])
    prev = -np.inf
    floor = max(1e-6, 1e-4 * np.var(x))
    for _ in range(iters):
        logp = -0.5 * (x[:, None] - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var) + np.log(w)
        mx = logp.max(axis=1, keepdims=True)
        ll = float((mx[:, 0] + np.log(np.exp(logp - mx).sum(axis=1))).sum())
        r = np.exp(logp - mx)
        r /= r.sum(axis=1, keepdims=True)
        nk = r.sum(axis=0) + 1e-12
        w = nk / nk.sum()
        mu = (r * x[:, None]).sum(axis=0) / nk
        var = np.maximum((r * (x[:, None] - mu) ** 2).sum(axis=0) / nk, floor)
        if abs(ll - prev) < tol * max(1.0, abs(ll)):
            break
        prev = ll
    o = np.argsort(mu)
    mu, var, w = mu[o], var[o], w[o]
    d = float(np.sqrt(2) * abs(mu[1] - mu[0]) / np.sqrt(var[0] + var[1]))
    return d, float(w.min()), float(mu[0]), float(mu[1])


def snapshot_indices(n_evals: int, n_snapshots: int) -> list[int]:
    """Evenly spaced evaluation indices, always including the first and the last."""
    if n_evals <= 0:
        return []
    k = min(n_snapshots, n_evals)
    return sorted(set(np.linspace(0, n_evals - 1, k).round().astype(int).tolist()))


def bimodality_table(probes: dict[str, np.ndarray], action_dim: int, probe_state: int,
                     n_snapshots: int, **key) -> pd.DataFrame:
    """One row per snapshot: statistics of the chosen probe state and over all probe states."""
    acts = np.asarray(probes["actions"], dtype=float)  # (E, P, K, d_a)
    steps = np.asarray(probes["env_step"])
    rows = []
    if acts.ndim != 4 or action_dim >= acts.shape[-1]:
        return pd.DataFrame(rows)
    ps = min(probe_state, acts.shape[1] - 1)
    for e in snapshot_indices(acts.shape[0], n_snapshots):
        a = acts[e, :, :, action_dim]  # (P, K)
        bc_all = bimodality_coefficient(a, axis=-1)
        d, wmin, m0, m1 = gmm2(a[ps])
        rows.append(dict(**key, eval_index=e, env_step=int(steps[e]) if e < len(steps) else -1,
                         action_dim=action_dim, probe_state=ps, n_samples=a.shape[1],
                         bc=float(bc_all[ps]), ashman_d=d, gmm_min_weight=wmin, gmm_mu_low=m0, gmm_mu_high=m1,
                         bc_median_all_states=float(np.nanmedian(bc_all)) if np.isfinite(bc_all).any() else np.nan,
                         frac_states_bc_gt_5_9=float(np.mean(bc_all > BC_THRESHOLD)),
                         n_states=a.shape[0]))
    return pd.DataFrame(rows)
