"""The GoRL decoder-bimodality measurement (analysis/bimodality.py, issue 13 point 3) on
synthetic decoders whose answer is known, and end to end on a tiny GoRL run."""
import numpy as np
import pandas as pd
import pytest
import torch

from analysis import bimodality as bm
from gorl.algorithm.config import DecoderFitConfig
from gorl.algorithm.decoder import Decoder, fit_decoder

GRID = np.array([-0.5, -0.2, -0.01, 0.0, 0.01, 0.2, 0.5], np.float32)[:, None]


def test_steepness_is_the_derivative_along_the_trajectory_and_skips_ends():
    s = np.linspace(-1, 1, 201)
    w = 0.1
    obs = np.stack([s, np.zeros_like(s)], -1)[:, None, :]          # (T, 1, 2): moves along dimension 0
    mean = np.tanh(s / w)[:, None, None]                              # (T, 1, 1)
    st = bm.steepness(mean, obs)[:, 0, 0]
    assert np.isnan(st[0]) and np.isnan(st[-1])
    np.testing.assert_allclose(st[1:-1], np.abs(1 / w / np.cosh(s[1:-1] / w) ** 2), rtol=0.02, atol=1e-3)
    valid = np.ones((201, 1), bool)
    valid[100:] = False                                               # the episode ended at t = 100
    st2 = bm.steepness(mean, obs, valid)[:, 0, 0]
    assert np.isfinite(st2[1:99]).all() and np.isnan(st2[99:]).all()


@pytest.mark.parametrize("kind", ["fm", "diffusion"])
def test_affine_decoder_has_no_second_peak(kind):
    """The identity decoder (the stage-0 one; an affine map of z) pushes N(0, I) to a Gaussian:
    BC near 1/3 and no state counts as two-peaked."""
    dec = Decoder.identity(kind, 1, 1, [64, 64])
    x = bm.decoder_samples(dec, GRID, 1024, torch.Generator().manual_seed(0))[..., 0]
    st = bm.peak_stats(x)
    assert not st["two_peaked"].any()
    assert np.all(np.abs(st["bc"] - 1 / 3) < 0.06), st["bc"]


def _switch_decoder(w: float) -> Decoder:
    """The project's decoder (64x4, 10 Euler steps) fitted to a ~ N(1.5 tanh(s / w), 0.3^2), s ~ U(-1, 1)."""
    rng = np.random.default_rng(0)
    n = 20000
    s = rng.uniform(-1, 1, n).astype(np.float32)[:, None]
    a = (1.5 * np.tanh(s[:, 0] / w) + 0.3 * rng.normal(size=n)).astype(np.float32)[:, None]
    cfg = DecoderFitConfig(hidden=[64] * 4, steps=10, learning_rate=1e-3, batch_size=512, max_epochs=10,
                           patience=10, mc_samples=8, max_samples=10**7, val_fraction=0.1, max_val_batches=5)
    dec, _ = fit_decoder("fm", s, a, cfg, seed=0, device=torch.device("cpu"))
    return dec


def test_decoder_fitted_across_a_sharp_switch_has_two_peaks_near_the_switch_only():
    """Data Gaussian at every state, but the mean jumps from -1.5 to +1.5 within w = 0.001:
    the fit cannot resolve it, so at s ~ 0 its output mixes both sides (two separated peaks),
    while away from the switch it is one peak at the right place."""
    torch.set_num_threads(1)
    dec = _switch_decoder(0.001)
    x = bm.decoder_samples(dec, GRID, 1024, torch.Generator().manual_seed(0))[..., 0]
    st = bm.peak_stats(x)
    print({f"{g:+.2f}": (round(float(b), 2), round(float(d), 2), bool(t))
           for g, b, d, t in zip(GRID[:, 0], st["bc"], st["ashman_d"], st["two_peaked"])})
    centre = np.abs(GRID[:, 0]) <= 0.011
    far = np.abs(GRID[:, 0]) >= 0.5
    assert st["two_peaked"][centre].all()
    assert (st["separation"][centre] > 1.5).all()                  # peaks near -1.5 and +1.5, not a blur
    assert not st["two_peaked"][far].any()
    np.testing.assert_allclose(st["mean"][far], [-1.5, 1.5], atol=0.2)


def test_measure_run_end_to_end_on_a_tiny_gorl_run(tmp_path, gorl_smoke_run):
    run = gorl_smoke_run[0]  # conftest: GoRL-FM smoke, two stages (read only)
    assert bm.stage_pairs(run) == [0]
    tab = bm.measure_run(run, n_envs=2, n_steps=30, samples=64, stride=3)
    assert set(tab["stage"]) == {0} and set(tab["decoder"]) == {1} and len(tab) == 2 * 10
    for col in ("steepness", "rel_steepness", "bc", "ashman_d", "separation", "data_bc", "mean_error", "std_ratio"):
        assert np.isfinite(tab[col]).all(), col
    # stage 0 is Gaussian PPO through the identity decoder: its own actions are Gaussian per state
    assert tab["data_bc"].median() < 0.45 and not tab["data_two_peaked"].any()
    summ = bm.summarise(tab)
    assert list(summ["stage"]) == [0] and summ["rows"].iloc[0] == len(tab)
    out = tmp_path / "out"
    bm.main([str(run), "--out", str(out), "--envs", "2", "--steps", "30", "--samples", "64", "--stride", "3"])
    assert (out / "gorl_fm-cartpole-balance-0_bimodality.png").stat().st_size > 10_000
    assert len(pd.read_csv(out / "gorl_fm-cartpole-balance-0_bimodality.csv")) == len(tab)
    assert len(pd.read_csv(out / "summary.csv")) == 1
