"""Episode filters for the decoder's training data (spec 6.3, 6.7: off by default).

The reference decoder trainer can keep only part of the collected data, ranked by
return, before the fit (train_decoder_fm.py, ``--fm_reward_percentile``,
``--fm_min_episode_reward``, ``--fm_hybrid_sampling``); the paper's pipeline passes none
of them, so ``"none"`` is the default here and the faithful setting. Modes:

- ``percentile``: keep the units whose return is >= the q-quantile of all returns.
- ``min_return``: keep the units whose return is >= a fixed value.
- ``hybrid``: n = number of units; draw n_high = round(ratio * n) units from the ones at or
  above the q-quantile (without replacement when there are enough, else with) plus the
  remaining n - n_high uniformly from all units (without replacement).

What a *unit* is (``decoder_filter_unit``):

- ``episodes``: true episodes, with the return each one collected (the rows of an episode
  still running when collection ends are dropped).
- ``reference_blocks``: exactly what the reference calls an episode. Its trainer cuts the
  time-major flattened rows (step-major: the N envs of step 0, then of step 1, ...) into
  consecutive blocks of 1000 rows and ranks each block by the sum of its rewards; with
  2048 collector envs a block is about one time step of 1000 different envs, not an
  episode. Its hybrid threshold ``np.percentile(block_returns, q * 100)`` is an ordinary
  scalar percentile (it runs), and it takes ``int(ratio * n)`` high-return blocks (rounded
  down), which ``reference=True`` reproduces here.
"""
from __future__ import annotations

import numpy as np

FILTERS = ("none", "percentile", "min_return", "hybrid")
FILTER_UNITS = ("episodes", "reference_blocks")
REFERENCE_BLOCK_ROWS = 1000
"""Rows per 'episode' in the reference's decoder trainer (its episode length)."""


def select_episodes(returns: np.ndarray, mode: str, *, quantile: float = 0.5, min_return: float = 0.0,
                    high_quality_ratio: float = 0.8, rng: np.random.Generator,
                    reference: bool = False) -> np.ndarray:
    """Indices into ``returns`` of the units to train on (repeats possible in ``hybrid``).

    ``reference``: the reference's hybrid count ``int(ratio * n)`` (rounded down) instead of round."""
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
    n_high = int(high_quality_ratio * n) if reference else int(round(high_quality_ratio * n))
    picked_high = rng.choice(high, n_high, replace=len(high) < n_high)
    picked_any = rng.choice(n, n - n_high, replace=False)
    return np.concatenate([picked_high, picked_any])


def reference_blocks(rewards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's 'episodes' of time-major rows: ``rewards`` (S, N) -> the block of each
    flattened row (-1 for the last, incomplete block) and each complete block's reward sum."""
    flat = np.asarray(rewards, dtype=np.float64).reshape(-1)
    n_blocks = flat.shape[0] // REFERENCE_BLOCK_ROWS
    block_return = flat[:n_blocks * REFERENCE_BLOCK_ROWS].reshape(n_blocks, REFERENCE_BLOCK_ROWS).sum(1)
    row_block = np.arange(flat.shape[0]) // REFERENCE_BLOCK_ROWS
    return np.where(row_block < n_blocks, row_block, -1), block_return


def rows_of_episodes(row_episode: np.ndarray, selected: np.ndarray, num_episodes: int) -> np.ndarray:
    """Row indices for the selected episodes (an episode picked twice gives its rows twice).

    ``row_episode[i]`` is the episode of row i, or -1 for rows of an episode still running
    when collection ended (no return to rank it by: never selected).
    """
    copies = np.bincount(selected, minlength=num_episodes)
    per_row = np.where(row_episode >= 0, copies[np.maximum(row_episode, 0)], 0)
    return np.repeat(np.arange(row_episode.shape[0]), per_row)


def stage_seed(seed: int, stage: int, purpose: int) -> int:
    """A seed for one purpose of one stage of a run (the v1 scheme; GoRLConfig.seed_scheme)."""
    return int(np.random.SeedSequence([seed, stage, purpose]).generate_state(1)[0])


def episodes_of_rows(done: np.ndarray, return_at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Episode ids of time-major rows (S, N) and each episode's return (NaN while running).

    Env i's first episode is id i; every episode end, in (step, env) order, opens the next id
    (N, N + 1, ...) for that env. ``done[s, i]`` marks the last row of an episode and
    ``return_at[s, i]`` its return there. Returns ``row_episode`` (S * N,) and ``episode_return``.
    """
    S, N = done.shape
    event = np.full((S, N), -1)
    event[done] = np.arange(int(done.sum()))  # row-major: (step, env) order
    # the last episode end of each env strictly before row s
    last_row = np.maximum.accumulate(np.where(done, np.arange(S)[:, None], -1), axis=0)
    before = np.vstack([np.full((1, N), -1), last_row[:-1]])
    prev_event = np.where(before >= 0, event[np.maximum(before, 0), np.arange(N)], -1)
    row_episode = np.where(prev_event >= 0, N + prev_event, np.arange(N))
    episode_return = np.full(N + int(done.sum()), np.nan)
    episode_return[row_episode[done]] = return_at[done]
    return row_episode.reshape(-1), episode_return
