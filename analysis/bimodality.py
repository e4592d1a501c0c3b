"""Does a GoRL decoder make a second peak where its data's mean changes steeply? (issue 13.3)

GoRL stage k's policy is pi_k(a | s) = decoder_k(s, z), z ~ N(mu_k(s), sigma_k(s)); its
actions are the data that decoder_{k+1} is fitted to, from N(0, I). A decoder fitted to
data that are Gaussian at every state is affine in z (README, "Why GoRL as specified stays
unimodal"), but only up to its fit error; where the data's mean moves faster with the
state than the network resolves, the fit blurs neighbouring states together and its output
can have two peaks (a fit to N(1.5 tanh(s/w), 0.3^2) shows them near s = 0 for w = 0.001).

For every stage pair (k, k+1) of a finished run this module

1. rolls out stage k's policy (``gorl.load_policy(run, stage=k)``: ``stages/stage<k>/encoder_best.pt``
   through ``stages/stage<k>/decoder.pt``, stochastic latent, as the decoder-data collector does) from
   seeded resets and keeps the visited states (trajectories, no resets inside);
2. at every ``stride``-th visited state computes the policy's mean pre-action
   m_k(s) = decoder_k(s, mu_k(s)) and its local steepness along the trajectory, the central
   finite difference |m(s_{t+1}) - m(s_{t-1})| / ||s^_{t+1} - s^_{t-1}|| per action dimension,
   with s^ the state in decoder_{k+1}'s own normalised coordinates (the ones it resolves), and
   the same divided by the data's spread at that state (``rel_steepness``: data standard
   deviations per normalised state unit, the scale on which a fit blurs neighbouring states
   into two peaks; the synthetic switch 1.5 tanh(s/w) + N(0, 0.3^2) with s ~ U(-1, 1) peaks
   at 1.5 / w * 0.577 / 0.3, ~2900 for w = 0.001 and ~144 for w = 0.02);
3. draws K pre-actions from decoder_{k+1}(s, z ~ N(0, I)) (the fitted pushforward of the prior,
   the object the fit targets) and K from stage k's policy itself (the data), and reports for
   both, per action dimension: Sarle's bimodality coefficient (BC), the two-component mixture's
   Ashman D, its smaller weight and its peak separation |mu_high - mu_low|; and the decoder's
   fit error at that state (mean offset and std ratio against the data).

A state's decoder output counts as two-peaked with the suite's usual rule (BC > 5/9,
D > 2, smaller weight >= 0.2). Everything is in pre-tanh units: tanh piles broad actions at
+-1 (bang-bang), which is no property of the decoder.

    python -m analysis.bimodality RUN [RUN ...] --out DIR     # DIR/<run>_bimodality.csv/.png + summary
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.actions import BC_THRESHOLD, bimodality_coefficient, gmm2_rows

TWO_PEAK_D = 2.0
# Peak rel_steepness of the synthetic switch N(1.5 tanh(s / w), 0.3^2), s ~ U(-1, 1), and what a
# fit of the project's decoder (64x4, 10 steps) showed there (tests/test_bimodality.py, README)
SYNTHETIC_REFERENCES = ((1.5 / 0.02 * 0.577 / 0.3, "switch w=0.02: one peak"),
                        (1.5 / 0.001 * 0.577 / 0.3, "switch w=0.001: two peaks"))
TWO_PEAK_WEIGHT = 0.2


def peak_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """(M, K) samples -> per row: bc, ashman_d, w_min, separation, std, mean; and two_peaked."""
    x = np.asarray(x, dtype=float)
    bc = bimodality_coefficient(x, axis=-1)
    fits = gmm2_rows(x.reshape(-1, x.shape[-1]))
    d, wmin, lo, hi = fits.T
    two = (bc > BC_THRESHOLD) & (d > TWO_PEAK_D) & (wmin >= TWO_PEAK_WEIGHT)
    return {"bc": bc, "ashman_d": d, "w_min": wmin, "separation": hi - lo, "std": x.std(-1),
            "mean": x.mean(-1), "two_peaked": two}


def steepness(mean: np.ndarray, obs_hat: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Central finite differences along trajectories.

    mean (T, N, d_a), obs_hat (T, N, d_o) (normalised states), valid (T, N) bool (False where a
    trajectory ended; no difference is taken across it). Returns (T, N, d_a)
    |m_{t+1} - m_{t-1}| / ||s^_{t+1} - s^_{t-1}||, NaN at the ends, across invalid steps and
    where the state did not move."""
    T = mean.shape[0]
    out = np.full(mean.shape, np.nan)
    if T < 3:
        return out
    dm = np.abs(mean[2:] - mean[:-2])
    ds = np.linalg.norm(obs_hat[2:] - obs_hat[:-2], axis=-1)[..., None]
    ok = ds > 1e-9
    if valid is not None:
        ok = ok & (valid[2:] & valid[1:-1] & valid[:-2])[..., None]
    with np.errstate(divide="ignore", invalid="ignore"):
        out[1:-1] = np.where(ok, dm / ds, np.nan)
    return out


