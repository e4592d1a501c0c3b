"""Action-distribution figure (probe actions through training) and the bimodality table."""
import sys

import pandas as pd

from analysis import actions, collect, figures
from analysis.style import resolve_styles

sm = snakemake  # noqa: F821
sys.stdout = sys.stderr = open(sm.log[0], "w")  # warnings and tracebacks go to the rule's log
p = sm.params
styles = resolve_styles(p.algorithms, p.styles)
probes, tables = {}, []
for a in p.algorithms:
    pr = collect.read_probes(p.runs, a, p.task, p.seed)
    probes[a] = pr
    if pr is not None:
        tables.append(actions.bimodality_table(pr, p.action_dim, p.probe_state, p.snapshots,
                                               algorithm=a, task=p.task, seed=p.seed))
figures.action_distribution(probes, styles, sm.output.png[: -len(".png")], task=p.task, action_dim=p.action_dim,
                            probe_state=p.probe_state, n_snapshots=p.snapshots, seed_of={a: p.seed for a in probes})
tab = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(
    columns=["algorithm", "task", "seed", "eval_index", "env_step", "bc", "ashman_d"])
tab.to_csv(sm.output.table, index=False)
