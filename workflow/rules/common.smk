# Validation of the config (first thing), the algorithm registry check and helpers.
import importlib
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(workflow.current_basedir).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
# jobs (scripts, the training CLI) import gorl/ and analysis/ from this checkout
# (set with update(): the envvars lint reads every os.environ[...] as a required variable)
os.environ.update(
    PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
)
os.environ.setdefault("MUJOCO_GL", "disable")

from gorl import rundir
from gorl.config import parse_number


# 1. the schema: names the offending key, fills defaults (additionalProperties: false everywhere)
def _coerce_cli_strings(value, schema):
    """`--config seeds=[0,1,2]` arrives as ['0', '1', '2'] (Snakemake parses nested --config
    values with YAML's BaseLoader: every scalar a string), and a config file's `steps: 1e9` or
    `learning_rate: 3e-4` as strings (YAML 1.1). Turn such strings into the integers / numbers /
    booleans the schema asks for (numbers as people write them: gorl.config.parse_number), in
    place; anything else is left for the schema to reject."""
    if not isinstance(schema, dict):
        return value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if (
        isinstance(value, float)
        and "integer" in types
        and "number" not in types
        and value.is_integer()
    ):
        return int(value)
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None and "integer" in types and float(number).is_integer():
            return int(number)
        if number is not None and "number" in types:
            return number
        if "boolean" in types and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if "null" in types and value in ("null", "~"):
            return None
        return value
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for k in list(value):
            sub = props.get(k, extra if isinstance(extra, dict) else None)
            if sub is not None:
                value[k] = _coerce_cli_strings(value[k], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            value[i] = _coerce_cli_strings(v, schema["items"])
    return value


def _validate_config(cfg, schema_rel):
    """snakemake.utils.validate, preceded by our own pass whose first line names the key.

    Snakemake's message starts with the bare jsonschema message ("'x' is not of type
    'array'") and names the path only further down; a user should read the culprit first.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load((Path(workflow.current_basedir) / schema_rel).read_text())
    _coerce_cli_strings(cfg, schema)
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(cfg),
        key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))),
    )
    if errors:
        lines = []
        for e in errors:
            where = ".".join(
                f"[{p}]" if isinstance(p, int) else str(p) for p in e.absolute_path
            ).replace(".[", "[")
            lines.append(f"  {where or '(top level)'}: {e.message}")
        raise WorkflowError(
            f"config: {len(errors)} invalid setting(s), nothing was run:\n" + "\n".join(lines)
        )
    validate(cfg, schema_rel)  # fills the schema's defaults


_validate_config(config, "../schemas/config.schema.yaml")


# 2. algorithm names come from the registry (built-ins, entry points, `imports`), never from here
def _load_registry(imports):
    try:
        from gorl import registry
    except Exception as e:  # pragma: no cover - broken checkout
        raise WorkflowError(f"config: cannot import gorl.registry: {e}")
    try:
        origin = {name: None for name in registry.algorithms()}
    except Exception as e:
        raise WorkflowError(
            f"config: the algorithm registry failed to load (gorl.registry.algorithms()): {e!r}"
        )
    for mod_name in imports:
        try:
            importlib.import_module(mod_name)
        except Exception as e:
            raise WorkflowError(f"config: imports: cannot import module {mod_name!r}: {e!r}")
        for name in registry.algorithms():
            origin.setdefault(name, mod_name)
    return registry, origin


def _check_algorithms(cfg, registry, origin):
    import difflib

    known = list(registry.algorithms())

    def bad(where, name):
        hint = difflib.get_close_matches(name, known, n=1)
        extra = f" (did you mean {hint[0]!r}?)" if hint else ""
        raise WorkflowError(
            f"config: {where}: unknown algorithm {name!r}{extra}; registered: {', '.join(known)}"
        )

    for i, name in enumerate(cfg["algorithms"]):
        if name not in known:
            bad(f"algorithms[{i}]", name)
    for name, ov in cfg["algorithm_overrides"].items():
        if name not in known:
            bad("algorithm_overrides", name)
        algo = registry.get(name)
        fields = getattr(algo.config_cls, "__dataclass_fields__", None)
        for key in ov.get("set", {}):
            if fields is not None and key not in fields:
                hint = difflib.get_close_matches(key, list(fields), n=1)
                extra = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise WorkflowError(
                    f"config: algorithm_overrides.{name}.set: unknown hyperparameter {key!r}{extra} for {name}"
                )
    # presets: fail before any job when a preset does not exist
    try:
        from gorl.config import preset_names
    except Exception:
        preset_names = None
    if preset_names is not None:
        for name in cfg["algorithms"]:
            preset = cfg["algorithm_overrides"].get(name, {}).get("preset", cfg["preset"])
            algo = registry.get(name)
            try:
                names = preset_names(algo.presets_file)
            except Exception:
                continue
            if preset not in names:
                where = (
                    f"algorithm_overrides.{name}.preset"
                    if "preset" in cfg["algorithm_overrides"].get(name, {})
                    else "preset"
                )
                raise WorkflowError(
                    f"config: {where}: algorithm {name!r} has no preset {preset!r}; presets: {', '.join(names)}"
                )
    af = cfg["analysis"]["action_figure"]
    if af["task"] is not None and af["task"] not in cfg["tasks"]:
        raise WorkflowError(
            f"config: analysis.action_figure.task: {af['task']!r} is not one of tasks {cfg['tasks']}"
        )
    if af["seed"] is not None and af["seed"] not in cfg["seeds"]:
        raise WorkflowError(
            f"config: analysis.action_figure.seed: {af['seed']} is not one of seeds {cfg['seeds']}"
        )


REGISTRY, ALGO_ORIGIN = _load_registry(config["imports"])
_check_algorithms(config, REGISTRY, ALGO_ORIGIN)

NAME = config["name"]
RESULTS = f"results/{NAME}"
RUNS = f"{RESULTS}/runs"
TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
ALGOS = list(config["algorithms"])
TASKS = list(config["tasks"])
SEEDS = list(config["seeds"])
ANALYSIS = config["analysis"]
ACTION_TASK = ANALYSIS["action_figure"]["task"] or TASKS[0]
ACTION_SEED = (
    ANALYSIS["action_figure"]["seed"] if ANALYSIS["action_figure"]["seed"] is not None else SEEDS[0]
)


def _styles():
    cols = REGISTRY.colors()
    algos = REGISTRY.algorithms()
    return {
        n: {"color": cols[n], "label": algos[n].display, "family": algos[n].family} for n in ALGOS
    }


STYLES = _styles()


def run_status(algo, task, seed):
    return str(rundir.run_path(RUNS, algo, task, seed) / rundir.STATUS)


def all_status():
    return [run_status(a, t, s) for a in ALGOS for t in TASKS for s in SEEDS]


def expected_runs():
    return [[a, t, int(s)] for a in ALGOS for t in TASKS for s in SEEDS]


def _fmt(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def train_args(wildcards):
    """CLI arguments of one run: only this algorithm's slice of the config (params trigger)."""
    ov = config["algorithm_overrides"].get(wildcards.algo, {})
    steps = ov.get("steps", config["steps"])
    args = [] if steps is None else ["--steps", str(steps)]  # null: each preset's own budget
    args += ["--preset", ov.get("preset", config["preset"])]
    for k, v in sorted(ov.get("set", {}).items()):
        args += ["--set", f"{k}={_fmt(v)}"]
    origin_module = ALGO_ORIGIN.get(wildcards.algo)
    if origin_module:
        args += ["--import", origin_module]
    return args + teacher_args(wildcards)  # rules/teacher.smk


def train_gpus(wildcards):
    """GPU resource of one run: 1 if its resolved `device` (preset + --set) is cuda, else 0.

    `device: auto` (the paper presets) counts as CPU here; a GPU cluster says
    `set-resources: {train: {gpu: 1}}` in its profile (or sets device: cuda in the preset).
    """
    ov = config["algorithm_overrides"].get(wildcards.algo, {})
    device = ov.get("set", {}).get("device")
    if device is None:
        try:
            from gorl.config import resolve_values

            algo = REGISTRY.get(wildcards.algo)
            preset = ov.get("preset", config["preset"])
            device = resolve_values(algo.presets_file, preset, wildcards.task).get("device")
        except Exception:
            device = None
    return 1 if str(device or "").startswith("cuda") else 0


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
    return (
        [
            f"{TABLES}/evals_tidy.parquet",
            f"{TABLES}/evals_tidy.csv",
            f"{TABLES}/final_scores.csv",
            f"{TABLES}/problem_runs.csv",
            f"{TABLES}/bimodality.csv",
            f"{TABLES}/paper_comparison.csv",
            f"{TABLES}/paper_comparison.md",
        ]
        + [f"{TABLES}/{t}.csv" for t in TABLE_NAMES]
        + [f"{FIGURES}/{f}.{ext}" for f in FIGURE_NAMES for ext in ("png", "pdf")]
        + [
            f"{d}/gorl_bimodality_{a}.{ext}"
            for a in ALGOS
            if STYLES[a]["family"] == "gorl"
            for d, ext in ((TABLES, "csv"), (FIGURES, "png"))
        ]
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
