"""Episode filters for the decoder's training data (spec 6.3, 6.7: off by default).

The reference decoder trainer can keep only part of the collected episodes, ranked by
episode return, before the fit (train_decoder_fm.py, ``--fm_reward_percentile``,
``--fm_min_episode_reward``, ``--fm_hybrid_sampling``); the paper's pipeline passes none
of them, so ``"none"`` is the default here and the faithful setting. Modes:

- ``percentile``: keep the episodes whose return is >= the q-quantile of all returns.
- ``min_return``: keep the episodes whose return is >= a fixed value.
- ``hybrid``: n = number of episodes; draw round(ratio * n) episodes from the ones at or
  above the q-quantile (without replacement when there are enough, else with) plus the
  remaining n - round(ratio * n) uniformly from all episodes (without replacement).

The reference computes the hybrid threshold as ``np.percentile(returns, [q] * 100)``,
a vector of 100 copies of the q-th *per*centile that then fails in an ``if``; the
intended q-quantile is used here.
"""
from __future__ import annotations

import numpy as np

FILTERS = ("none", "percentile", "min_return", "hybrid")


def select_episodes(returns: np.ndarray, mode: str, *, quantile: float = 0.5, min_return: float = 0.0,
                    high_quality_ratio: float = 0.8, rng: np.random.Generator) -> np.ndarray:
    """Indices into ``returns`` of the episodes to train on (repeats possible in ``hybrid``)."""
    returns = np.asarray(returns, dtype=np.float64)
    n = returns.shape[0]
    if mode not in FILTERS:
        raise ValueError(f"decoder_data_filter must be one of {FILTERS}, got {mode!r}")
    if mode == "none" or n == 0:
        return np.arange(n)
    if mode == "min_return":
        return np.flatnonzero(returns >= min_return)
    high = np.flatnonzero(returns >= np.quantile(returns, quantile))
    if mode == "percentile":
        return high
    n_high = int(round(high_quality_ratio * n))
    picked_high = rng.choice(high, n_high, replace=len(high) < n_high)
    picked_any = rng.choice(n, n - n_high, replace=False)
    return np.concatenate([picked_high, picked_any])


def rows_of_episodes(row_episode: np.ndarray, selected: np.ndarray, num_episodes: int) -> np.ndarray:
    """Row indices for the selected episodes (an episode picked twice gives its rows twice).

    ``row_episode[i]`` is the episode of row i, or -1 for rows of an episode still running
    when collection ended (no return to rank it by: never selected).
    """
    copies = np.bincount(selected, minlength=num_episodes)
    per_row = np.where(row_episode >= 0, copies[np.maximum(row_episode, 0)], 0)
    return np.repeat(np.arange(row_episode.shape[0]), per_row)
