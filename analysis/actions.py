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
    d, wmin, lo, hi = gmm2_rows(np.asarray(x, dtype=float).reshape(1, -1), iters, tol)[0]
    return float(d), float(wmin), float(lo), float(hi)


def gmm2_rows(x: np.ndarray, iters: int = 200, tol: float = 1e-8) -> np.ndarray:
    """:func:`gmm2` of every row of ``x`` (M, K) -> (M, 4), fitted together: each row's EM starts
    from its own quartiles and stops on its own, when its log-likelihood changes by less than
    ``tol`` (relative) or after ``iters`` steps, so a row gets the fit it gets alone."""
    x = np.asarray(x, dtype=float)
    out = np.zeros((x.shape[0], 4))
    mean = x.mean(axis=1) if x.shape[1] else np.full(x.shape[0], np.nan)
    out[:, 2] = out[:, 3] = mean
    fit = np.flatnonzero(x.std(axis=1) >= 1e-9) if x.shape[1] >= 4 else np.array([], dtype=int)
    if not fit.size:
        return out
    xs = x[fit]  # (m, K); the components' parameters are (m, 2), their log densities (2, m, K)
    mu = np.stack(np.quantile(xs, [0.25, 0.75], axis=1), axis=1)
    spread = xs.var(axis=1)
    var = np.repeat(np.maximum(spread / 4, 1e-6)[:, None], 2, axis=1)
    w = np.full_like(mu, 0.5)
    floor = np.maximum(1e-6, 1e-4 * spread)[:, None]
    prev = np.full(len(fit), -np.inf)
    active = np.arange(len(fit))  # rows whose EM has not converged
    for _ in range(iters):
        xa, m, v = xs[active], mu[active].T[:, :, None], var[active].T[:, :, None]
        logp = -0.5 * (xa - m) ** 2 / v - 0.5 * np.log(2 * np.pi * v) + np.log(w[active]).T[:, :, None]
        mx = np.maximum(logp[0], logp[1])
        r = np.exp(logp - mx)
        total = r[0] + r[1]
        ll = (mx + np.log(total)).sum(axis=1)
        r /= total
        nk = r.sum(axis=2).T + 1e-12  # (a, 2)
        w[active] = nk / nk.sum(axis=1, keepdims=True)
        m = (r * xa).sum(axis=2).T / nk
        mu[active] = m
        var[active] = np.maximum((r * (xa - m.T[:, :, None]) ** 2).sum(axis=2).T / nk, floor[active])
        done = np.abs(ll - prev[active]) < tol * np.maximum(1.0, np.abs(ll))
        prev[active] = ll
        active = active[~done]
        if not active.size:
            break
    swap = mu[:, 0] > mu[:, 1]  # component 0 is the lower peak
    mu[swap], var[swap], w[swap] = mu[swap, ::-1], var[swap, ::-1], w[swap, ::-1]
    out[fit, 0] = np.sqrt(2) * np.abs(mu[:, 1] - mu[:, 0]) / np.sqrt(var[:, 0] + var[:, 1])
    out[fit, 1] = w.min(axis=1)
    out[fit, 2], out[fit, 3] = mu[:, 0], mu[:, 1]
    return out


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