@dataclass
class Stage:
    """Stage k's policy pieces and the next decoder, rebuilt from a run directory."""

    k: int
    encoder: object        # GaussianPolicy over z, decoding through decoder_k
    normalizer: object     # the encoder's observation statistics
    decoder: object        # decoder_k (the stage's own)
    next_decoder: object   # decoder_{k+1}, fitted to this stage's actions
    best_env_step: int
    best_return: float


def read_config(run: Path) -> dict:
    from gorl import rundir
    from gorl.errors import RunDirError
    cfg = rundir.read_config(run)
    if cfg is None:
        raise RunDirError(f"{run} has no readable {rundir.CONFIG}")
    return cfg


def stage_pairs(run: Path) -> list[int]:
    """Stages k with both stages/stage<k>/encoder_best.pt and stages/stage<k+1>/decoder.pt."""
    from gorl import rundir
    ks = []
    for d in sorted((run / rundir.STAGES).glob("stage*"), key=lambda p: int(p.name[5:])):
        k = int(d.name[5:])
        if (d / rundir.STAGE_ENCODER_BEST).exists() and \
                (rundir.stage_path(run, k + 1) / rundir.STAGE_DECODER).exists():
            ks.append(k)
    return ks


def load_stage(run: Path, k: int) -> Stage:
    """Stage k's best encoder through decoder_k, and decoder_{k+1}, by :func:`gorl.load_policy`
    (tensor-only files: a shared run directory runs none of its code here)."""
    from gorl.policy import load_decoder, load_policy
    policy = load_policy(run, "best", stage=k)
    return Stage(k, policy.agent, policy.normalizer, policy.decoder, load_decoder(run, k + 1),
                 policy.env_step, float(policy.eval_return))


