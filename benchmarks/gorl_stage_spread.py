"""How much of its decoder data's spread each GoRL stage starts with, per probe state.

    python benchmarks/gorl_stage_spread.py RUN_DIR [RUN_DIR ...]

Reads a finished (or running) GoRL run directory: the probe states (probes.npz), each
stage's best encoder (stages/stageK/encoder_best.pt) and decoders (stages/stageK/decoder.pt).
For every stage boundary k -> k+1 it draws the decoder data's distribution at each probe
state (the stage's best encoder, stochastic, through its decoder: what the collector
records, pre-tanh), then pushes N(0, 1) and the fresh encoder's N(0, 0.69^2) (softplus(0),
spec 6.2) through the refitted decoder, and prints the median ratio of standard deviations.
A ratio below 1 means the next stage starts narrower than the data its decoder was fitted to.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from gorl import registry, rundir
from gorl.algorithm.decoder import Decoder
from gorl.algorithm.gorl import make_encoder
from gorl.core.normalizer import RunningNormalizer

SAMPLES = 4000
FRESH_SCALE = float(F.softplus(torch.zeros(())) + 1e-3)  # a fresh actor's latent scale


def load_decoder(run: Path, k: int, cfg, obs_dim: int, act_dim: int) -> Decoder:
    d = torch.load(rundir.stage_path(run, k) / rundir.STAGE_DECODER, weights_only=False)
    dec = Decoder(d["kind"], obs_dim, act_dim, cfg.decoder_hidden, cfg.decoder_steps, identity=d["identity"])
    dec.load_state_dict(d["state"])
    return dec


@torch.no_grad()
def report(run: Path) -> None:
    meta = yaml.safe_load((run / rundir.CONFIG).read_text())
    cfg = registry.get(meta["algorithm"]).config_cls(**meta["hyperparameters"])
    probes = np.load(run / rundir.PROBES)
    states = torch.as_tensor(probes["states"])
    (P, obs_dim), act_dim = states.shape, probes["actions"].shape[-1]
    raw = states.repeat_interleave(SAMPLES, 0)
    torch.manual_seed(0)
    print(f"{run}: {meta['algorithm']} on {meta['task']}, preset {meta['preset']}, seed {meta['seed']}; "
          f"median over {P} probe states (and action dims) of std ratios, {SAMPLES} samples each")
    print(f"{'boundary':>8} {'std(data)':>9} {'decoder(N(0,1))/data':>21} {'decoder(fresh encoder)/data':>28}")
    k = 0
    while (rundir.stage_path(run, k) / rundir.STAGE_ENCODER_BEST).exists() and \
            (rundir.stage_path(run, k + 1) / rundir.STAGE_DECODER).exists():
        best = torch.load(rundir.stage_path(run, k) / rundir.STAGE_ENCODER_BEST, weights_only=False)
        encoder = make_encoder(cfg, k, obs_dim, act_dim, load_decoder(run, k, cfg, obs_dim, act_dim))
        encoder.load_state_dict(best["agent"])
        normalizer = RunningNormalizer(obs_dim, cfg.obs_norm_mode)
        normalizer.load_state_dict(best["normalizer"])
        data = encoder.sample_actions(normalizer(states), states, SAMPLES)  # (P, K, d_a), pre-tanh
        decoder = load_decoder(run, k + 1, cfg, obs_dim, act_dim)
        z = torch.randn(P * SAMPLES, act_dim)
        prior = decoder(raw, z).reshape(P, SAMPLES, act_dim)
        fresh = decoder(raw, FRESH_SCALE * z).reshape(P, SAMPLES, act_dim)
        sd = data.std(1)
        print(f"{k:>3} -> {k + 1:<2} {sd.median():9.3f} {(prior.std(1) / sd).median():21.2f} "
              f"{(fresh.std(1) / sd).median():28.2f}")
        k += 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    for run in ap.parse_args().runs:
        report(run)


if __name__ == "__main__":
    main()
