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

import torch
import torch.nn.functional as F

from gorl import rundir
from gorl.policy import load_decoder, load_policy

SAMPLES = 4000
FRESH_SCALE = float(F.softplus(torch.zeros(())) + 1e-3)  # a fresh actor's latent scale


@torch.no_grad()
def report(run: Path) -> None:
    meta = rundir.read_config(run)
    probes = rundir.read_probes(run)
    states = torch.as_tensor(probes["states"])
    P, act_dim = states.shape[0], probes["actions"].shape[-1]
    raw = states.repeat_interleave(SAMPLES, 0)
    torch.manual_seed(0)
    print(f"{run}: {meta['algorithm']} on {meta['task']}, preset {meta['preset']}, seed {meta['seed']}; "
          f"median over {P} probe states (and action dims) of std ratios, {SAMPLES} samples each")
    print(f"{'boundary':>8} {'std(data)':>9} {'decoder(N(0,1))/data':>21} {'decoder(fresh encoder)/data':>28}")
    k = 0
    while (rundir.stage_path(run, k) / rundir.STAGE_ENCODER_BEST).exists() and \
            (rundir.stage_path(run, k + 1) / rundir.STAGE_DECODER).exists():
        stage = load_policy(run, "best", stage=k)  # stage k's best encoder through decoder_k
        data = stage.agent.sample_actions(stage.normalizer(states), states, SAMPLES)  # (P, K, d_a), pre-tanh
        decoder = load_decoder(run, k + 1)
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
