"""GoRL decoder bimodality vs steepness of the previous stage's mean (analysis/bimodality.py)."""
import contextlib
import sys
from pathlib import Path

import pandas as pd
import torch

from analysis import bimodality

sm = snakemake  # noqa: F821
p = sm.params
torch.set_num_threads(1)
with open(sm.log[0], "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
    run = Path(sm.input.run).parent
    tab = bimodality.measure_run(run, n_envs=p.envs, n_steps=p.steps, samples=p.samples, stride=p.stride)
    if tab.empty:
        print(f"{run}: no stage pair (stages/stage<k>/encoder_best.pt + stages/stage<k+1>/decoder.pt)")
        pd.DataFrame(columns=["algorithm", "task", "seed", "stage", "steepness", "bc", "ashman_d"]).to_csv(
            sm.output.table, index=False)
        pd.DataFrame(columns=["algorithm", "task", "seed", "stage", "two_peaked"]).to_csv(sm.output.summary,
                                                                                          index=False)
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.text(0.5, 0.5, f"{sm.wildcards.algo}: no finished stage pair in {run}", ha="center", va="center")
        ax.axis("off")
        fig.savefig(sm.output.png)
    else:
        tab.to_csv(sm.output.table, index=False)
        summary = bimodality.summarise(tab)
        summary.to_csv(sm.output.summary, index=False)
        bimodality.figure(tab, Path(sm.output.png), title=bimodality.run_label(tab))
        print(summary.to_string(index=False), file=sys.stdout)
