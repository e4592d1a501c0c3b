"""Names of Playground's tasks, importable without JAX or torch (configs are resolved per task
name, gorl.config.select_task, long before anything is built)."""
from __future__ import annotations

PLAYGROUND_PREFIX = "playground:"
# The paper's six tasks and the CPU test task, with their dm_control suite names.
SUITE_NAMES = {"CheetahRun": "cheetah-run", "FingerSpin": "finger-spin", "FingerTurnHard": "finger-turn_hard",
               "FishSwim": "fish-swim", "HopperStand": "hopper-stand", "WalkerWalk": "walker-walk",
               "HumanoidStand": "humanoid-stand", "HumanoidRun": "humanoid-run",
               "CartpoleBalance": "cartpole-balance"}
PAPER_TASKS = tuple(f"{PLAYGROUND_PREFIX}{n}" for n in SUITE_NAMES if n != "CartpoleBalance")


def suite_name(task: str) -> str:
    """``playground:FingerSpin`` -> ``finger-spin`` (for per-task settings); others unchanged."""
    if task.startswith(PLAYGROUND_PREFIX):
        return SUITE_NAMES.get(task[len(PLAYGROUND_PREFIX):], task)
    return task
