"""Reproduced final scores next to the paper's reported numbers (CSV + Markdown)."""
from pathlib import Path

import pandas as pd

from analysis import paper

sm = snakemake  # noqa: F821
table = paper.comparison(pd.read_csv(sm.input.finals))
table.to_csv(sm.output.csv, index=False)
Path(sm.output.md).write_text(paper.markdown(table, sm.params.styles))
