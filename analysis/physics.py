"""Which physics a task runs on, for the reproduced-vs-reported table (spec 1.1).

The paper trained on MuJoCo Playground's MJX ports of the DeepMind Control Suite; a
suite name (``cheetah-run``) here runs dm_control's own models, whose timestep, integrator
and solver settings differ for some tasks. The per-task facts live in one place,
``data/task_physics.csv``; this module turns them into the table's ``physics`` column.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

PHYSICS_CSV = Path(__file__).parent / "data" / "task_physics.csv"
PLAYGROUND_PREFIX = "playground:"
GYM_PREFIX = "gym:"
PLAYGROUND = "Playground (MJX)"
DM_CONTROL = "dm_control"


@lru_cache(maxsize=None)
def read_physics(path: Path = PHYSICS_CSV) -> pd.DataFrame:
    return pd.read_csv(path, comment="#", dtype={"task": str, "paper_task": str})


def paper_key(task: str) -> str:
    """The suite name the paper's numbers are stored under (``playground:CheetahRun`` -> ``cheetah-run``).

    Playground names outside the table, and every other name, are returned unchanged.
    """
    if task.startswith(PLAYGROUND_PREFIX):
        rows = read_physics()
        hit = rows[rows["paper_task"] == task[len(PLAYGROUND_PREFIX):]]
        if len(hit):
            return str(hit["task"].iloc[0])
    return task


def physics(task: str) -> str:
    """The table's physics column for one task name.

    ``playground:<Name>`` -> "Playground (MJX)" (the paper's physics); a dm_control suite
    name -> "dm_control", followed, for tasks the paper ran, by how its Playground port
    differs; ``gym:<id>`` -> "gymnasium".
    """
    if task.startswith(PLAYGROUND_PREFIX):
        rows = read_physics()
        hit = rows[(rows["paper_task"] == task[len(PLAYGROUND_PREFIX):]) & rows["in_paper"]]
        return f"{PLAYGROUND}, as in the paper" if len(hit) else PLAYGROUND
    if task.startswith(GYM_PREFIX):
        return "gymnasium (not a paper task)"
    rows = read_physics()
    hit = rows[rows["task"] == task]
    if not len(hit):
        return DM_CONTROL
    r = hit.iloc[0]
    whose = "the paper's" if r.in_paper else "the"
    return (f"{DM_CONTROL} (sim {r.dmc_sim_dt:g} s, {r.dmc_integrator}, {r.dmc_iterations} solver iterations); "
            f"{whose} {PLAYGROUND} port {r.paper_task}, Playground vs dm_control: {r.differences}")


def physics_tag(task: str) -> str:
    """A short name of the physics a task ran on, for a table row: "MJX" (a ``playground:``
    task, the paper's physics), "dm_control" (a suite name) or "gymnasium"."""
    if task.startswith(PLAYGROUND_PREFIX):
        return "MJX"
    return "gymnasium" if task.startswith(GYM_PREFIX) else DM_CONTROL
