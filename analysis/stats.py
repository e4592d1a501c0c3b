"""Thin wrappers over rliable, with an exact vectorised stratified bootstrap.

Point estimates are rliable's own functions (``rliable.metrics``). Confidence intervals are
rliable's stratified-bootstrap percentile intervals (``rliable.library.get_interval_estimates``),
computed here by replaying rliable's resampling in bulk: rliable draws, for every replicate,
``np.random.choice(num_runs, scores.shape)`` from NumPy's *global* RandomState (its
``random_state`` argument is ignored, spec 12.10), resamples runs within each task,
applies the metric and takes ``np.percentile(..., [2.5, 97.5])``. We seed the global state with
``np.random.seed(seed)`` before every bootstrap, draw the same indices in chunks and evaluate
the metrics on whole chunks of replicates at once. The result equals a direct rliable call with
the same seed (tests/test_analysis.py checks this) but is ~100x faster, which is what makes
50,000 replicates on a paper-sized table affordable (``engine="rliable"`` calls rliable itself).

Scores are normalised returns (return / 1000, spec 1.5). NaNs are never passed on: runs
without a final score are excluded before (and listed by :mod:`analysis.collect`).
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rmetrics

from gorl import rundir

METRICS = ("IQM", "Median", "Mean", "Optimality Gap")
CHUNK_ELEMENTS = 4_000_000  # resampled values materialised at once


# ----------------------------------------------------------------------------- score matrices
def score_matrices(finals: pd.DataFrame, column: str = "final_normalized",
                   tasks: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], list[str], pd.DataFrame]:
    """(algorithm -> (num_runs, num_tasks) matrix, tasks, excluded) from the final-score table.

    rliable needs rectangular, NaN-free matrices. Tasks used: those on which every algorithm
    that has any usable run has at least one (an algorithm with none is excluded, it does not
    empty the comparison). For each algorithm the runs (seeds) used are the seeds with a
    usable score on every one of those tasks; everything left out is returned in ``excluded``.
    """
    ok = finals[finals["included"] & np.isfinite(finals[column])]
    algos = list(dict.fromkeys(finals["algorithm"]))
    if tasks is None:
        # an algorithm without a single usable run is excluded below; it must not empty the task set
        per_algo = [ts for ts in (set(ok.loc[ok["algorithm"] == a, "task"]) for a in algos) if ts]
        common = set.intersection(*per_algo) if per_algo else set()
        tasks = [t for t in dict.fromkeys(finals["task"]) if t in common]
    tasks = list(tasks)
    scores, excluded = {}, []
    for a in algos:
        sub = ok[(ok["algorithm"] == a) & ok["task"].isin(tasks)]
        if sub.empty or not tasks:
            excluded.append(dict(algorithm=a, seed=-1, reason="no usable final score on the common tasks"))
            continue
        wide = sub.pivot_table(index="seed", columns="task", values=column, aggfunc="first")
        # every seed the algorithm has in the table, even one with no usable score at all
        wide = wide.reindex(index=sorted(set(finals.loc[finals["algorithm"] == a, "seed"])), columns=tasks)
        full = wide.dropna()
        for seed in wide.index.difference(full.index):
            excluded.append(dict(algorithm=a, seed=int(seed), reason="seed lacks a usable score on some task"))
        if len(full) == 0 or not tasks:
            excluded.append(dict(algorithm=a, seed=-1, reason="no seed with usable scores on all common tasks"))
            continue
        scores[a] = full.to_numpy(dtype=float)
    for t in dict.fromkeys(finals["task"]):
        if t not in tasks:
            excluded.append(dict(algorithm="*", seed=-1, reason=f"task {t} lacks usable runs for some algorithm"))
    return scores, tasks, pd.DataFrame(excluded, columns=["algorithm", "seed", "reason"])


# ------------------------------------------------------------------ vectorised bootstrap core
def _chunks(reps: int, per_rep: int) -> Iterable[int]:
    size = max(1, CHUNK_ELEMENTS // max(per_rep, 1))
    done = 0
    while done < reps:
        c = min(size, reps - done)
        yield c
        done += c


def _draw(shapes: Sequence[tuple[int, ...]], c: int) -> list[np.ndarray]:
    """Indices of ``c`` replicates, in rliable's draw order (global RandomState)."""
    if len(shapes) == 1:
        return [np.random.randint(0, shapes[0][0], size=(c, *shapes[0]))]
    sizes = [int(np.prod(s)) for s in shapes]
    if len({s[0] for s in shapes}) == 1:
        # Same number of runs in every array: rliable's per-replicate sequence of
        # np.random.choice(n, shape) calls (= randint(0, n, shape), legacy MT19937, no state
        # carried between calls) is one randint stream; draw it at once and split it.
        flat = np.random.randint(0, shapes[0][0], size=(c, sum(sizes)))
        cuts = np.cumsum(sizes)[:-1]
        return [part.reshape(c, *s) for part, s in zip(np.split(flat, cuts, axis=1), shapes)]
    out = [np.empty((c, *s), dtype=np.int64) for s in shapes]
    for r in range(c):  # independent bootstrap: per replicate, one draw per array in turn
        for k, s in enumerate(shapes):
            out[k][r] = np.random.randint(0, s[0], size=s)
    return out


