"""Draw one figure (chosen by the rule name) as PNG + PDF."""
import sys

import pandas as pd

from analysis import figures
from analysis.style import resolve_styles

sm = snakemake  # noqa: F821
sys.stdout = sys.stderr = open(sm.log[0], "w")  # warnings and tracebacks go to the rule's log
name = sm.rule.removeprefix("figure_")
stem = sm.output.png[: -len(".png")]
if name == "learning_curves":
    df = pd.read_parquet(sm.input.tidy)
    styles = resolve_styles(list(dict.fromkeys([*sm.params.styles, *df["algorithm"]])), sm.params.styles)
    figures.learning_curves(df, styles, stem, tasks=sm.params.tasks)
else:
    try:
        df = pd.read_csv(sm.input.table)
    except pd.errors.EmptyDataError:
        df = pd.DataFrame()
    names = [*sm.params.styles]
    for col in ("algorithm", "algorithm_x", "algorithm_y"):
        if col in df:
            names += list(df[col])
    styles = resolve_styles(list(dict.fromkeys(names)), sm.params.styles)
    {"aggregate_metrics": figures.aggregate_intervals,
     "probability_of_improvement": figures.probability_of_improvement,
     "performance_profiles": figures.performance_profiles,
     "sample_efficiency": figures.sample_efficiency}[name](df, styles, stem)
