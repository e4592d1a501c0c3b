"""Collect every run directory into the tidy table, the final-score table and the problem list."""
import logging

from analysis import collect

sm = snakemake  # noqa: F821
logging.basicConfig(filename=sm.log[0], level=logging.INFO, format="%(message)s")
expected = [tuple(r) for r in sm.params.expected]
tidy, finals = collect.collect(sm.params.runs, expected=expected, diverged_policy=sm.params.diverged_policy)
ignored = collect.ignored_runs(sm.params.runs, expected)
collect.save(tidy, finals, {"tidy_parquet": sm.output.tidy_parquet, "tidy_csv": sm.output.tidy_csv,
                            "finals": sm.output.finals, "problems": sm.output.problems}, ignored=ignored)
logging.info("%d evaluation rows, %d runs: %s", len(tidy), len(finals), finals["status"].value_counts().to_dict())
bad = collect.problems(finals, ignored)
if len(bad):
    logging.warning("runs without a final score:\n%s", bad.to_string(index=False))
mixed = collect.mixed_attempts(finals)
if len(mixed):
    logging.warning("runs resumed under other code or on another kind of device than they started with "
                    "(final_scores.csv: attempts, code_changes, device_changes):\n%s", mixed.to_string(index=False))