def _take(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """x[idx[r, n, m, ...], m, ...] for every replicate r (resample runs within each stratum)."""
    nd = x.ndim - 1
    rest = [np.arange(d).reshape([d if i == k else 1 for i in range(nd)]) for k, d in enumerate(x.shape[1:])]
    return x[(idx, *rest)]


def bootstrap(arrays: Sequence[np.ndarray], vec_func: Callable[..., np.ndarray], reps: int,
              seed: int, size: float = 0.95) -> np.ndarray:
    """(2, K) percentile interval of ``vec_func`` (maps (R, ...) resamples -> (R, K))."""
    np.random.seed(seed)
    shapes = [a.shape for a in arrays]
    per_rep = sum(int(np.prod(s)) for s in shapes)
    results = []
    for c in _chunks(reps, per_rep):
        idx = _draw(shapes, c)
        results.append(np.asarray(vec_func(*[_take(a, i) for a, i in zip(arrays, idx)])).reshape(c, -1))
    res = np.concatenate(results, axis=0)
    alpha = (1.0 - size) / 2
    lo = np.empty(res.shape[1])
    hi = np.empty(res.shape[1])
    for k in range(res.shape[1]):  # column by column, like arch
        lo[k], hi[k] = np.percentile(res[:, k], [100 * alpha, 100 * (1 - alpha)])
    return np.vstack([lo, hi])


# --------------------------------------------------------------- metrics (point + vectorised)
def _flat(s: np.ndarray) -> np.ndarray:
    return s.reshape(s.shape[0], -1)


def aggregate_point(scores: np.ndarray) -> np.ndarray:
    """rliable's IQM, median, mean, optimality gap (in :data:`METRICS` order)."""
    return np.array([rmetrics.aggregate_iqm(scores), rmetrics.aggregate_median(scores),
                     rmetrics.aggregate_mean(scores), rmetrics.aggregate_optimality_gap(scores)])


def iqm_along(x: np.ndarray, axis: int) -> np.ndarray:
    """scipy.stats.trim_mean(x, 0.25, axis) (= rliable's IQM) by a full sort: the same kept
    elements (sorted[k : n - k], k = int(0.25 n)), summed in sorted order, so it agrees with
    rliable to a few ulps; ~10x faster than trim_mean's partition on (reps, runs, grid) blocks."""
    n = x.shape[axis]
    k = int(0.25 * n)
    return np.take(np.sort(x, axis=axis), np.arange(k, n - k), axis=axis).mean(axis=axis)


def aggregate_vec(s: np.ndarray) -> np.ndarray:
    task_means = s.mean(axis=1)
    return np.stack([iqm_along(_flat(s), 1), np.median(task_means, axis=1),
                     task_means.mean(axis=1), 1.0 - np.minimum(_flat(s), 1.0).mean(axis=1)], axis=1)


def poi_vec(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Vectorised rliable.metrics.probability_of_improvement (Mann-Whitney U / (n_x n_y))."""
    gt = (x[:, :, None, :] > y[:, None, :, :]).mean(axis=(1, 2))
    eq = (x[:, :, None, :] == y[:, None, :, :]).mean(axis=(1, 2))
    return (gt + 0.5 * eq).mean(axis=1)[:, None]


def profile_vec(taus: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    def f(s: np.ndarray) -> np.ndarray:
        flat = _flat(s)
        return np.stack([(flat > t).mean(axis=1) for t in taus], axis=1)
    return f


def iqm_curve_vec(s: np.ndarray) -> np.ndarray:
    """(R, N, M, G) -> (R, G): IQM over runs x tasks at each grid point."""
    r, n, m, g = s.shape
    return iqm_along(s.reshape(r, n * m, g), 1)


# ------------------------------------------------------------------------------ public API
def aggregate_metrics(scores: Mapping[str, np.ndarray], reps: int, seed: int,
                      engine: str = "vectorized") -> pd.DataFrame:
    """IQM / median / mean / optimality gap with 95% stratified-bootstrap CIs per algorithm."""
    rows = []
    for a, s in scores.items():
        point = aggregate_point(s)
        if engine == "rliable":
            np.random.seed(seed)
            _, ci = rly.get_interval_estimates({a: s}, aggregate_point, reps=reps)
            ci = ci[a]
        else:
            ci = bootstrap([s], aggregate_vec, reps, seed)
        for k, name in enumerate(METRICS):
            rows.append(dict(algorithm=a, metric=name, estimate=point[k], lower=ci[0, k], upper=ci[1, k],
                             n_runs=s.shape[0], n_tasks=s.shape[1], reps=reps, seed=seed))
    return pd.DataFrame(rows)


def family_pairs(algos: Iterable[str], styles: Mapping[str, Mapping]) -> list[tuple[str, str]]:
    """(gorl-family X, baseline-family Y) pairs for the probability of improvement."""
    algos = list(algos)
    xs = [a for a in algos if styles.get(a, {}).get("family") == "gorl"]
    ys = [a for a in algos if styles.get(a, {}).get("family", "baseline") != "gorl"]
    return [(x, y) for x in xs for y in ys]


def probability_of_improvement(scores: Mapping[str, np.ndarray], pairs: Sequence[tuple[str, str]],
                               reps: int, seed: int, engine: str = "vectorized") -> pd.DataFrame:
    """P(X > Y) averaged over tasks, with 95% CIs (independent stratified bootstrap)."""
    rows = []
    for x, y in pairs:
        if x not in scores or y not in scores:
            continue
        point = rmetrics.probability_of_improvement(scores[x], scores[y])
        if engine == "rliable":
            np.random.seed(seed)
            _, ci = rly.get_interval_estimates({"p": [scores[x], scores[y]]},
                                               rmetrics.probability_of_improvement, reps=reps)
            ci = np.asarray(ci["p"]).reshape(2, 1)
        else:
            ci = bootstrap([scores[x], scores[y]], poi_vec, reps, seed)
        rows.append(dict(algorithm_x=x, algorithm_y=y, probability=float(point), lower=ci[0, 0],
                         upper=ci[1, 0], reps=reps, seed=seed))
    return pd.DataFrame(rows, columns=["algorithm_x", "algorithm_y", "probability", "lower", "upper", "reps", "seed"])


def performance_profiles(scores: Mapping[str, np.ndarray], taus: np.ndarray, reps: int, seed: int,
                         engine: str = "vectorized") -> pd.DataFrame:
    """Run-score distributions (fraction of runs with score > tau) with 95% CIs."""
    taus = np.asarray(taus, dtype=float)
    rows = []
    for a, s in scores.items():
        if engine == "rliable":
            np.random.seed(seed)
            prof, ci = rly.create_performance_profile({a: s}, taus, reps=reps)
            prof, ci = prof[a], ci[a]
        else:
            prof = rly.score_distributions(s, taus)
            ci = bootstrap([s], profile_vec(taus), reps, seed)
        for k, t in enumerate(taus):
            rows.append(dict(algorithm=a, tau=t, fraction=prof[k], lower=ci[0, k], upper=ci[1, k]))
    return pd.DataFrame(rows)


def curves_on_grid(tidy: pd.DataFrame, finals: pd.DataFrame, tasks: Sequence[str], n_points: int = 50,
                   diverged_policy: str = "last_eval") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every usable run's normalised learning curve on one common env-step grid.

    Runs evaluate on different step grids (GoRL per stage, baselines every 6 iterations),
    so each curve is LINEARLY INTERPOLATED (np.interp) onto ``n_points`` evenly spaced env
    steps from 0 to the smallest last-evaluation step over the completed runs (no
    extrapolation for completed runs). Before a run's first evaluation the first value is
    used; a diverged run that stops early is held at its final score (last value, or 0 under
    ``diverged_policy: zero``). Returns (algorithm -> (runs, tasks, grid), grid).
    """
    use = finals[finals["included"]]
    done = use[use["status"] == rundir.COMPLETED]
    src = done if len(done) else use
    ends = []
    for r in src.itertuples():
        ends.append(r.final_env_step)
    end = float(np.nanmin(ends)) if ends else 0.0
    grid = np.linspace(0.0, end, n_points)
    out = {}
    for a in dict.fromkeys(use["algorithm"]):
        sub = use[(use["algorithm"] == a) & use["task"].isin(tasks)]
        seeds = [s for s in dict.fromkeys(sub["seed"])
                 if set(sub.loc[sub["seed"] == s, "task"]) >= set(tasks)]
        if not seeds or not tasks:
            continue
        mat = np.empty((len(seeds), len(tasks), n_points))
        for i, s in enumerate(seeds):
            for j, t in enumerate(tasks):
                ev = tidy[(tidy["algorithm"] == a) & (tidy["task"] == t) & (tidy["seed"] == s)]
                ev = ev[np.isfinite(ev["normalized_return"])].sort_values("env_step")
                fin = sub[(sub["seed"] == s) & (sub["task"] == t)].iloc[0]
                if len(ev) == 0:
                    mat[i, j] = fin["final_normalized"]
                    continue
                x = ev["env_step"].to_numpy(float)
                y = ev["normalized_return"].to_numpy(float)
                right = y[-1]
                if fin["status"] == rundir.DIVERGED and diverged_policy == "zero":
                    right = 0.0
                mat[i, j] = np.interp(grid, x, y, left=y[0], right=right)
        out[a] = mat
    return out, grid


def sample_efficiency(curves: Mapping[str, np.ndarray], grid: np.ndarray, reps: int, seed: int) -> pd.DataFrame:
    """IQM over runs x tasks at each grid step with 95% stratified-bootstrap CIs."""
    rows = []
    for a, c in curves.items():
        point = np.array([rmetrics.aggregate_iqm(c[..., g]) for g in range(c.shape[-1])])
        ci = bootstrap([c], iqm_curve_vec, reps, seed)
        for g, step in enumerate(grid):
            rows.append(dict(algorithm=a, env_step=step, iqm=point[g], lower=ci[0, g], upper=ci[1, g]))
    return pd.DataFrame(rows, columns=["algorithm", "env_step", "iqm", "lower", "upper"])
