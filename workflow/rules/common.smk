# What the rules need from the experiment: gorl.experiment validates the config (schema,
# algorithms, tasks, presets, `set` keys) and expands it into runs; this file only names paths.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

REPO = Path(workflow.current_basedir).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# jobs (scripts, the training CLI) import gorl/ and analysis/ from this checkout
# (set with update(): the envvars lint reads every os.environ[...] as a required variable)
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
)
os.environ.setdefault("MUJOCO_GL", "disable")

import logging

_ROOT_HANDLERS = list(logging.getLogger().handlers)

from gorl import experiment, rundir
from gorl.errors import BadInput

try:
    # fills the schema's defaults into `config`; a job's own Snakemake process (a SLURM job step)
    # skips the task checks the main process made (for playground: tasks, importing Playground: ~6 s)
    EXP = experiment.load(config, check_tasks=workflow.is_main_process)
except BadInput as e:
    raise WorkflowError(str(e))

# Checking task names imports dm_control, whose renderer logs through absl at import, and absl then
# gives the root logger a stderr handler (logging.basicConfig): every line of Snakemake's log, which
# reaches the root logger too, printed a second time ("INFO:snakemake.logging: ..."). That handler
# goes; a NullHandler keeps absl from adding it again. Snakemake's own handlers are not on the root.
for handler in [h for h in logging.getLogger().handlers if h not in _ROOT_HANDLERS]:
    logging.getLogger().removeHandler(handler)
if not logging.getLogger().handlers:
    logging.getLogger().addHandler(logging.NullHandler())

# runs_per_gpu N: jobs get JAX's memory share (your XLA_* wins); `--resources gpu=G` (GPUs) admits
# G*N gpu=1 jobs (the pool scales, not the request: slurm makes gpu whole GPUs; docs/pipeline.md)
for key, value in EXP.gpu_env().items():
    os.environ.setdefault(key, value)
if EXP.runs_per_gpu > 1 and "gpu" in workflow.global_resources:
    workflow.global_resources["gpu"] = workflow.global_resources["gpu"].value * EXP.runs_per_gpu
# trust_checkpoints: the training jobs (scripts/train.py) add --trust-checkpoint; through the
# environment, not the command, so that switching it retrains nothing (docs/pipeline.md)
os.environ.update(EXP.train_job_env())

NAME = EXP.name
RESULTS = f"results/{NAME}"
RUNS = f"{RESULTS}/runs"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
ALGOS, TASKS, SEEDS = EXP.algorithms, EXP.tasks, EXP.seeds
ANALYSIS = config["analysis"]
ACTION_TASK, ACTION_SEED = EXP.action_task, EXP.action_seed
STYLES = EXP.styles
GORL_ALGOS = EXP.gorl_algorithms()


def run_status(algo, task, seed):
    return str(rundir.run_path(RUNS, algo, task, seed) / rundir.STATUS)


def all_status():
    return [run_status(r.algorithm, r.task, r.seed) for r in EXP.runs]


def expected_runs():
    return [[a, t, int(s)] for a in ALGOS for t in TASKS for s in SEEDS]


def train_args(wildcards):
    """`gorl-bench train` arguments of one run: only this algorithm's slice (params trigger)."""
    return EXP.train_args(wildcards.algo) + teacher_args(wildcards)  # rules/teacher.smk


def train_gpus(wildcards):
    """1 when the run's resolved `device` is cuda (`auto` counts as CPU), else 0."""
    return EXP.gpus(wildcards.algo, wildcards.task)


FIGURE_NAMES = [
    "learning_curves",
    "aggregate_metrics",
    "probability_of_improvement",
    "performance_profiles",
    "sample_efficiency",
    "action_distribution",
]
TABLE_NAMES = [
    "aggregate_metrics",
    "probability_of_improvement",
    "performance_profiles",
    "sample_efficiency",
    "score_exclusions",
]


def final_outputs():
    tables = ["evals_tidy.parquet", "evals_tidy.csv", "final_scores.csv", "problem_runs.csv"]
    tables += ["bimodality.csv", "paper_comparison.csv", "paper_comparison.md"]
    return (
        [f"{TABLES}/{t}" for t in tables]
        + [f"{TABLES}/{t}.csv" for t in TABLE_NAMES]
        + [f"{FIGURES}/{f}.{ext}" for f in FIGURE_NAMES for ext in ("png", "pdf")]
        + [f"{TABLES}/gorl_bimodality_{a}.csv" for a in GORL_ALGOS]
        + [f"{FIGURES}/gorl_bimodality_{a}.png" for a in GORL_ALGOS]
    )


def _src(*names):
    """analysis/ modules a rule imports, declared as its inputs (editing one redraws)."""
    return [str(REPO / "analysis" / n) for n in names]


def _figure(name, subcategory, label):
    return report(
        f"{FIGURES}/{name}.png",
        caption=f"../report/{name}.rst",
        category="Figures",
        subcategory=subcategory,
        labels={"figure": label, "experiment": NAME},
    )


def _runs_dir(wildcards, input):
    """results/NAME/runs, derived from the rule's run inputs (RUNS/ALGO/TASK/seedS/status.json)."""
    return str(Path(input.runs[0]).parents[3])


# A crashed run is recorded as `failed` (data: the analysis covers what exists); the workflow
# then ends non-zero with the failed runs named (docs/pipeline.md, "When a run fails").
onsuccess:
    if EXP.report_failures(RUNS):
        sys.exit(1)


onerror:
    EXP.report_failures(RUNS)


# GoRL's teacher (rules/teacher.smk, spec 14): one ppo_teacher run per (task, seed), read by every
# GoRL run of that task and seed whose resolved config needs one (gorl.experiment: RunSpec.teacher).
TEACHERS = f"{RESULTS}/teachers"
TEACHER_ALGO = "ppo_teacher"


def teacher_dir(task, seed):
    return str(rundir.run_path(TEACHERS, TEACHER_ALGO, task, seed))


def teacher_input(wildcards):
    """The teacher's status.json for a GoRL run that needs one (nothing otherwise)."""
    if not EXP.needs_teacher(wildcards.algo, wildcards.task):
        return []
    return [f"{teacher_dir(wildcards.task, wildcards.seed)}/{rundir.STATUS}"]


def teacher_args(wildcards):
    """`--set teacher_run=DIR` for a GoRL run that needs the pipeline's teacher."""
    if not EXP.needs_teacher(wildcards.algo, wildcards.task):
        return []
    return ["--set", f"teacher_run={teacher_dir(wildcards.task, wildcards.seed)}"]
