"""rliable statistics: aggregate metrics, probability of improvement, profiles, sample efficiency."""
import logging

import numpy as np
import pandas as pd

from analysis import stats

sm = snakemake  # noqa: F821
p = sm.params
logging.basicConfig(filename=sm.log[0], level=logging.INFO, format="%(asctime)s %(message)s")
tidy = pd.read_parquet(sm.input.tidy)
finals = pd.read_csv(sm.input.finals)
scores, tasks, excluded = stats.score_matrices(finals)
logging.info("score matrices over tasks %s: %s", tasks, {a: s.shape for a, s in scores.items()})
stats.aggregate_metrics(scores, p.reps, p.seed).to_csv(sm.output.aggregate, index=False)
styles = {a: {"family": f} for a, f in p.families.items()}
pairs = stats.family_pairs([a for a in p.families if a in scores], styles)
stats.probability_of_improvement(scores, pairs, p.reps, p.seed).to_csv(sm.output.poi, index=False)
stats.performance_profiles(scores, np.linspace(0, 1, p.profile_points), p.reps, p.seed).to_csv(
    sm.output.profiles, index=False)
curves, grid = stats.curves_on_grid(tidy, finals, tasks, p.curve_points, p.diverged_policy)
stats.sample_efficiency(curves, grid, p.reps, p.seed).to_csv(sm.output.curves, index=False)
excluded.to_csv(sm.output.exclusions, index=False)
logging.info("done")