def visited_states(task: str, seed: int, stage: Stage, n_envs: int, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Roll stage k's policy (stochastic latent) for n_steps in n_envs seeded envs.

    Returns obs (T, N, d_o) and valid (T, N): False from the step where an env's episode ended
    (its later states belong to a new episode and are not used)."""
    import torch
    from gorl.core.run import env_seeds
    from gorl.envs import VectorEnv, make_env
    seeds = env_seeds(seed, 3_000_000 + stage.k, n_envs)  # a stream no training code uses
    envs = VectorEnv([lambda s=s: make_env(task, s) for s in seeds])
    envs.reset(seeds)
    torch.manual_seed(seeds[0])
    obs_rows = np.empty((n_steps, n_envs, envs.obs_dim), np.float32)
    alive = np.ones(n_envs, bool)
    valid = np.zeros((n_steps, n_envs), bool)
    obs = envs.obs
    with torch.no_grad():
        for t in range(n_steps):
            obs_rows[t], valid[t] = obs, alive
            o = torch.as_tensor(obs)
            pre, _ = stage.encoder.act(stage.normalizer(o), o)
            obs, _, term, trunc, _ = envs.step(np.tanh(pre.numpy()))
            alive &= ~(term | trunc)
    return obs_rows, valid


def decoder_samples(decoder, states: np.ndarray, samples: int, gen=None) -> np.ndarray:
    """(M, d_o) raw states -> (M, samples, d_a) pre-actions decoder(s, z), z ~ N(0, I)."""
    import torch
    s = torch.as_tensor(np.asarray(states, np.float32))
    d_a = decoder.net.act_dim
    with torch.no_grad():
        z = torch.randn(s.shape[0] * samples, d_a, generator=gen)
        return decoder(s.repeat_interleave(samples, 0), z).numpy().reshape(s.shape[0], samples, d_a)


def measure_stage(stage: Stage, obs: np.ndarray, valid: np.ndarray, samples: int = 256, stride: int = 5,
                  seed: int = 0) -> pd.DataFrame:
    """One row per (measured state, action dimension); see the module docstring."""
    import torch
    T, N, d_o = obs.shape
    with torch.no_grad():
        flat = torch.as_tensor(obs.reshape(-1, d_o))
        mu, scale = stage.encoder.actor(stage.normalizer(flat))
        mean = stage.decoder(flat, mu).numpy().reshape(T, N, -1)
        obs_hat = stage.next_decoder.normalize(flat).numpy().reshape(T, N, d_o)
    d_a = mean.shape[-1]
    steep = steepness(mean, obs_hat, valid)
    t_idx, n_idx = np.meshgrid(np.arange(1, T - 1, stride), np.arange(N), indexing="ij")
    t_idx, n_idx = t_idx.ravel(), n_idx.ravel()
    keep = np.isfinite(steep[t_idx, n_idx]).all(-1)
    t_idx, n_idx = t_idx[keep], n_idx[keep]
    M = t_idx.shape[0]
    if M == 0:
        return pd.DataFrame()
    s = torch.as_tensor(obs[t_idx, n_idx])
    gen = torch.Generator().manual_seed(seed)
    dec_out = decoder_samples(stage.next_decoder, obs[t_idx, n_idx], samples, gen)
    with torch.no_grad():
        rep = s.repeat_interleave(samples, 0)
        mu_s, sc_s = stage.encoder.actor(stage.normalizer(s))
        zk = mu_s.repeat_interleave(samples, 0) + sc_s.repeat_interleave(samples, 0) * \
            torch.randn(M * samples, d_a, generator=gen)
        data = stage.decoder(rep, zk).numpy().reshape(M, samples, d_a)
    rows = []
    for j in range(d_a):
        dec, dat = peak_stats(dec_out[..., j]), peak_stats(data[..., j])
        rows.append(pd.DataFrame({
            "stage": stage.k, "decoder": stage.k + 1, "env": n_idx, "t": t_idx, "action_dim": j,
            "mean_action": mean[t_idx, n_idx, j], "steepness": steep[t_idx, n_idx, j],
            "rel_steepness": steep[t_idx, n_idx, j] / np.maximum(dat["std"], 1e-9),
            "data_std": dat["std"], "data_bc": dat["bc"], "data_two_peaked": dat["two_peaked"],
            "decoder_mean": dec["mean"], "decoder_std": dec["std"], "bc": dec["bc"], "ashman_d": dec["ashman_d"],
            "w_min": dec["w_min"], "separation": dec["separation"], "two_peaked": dec["two_peaked"],
            "mean_error": np.abs(dec["mean"] - dat["mean"]) / np.maximum(dat["std"], 1e-9),
            "std_ratio": dec["std"] / np.maximum(dat["std"], 1e-9),
            "samples": samples}))
    return pd.concat(rows, ignore_index=True)


def measure_run(run: Path, n_envs: int = 4, n_steps: int = 500, samples: int = 256, stride: int = 5,
                seed: int = 0) -> pd.DataFrame:
    """The per-state table for every stage pair of a GoRL run directory."""
    meta = read_config(run)
    tabs = []
    for k in stage_pairs(run):
        st = load_stage(run, k)
        obs, valid = visited_states(meta["task"], int(meta["seed"]), st, n_envs, n_steps)
        tab = measure_stage(st, obs, valid, samples=samples, stride=stride, seed=seed + k)
        tab.insert(0, "encoder_return", st.best_return)
        tab.insert(0, "encoder_env_step", st.best_env_step)
        tabs.append(tab)
    out = pd.concat(tabs, ignore_index=True) if tabs else pd.DataFrame()
    for key in ("seed", "task", "algorithm"):
        out.insert(0, key, meta[key])
    return out


def summarise(tab: pd.DataFrame, steep_quantile: float = 0.9) -> pd.DataFrame:
    """Per (algorithm, task, seed, stage): states, two-peaked share overall and among the steepest
    (top 1 - steep_quantile of steepness) vs the rest, medians of BC and fit errors, and the
    Spearman correlation of steepness with BC."""
    rows = []
    keys = ["algorithm", "task", "seed", "stage"]
    for key, g in tab.groupby(keys, sort=True):
        cut = g["steepness"].quantile(steep_quantile)
        steep, flat = g[g["steepness"] >= cut], g[g["steepness"] < cut]
        rows.append(dict(zip(keys, key), rows=len(g), encoder_return=g["encoder_return"].iloc[0],
                         two_peaked=float(g["two_peaked"].mean()), data_two_peaked=float(g["data_two_peaked"].mean()),
                         two_peaked_steepest=float(steep["two_peaked"].mean()),
                         two_peaked_rest=float(flat["two_peaked"].mean()),
                         steepness_median=float(g["steepness"].median()), steepness_cut=float(cut),
                         rel_steepness_median=float(g["rel_steepness"].median()),
                         rel_steepness_max=float(g["rel_steepness"].max()),
                         data_std_median=float(g["data_std"].median()),
                         bc_median=float(g["bc"].median()), bc_p99=float(g["bc"].quantile(0.99)),
                         data_bc_median=float(g["data_bc"].median()),
                         d_p99=float(g["ashman_d"].quantile(0.99)),
                         separation_max_two_peaked=float(g.loc[g["two_peaked"], "separation"].max())
                         if g["two_peaked"].any() else 0.0,
                         mean_error_median=float(g["mean_error"].median()),
                         mean_error_p90=float(g["mean_error"].quantile(0.9)),
                         std_ratio_median=float(g["std_ratio"].median()),
                         spearman_steepness_bc=float(g["steepness"].rank().corr(g["bc"].rank()))))
    return pd.DataFrame(rows)


def figure(tab: pd.DataFrame, path: Path, title: str = "") -> None:
    """BC and Ashman D of the decoder output against steepness, one colour per stage pair."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    cmap = plt.get_cmap("viridis")
    stages = sorted(tab["stage"].unique())
    for i, k in enumerate(stages):
        g = tab[tab["stage"] == k]
        c = cmap(i / max(1, len(stages) - 1))
        lab = f"encoder {k} -> decoder {k + 1}"
        x = g["rel_steepness"].clip(lower=1e-4)
        axes[0].scatter(x, g["bc"], s=4, alpha=0.4, color=c, label=lab)
        axes[1].scatter(x, g["ashman_d"], s=4, alpha=0.4, color=c, label=lab)
        tp = g[g["two_peaked"]]
        for ax, col in ((axes[0], "bc"), (axes[1], "ashman_d")):
            ax.scatter(tp["rel_steepness"].clip(lower=1e-4), tp[col], s=28, facecolors="none", edgecolors="red",
                       lw=0.8)
        axes[2].scatter(g["data_bc"], g["bc"], s=4, alpha=0.4, color=c, label=lab)
    axes[0].axhline(BC_THRESHOLD, color="grey", ls="--", lw=0.8)
    axes[0].axhline(1 / 3, color="grey", ls=":", lw=0.8)
    axes[1].axhline(TWO_PEAK_D, color="grey", ls="--", lw=0.8)
    for ax, yl in ((axes[0], "BC of decoder_{k+1}(s, z ~ N(0, I))"), (axes[1], "Ashman D (2-component fit)")):
        ax.set_xscale("log")
        ax.set_xlabel("steepness of stage k's mean pre-action |dm/ds^| / data std")
        ax.set_ylabel(yl)
        for ref, txt in SYNTHETIC_REFERENCES:
            ax.axvline(ref, color="black", ls=":", lw=0.8)
            ax.text(ref, ax.get_ylim()[1], txt, fontsize=6, rotation=90, va="top", ha="right")
    lim = [0.1, max(1.0, float(np.nanmax(tab[["bc", "data_bc"]].to_numpy())) + 0.05)]
    axes[2].plot(lim, lim, color="grey", lw=0.8)
    axes[2].axhline(BC_THRESHOLD, color="grey", ls="--", lw=0.8)
    axes[2].set_xlabel("BC of stage k's own actions (the decoder's data)")
    axes[2].set_ylabel("BC of the fitted decoder's output")
    axes[0].legend(fontsize=7, markerscale=3, loc="upper left")
    n_tp = int(tab["two_peaked"].sum())
    fig.suptitle(f"{title}  (red rings: two-peaked decoder output, {n_tp} of {len(tab)} state x dim rows; "
                 f"BC > 5/9, D > 2, w_min >= 0.2)", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_label(tab: pd.DataFrame) -> str:
    r = tab.iloc[0]
    return f"{r['algorithm']}-{r['task']}-{r['seed']}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="finished GoRL run directories")
    ap.add_argument("--out", type=Path, required=True, help="folder for <run>_bimodality.csv/.png and summary.csv")
    ap.add_argument("--envs", type=int, default=4)
    ap.add_argument("--steps", type=int, default=500, help="trajectory length per env")
    ap.add_argument("--samples", type=int, default=256, help="decoder samples per state")
    ap.add_argument("--stride", type=int, default=5, help="measure every stride-th visited state")
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    summaries = []
    from gorl.errors import RunDirError
    for run in args.runs:
        try:
            tab = measure_run(run, args.envs, args.steps, args.samples, args.stride)
        except RunDirError as e:  # e.g. a stage file holding more than tensors: refused, nothing run
            raise SystemExit(f"analysis.bimodality: error: {e}") from None
        if tab.empty:
            print(f"{run}: no stage pair (stages/stage<k>/encoder_best.pt + stages/stage<k+1>/decoder.pt)")
            continue
        label = run_label(tab)
        args.out.mkdir(parents=True, exist_ok=True)
        tab.to_csv(args.out / f"{label}_bimodality.csv", index=False)
        figure(tab, args.out / f"{label}_bimodality.png", title=label)
        summaries.append(summarise(tab))
    if summaries:
        summary = pd.concat(summaries, ignore_index=True)
        summary.to_csv(args.out / "summary.csv", index=False)
        with pd.option_context("display.width", 250, "display.max_columns", 40):
            print(summary.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
