"""Reproduced final scores next to the paper's reported numbers (CSV + Markdown)."""
import sys
from pathlib import Path

import pandas as pd

from analysis import paper

sm = snakemake  # noqa: F821
sys.stdout = sys.stderr = open(sm.log[0], "w")  # warnings and tracebacks go to the rule's log
table = paper.comparison(pd.read_csv(sm.input.finals))
table.to_csv(sm.output.csv, index=False)
Path(sm.output.md).write_text(paper.markdown(table, sm.params.styles))
