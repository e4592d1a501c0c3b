"""An experiment: the pipeline's config file (``config/*.yaml``) as a list of runs.

    exp = load("config/small.yaml")        # or load(dict): validated, defaults filled in
    exp.runs                               # one RunSpec per (algorithm, task, seed)
    exp.train_args("ppo")                  # the `gorl-bench train` arguments of ppo's runs
    exp.styles                             # {algorithm: {color, label, family}} (the registry's)

``gorl-bench plan CONFIG`` prints the runs with their cost; the Snakefile and its rules call
this module for everything that is not a rule (validation, resolution, arguments, styles).

Validation reports root causes first, each as one line naming the key: the schema
(``gorl/experiment.schema.yaml``, also ``workflow/schemas/config.schema.yaml``), then the
algorithms (the registry: built-ins, entry points, ``imports``), the tasks, every algorithm's
preset and ``set`` keys resolved per task exactly as the CLI will resolve them
(:func:`gorl.config.build_config`), ``runs_per_gpu`` against the runs on a GPU, and last the
analysis settings that refer to those lists.

Run identity (:func:`run_differences`) is the one rule deciding whether a run directory holds
the same run as a new request; the CLI (refusing to resume a different configuration) and the
pipeline's training job (moving a changed run aside) both use it.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from gorl import registry
from gorl.errors import BadInput, ExperimentError, did_you_mean

SCHEMA = Path(__file__).with_name("experiment.schema.yaml")

# -- identity of a run (shared with the CLI) ---------------------------------------------------
IDENTITY_KEYS = ("algorithm", "task", "seed", "preset", "imports", "overrides", "hyperparameters")
"""What makes two runs the same run: the keys of a run's ``config.yaml`` compared by
:func:`run_differences`. Where it ran (the top-level ``device``) may change between attempts."""


def run_identity(algorithm: str, task: str, seed: int, preset: str, imports: Iterable[str],
                 overrides: Mapping[str, Any], hyperparameters: Mapping[str, Any]) -> dict[str, Any]:
    """The resolved request of one run, as the CLI writes it into ``config.yaml``."""
    return {"algorithm": algorithm, "task": task, "seed": int(seed), "preset": preset,
            "imports": list(imports), "overrides": dict(overrides), "hyperparameters": dict(hyperparameters)}


TEACHER_SHARED = ("device", "compile_update", "cuda_graph", "checkpoint_every")
"""The settings of the GoRL runs (``algorithm_overrides.ALGO.set``) that their pipeline-trained
teachers take too: how a run executes, not what it learns (:meth:`Experiment.teacher_overrides`)."""

KEYS_ADDED = {"compile_update": False, "cuda_graph": "step"}
"""Hyperparameters added after run directories of earlier versions existed, each with the value
that runs as those versions did: a ``config.yaml`` without the key is the same run as a request
with that value (so ``train --trust-checkpoint`` can resume such a run)."""


def run_differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """``["key: old -> new", ...]`` between a run directory's ``config.yaml`` and a new request
    (empty: the same run, which may resume). ``device`` (where it ran), ``effective_total_steps``
    (derived from the hyperparameters; older runs lack it) and, at any depth, ``checkpoint_every``
    (where checkpoints fall never changes a result) are not compared; a hyperparameter of
    :data:`KEYS_ADDED` that ``old`` lacks counts as its earlier behaviour's value."""
    def diff(a: Any, b: Any, prefix: str) -> list[str]:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            return [d for k in sorted(set(a) | set(b)) if k != "checkpoint_every"
                    for d in diff(a.get(k, KEYS_ADDED.get(k) if prefix == "hyperparameters." else None),
                                  b.get(k), f"{prefix}{k}.")]
        return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]

    ignored = ("device", "effective_total_steps")
    return diff({k: v for k, v in old.items() if k not in ignored},
                {k: v for k, v in new.items() if k not in ignored}, "")


def requested_identity(algorithm: str, task: str, seed: int, preset: str, steps: int | None,
                       set_items: Iterable[str], imports: Iterable[str]) -> dict[str, Any]:
    """The identity of the run ``gorl-bench train ALGO TASK --seed S --preset P [--steps N]
    [--set k=v ...] [--import M ...]`` would train (BadInput where the CLI would refuse)."""
    from gorl.config import build_config, config_to_dict, parse_set

    import_modules(imports)
    algo = _algorithm(algorithm)
    overrides = parse_set(list(set_items))
    cfg = build_config(algo.config_cls, algo.presets_file, preset, task,
                       {**overrides, **({"total_steps": steps} if steps is not None else {})})
    return run_identity(algo.name, task, seed, preset, imports, overrides, config_to_dict(cfg))


def import_modules(mods: Iterable[str], where: str = "--import") -> None:
    for m in mods:
        try:
            importlib.import_module(m)
        except ImportError as e:
            raise BadInput(f"{where} {m}: {e}") from None


def _algorithm(name: str):
    try:
        return registry.get(name)
    except KeyError as e:
        raise BadInput(str(e.args[0])) from None


# -- the plug-in contract: every preset resolves to the algorithm's config class ----------------
def check_presets(algo: registry.Algorithm) -> None:
    """Each preset of ``algo.presets_file`` (its ``base`` chain included) resolves, through
    :func:`gorl.config.resolve_config_sources`, to a valid ``algo.config_cls``; else one line
    naming the plug-in, the preset and the key (a :class:`gorl.registry.ContractError`)."""
    from gorl.config import ConfigError, preset_names, resolve_config_sources

    try:
        names = preset_names(algo.presets_file)
    except ConfigError as e:
        raise registry.ContractError(f"{registry.describe(algo)}: presets_file: {e}") from None
    for preset in names:
        try:
            resolve_config_sources(algo.config_cls, algo.presets_file, preset)
        except ConfigError as e:
            raise registry.ContractError(f"{registry.describe(algo)}: preset {preset!r} does not fit "
                                         f"{algo.config_cls.__name__}: {e}") from None


registry.add_validator(check_presets)


# -- the experiment ----------------------------------------------------------------------------
@dataclass
class RunSpec:
    """One (algorithm, task, seed) of an experiment, resolved as its training job will run it."""

    algorithm: str
    task: str
    seed: int
    preset: str
    steps: int
    """env-step budget (the resolved ``total_steps``)."""
    overrides: dict[str, Any]
    """the config's ``algorithm_overrides.ALGO.set`` (passed as ``--set``)."""
    device: str
    """the resolved ``device`` hyperparameter (auto, cpu, cuda, cuda:1, ...)."""
    gpu: int
    """GPUs the job asks for: 1 if ``device`` is cuda, else 0 (``auto`` counts as CPU)."""
    style: dict[str, str]
    hyperparameters: dict[str, Any] = field(repr=False, default_factory=dict)
    teacher: bool = False
    """the run reads a teacher that the pipeline trains (its resolved ``teacher`` is ``ppo_teacher``
    and it names no ``teacher_run``: GoRL on the humanoids, spec 14)."""
    seconds: float | None = None
    """estimated wall time from measured rates (:func:`measured_rates`), None where unknown."""
    rate_source: str = ""


@dataclass
class Experiment:
    config: dict[str, Any]
    runs: list[RunSpec]
    origin: dict[str, str | None]
    """algorithm -> the ``imports`` module that registered it (None: built-in or entry point)."""
    styles: dict[str, dict[str, str]]
    _teachers: list[RunSpec] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def algorithms(self) -> list[str]:
        return list(self.config["algorithms"])

    @property
    def tasks(self) -> list[str]:
        return list(self.config["tasks"])

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.config["seeds"]]

    def train_args(self, algorithm: str) -> list[str]:
        """``gorl-bench train ALGO TASK --seed S`` + these: this algorithm's slice of the config
        only (the pipeline's rerun trigger: editing one algorithm's override retrains that one)."""
        ov = self.config["algorithm_overrides"].get(algorithm, {})
        steps = ov.get("steps", self.config["steps"])
        args = [] if steps is None else ["--steps", str(steps)]  # null: each preset's own budget
        args += ["--preset", ov.get("preset", self.config["preset"])]
        for k, v in sorted(ov.get("set", {}).items()):
            args += ["--set", f"{k}={_fmt(v)}"]
        if self.origin.get(algorithm):
            args += ["--import", self.origin[algorithm]]
        return args

    def needs_teacher(self, algorithm: str, task: str) -> bool:
        """Do the runs of (algorithm, task) read a teacher the pipeline trains (the `teacher` rule)?"""
        return any(r.teacher for r in self.runs if (r.algorithm, r.task) == (algorithm, task))

    def teacher_overrides(self) -> dict:
        """What the teachers take from the experiment's GoRL runs (``algorithm_overrides.ALGO.set``):
        the settings of how a run executes (:data:`TEACHER_SHARED`: the device, the compiled
        update, the checkpoint cadence), each from the first GoRL algorithm that sets it; nothing
        of what it learns. config/paper-gpu.yaml: the teachers train on cuda, compiled, with
        ``checkpoint_every: auto``, as the GoRL runs that read them."""
        out = {}
        for a in self.gorl_algorithms():
            for k, v in self.config["algorithm_overrides"].get(a, {}).get("set", {}).items():
                if k in TEACHER_SHARED and v is not None:
                    out.setdefault(k, v)
        return out

    def teacher_device(self) -> str | None:
        """The device of the teacher runs (the GoRL runs'); None: the teacher preset's own."""
        device = self.teacher_overrides().get("device")
        return str(device) if device else None

    def teacher_args(self) -> list[str]:
        """``gorl-bench train ppo_teacher TASK --seed S`` + these (rules/teacher.smk): the
        experiment's preset and :meth:`teacher_overrides`."""
        args = ["--preset", self.config["preset"]]
        for k, v in sorted(self.teacher_overrides().items()):
            args += ["--set", f"{k}={_fmt(v)}"]
        return args

    def gpus(self, algorithm: str, task: str) -> int:
        """GPUs of the runs of (algorithm, task): 1 if the resolved ``device`` is cuda, else 0."""
        return next((r.gpu for r in self.runs if (r.algorithm, r.task) == (algorithm, task)), 0)

    @property
    def runs_per_gpu(self) -> int:
        """GPU runs that share one GPU (``runs_per_gpu``; 1: a GPU per run)."""
        return int(self.config.get("runs_per_gpu", 1))

    def gpu_env(self) -> dict[str, str]:
        """Environment of the jobs when ``runs_per_gpu`` > 1 (:func:`gpu_share_env`; {} otherwise)."""
        return gpu_share_env(self.runs_per_gpu)

    @property
    def trust_checkpoints(self) -> bool:
        """Whether training jobs resume from pickled checkpoints (``trust_checkpoints``; False)."""
        return bool(self.config.get("trust_checkpoints", False))

    def train_job_env(self) -> dict[str, str]:
        """Environment of the training jobs: :data:`TRUST_CHECKPOINTS_ENV` from ``trust_checkpoints``
        (set either way, so the config alone decides), read by :func:`train_job_flags`."""
        return {TRUST_CHECKPOINTS_ENV: "1" if self.trust_checkpoints else "0"}

    def failed_runs(self, runs_root: Path | str) -> list[tuple[RunSpec, dict]]:
        """The runs whose ``status.json`` says ``failed`` (the training job recorded a crash)."""
        from gorl import rundir

        out = []
        for r in self.runs:
            st = rundir.read_status(rundir.run_path(runs_root, r.algorithm, r.task, r.seed))
            if st is not None and st.get("status") == rundir.FAILED:
                out.append((r, st))
        return out

    def report_failures(self, runs_root: Path | str, file=None, limit: int = 15) -> int:
        """Print a one-screen summary of the failed runs (to stderr); returns how many failed."""
        import sys

        failed = self.failed_runs(runs_root)
        if not failed:
            return 0
        file = file or sys.stderr
        lines = [f"{len(failed)} of {len(self.runs)} runs of experiment {self.name!r} FAILED (the training "
                 f"crashed; the tables and figures cover the other runs):"]
        for r, st in failed[:limit]:
            reason = str(st.get("reason") or "").splitlines()[0] if st.get("reason") else "no reason recorded"
            tail = [ln for ln in st.get("log_tail") or [] if ln.strip() and not ln.startswith("# ")]
            # the job's last line: the CLI's one-line error names the env step and the exception
            last = f" | {tail[-1].strip().removeprefix('gorl-bench train: error: ')[:200]}" if tail else ""
            lines.append(f"  {r.algorithm} {r.task} seed{r.seed}: {reason}{last}")
        if len(failed) > limit:
            lines.append(f"  ... and {len(failed) - limit} more")
        lines.append(f"Listed in {Path(runs_root).parent / 'tables' / 'problem_runs.csv'}. To retry a run, delete "
                     f"its status.json and run snakemake again (it resumes from its checkpoint).")
        print("\n".join(lines), file=file)
        return len(failed)

    def gorl_algorithms(self) -> list[str]:
        return [a for a in self.algorithms if self.styles[a]["family"] == "gorl"]

    @property
    def action_task(self) -> str:
        return self.config["analysis"]["action_figure"]["task"] or self.tasks[0]

    @property
    def action_seed(self) -> int:
        seed = self.config["analysis"]["action_figure"]["seed"]
        return self.seeds[0] if seed is None else int(seed)

    def teacher_runs(self) -> list[RunSpec]:
        """The teacher runs the pipeline trains (rules/teacher.smk): one ``ppo_teacher`` run per
        (task, seed) that a run needs, at the experiment's preset and the GoRL runs' device (built
        once: :func:`estimate` fills their ``seconds``)."""
        if self._teachers is not None:
            return self._teachers
        from gorl.config import build_config, config_to_dict

        algo, overrides = registry.get("ppo_teacher"), self.teacher_overrides()
        out, hps = [], {}  # a teacher's configuration depends on its task only: resolved once per task
        for task, seed in dict.fromkeys((r.task, r.seed) for r in self.runs if r.teacher):
            if task not in hps:
                hps[task] = config_to_dict(build_config(algo.config_cls, algo.presets_file, self.config["preset"],
                                                        task, dict(overrides)))
            hp = hps[task]
            d = str(hp.get("device", "cpu"))
            out.append(RunSpec(algo.name, task, seed, self.config["preset"], int(hp["total_steps"]), {}, d,
                               1 if d.startswith("cuda") else 0, registry.styles([algo.name])[algo.name], hp))
        self._teachers = out
        return out

    def total_steps(self) -> int:
        """Env steps of the runs and of the teacher runs they read."""
        return sum(r.steps for r in self.runs + self.teacher_runs())


TRUST_CHECKPOINTS_ENV = "GORL_BENCH_TRUST_CHECKPOINTS"
"""How the pipeline tells its training jobs (workflow/scripts/train.py) the config's
``trust_checkpoints``: the job's environment, not its command, since Snakemake reruns a job
whose ``params`` or shell command change, and switching it must retrain nothing."""


def train_job_flags(environ: Mapping[str, str]) -> list[str]:
    """The ``gorl-bench train`` flags a pipeline training job adds from its environment
    (:meth:`Experiment.train_job_env`): ``--trust-checkpoint`` when ``trust_checkpoints`` is true."""
    from gorl.rundir import TRUST_CHECKPOINT

    return [TRUST_CHECKPOINT] if environ.get(TRUST_CHECKPOINTS_ENV) == "1" else []


JAX_DEFAULT_FRACTION = 0.75
"""What JAX preallocates of a GPU by default; the rest is torch's (the update, the policy)."""


def gpu_share_env(runs_per_gpu: int) -> dict[str, str]:
    """JAX's memory settings for one of ``runs_per_gpu`` runs sharing a GPU: JAX's default 75%
    split N ways (rounded down to 0.001), preallocated at start, so N runs fit by construction and
    torch keeps the quarter a single run leaves it. Both names of the fraction: JAX 0.10 reads
    ``XLA_PYTHON_CLIENT_MEM_FRACTION`` and documents ``XLA_CLIENT_MEM_FRACTION`` as its successor.
    Empty for one run per GPU (JAX's own policy)."""
    if runs_per_gpu <= 1:
        return {}
    fraction = f"{math.floor(1000 * JAX_DEFAULT_FRACTION / runs_per_gpu) / 1000:.3f}"
    return {"XLA_PYTHON_CLIENT_MEM_FRACTION": fraction, "XLA_CLIENT_MEM_FRACTION": fraction,
            "XLA_PYTHON_CLIENT_PREALLOCATE": "true"}


def _fmt(v: Any) -> str:
    """A config value as ``--set`` writes it (YAML's null and lists included)."""
    if v is None:
        return "null"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def load(source: str | Path | Mapping[str, Any], check_tasks: bool = True) -> Experiment:
    """Validate an experiment config (a YAML file or a dict, completed in place with the schema's
    defaults) and expand it into runs. Raises :class:`ExperimentError`, one line per problem."""
    import yaml

    if isinstance(source, Mapping):
        cfg = source
    else:
        path = Path(source)
        try:
            cfg = yaml.safe_load(path.read_text())
        except OSError as e:
            raise ExperimentError(f"config: cannot read {path}: {e.strerror or e}") from None
        except yaml.YAMLError as e:
            raise ExperimentError(f"config: {path} is not valid YAML: {e}") from None
        if not isinstance(cfg, dict):
            raise ExperimentError(f"config: {path} must be a mapping of settings")
    validate(cfg)
    origin = _load_algorithms(cfg["imports"])
    _check_algorithms(cfg)
    if check_tasks:
        _check_tasks(cfg)
    runs = _resolve_runs(cfg)
    _check_gpu_sharing(cfg, runs)
    _check_analysis(cfg)
    return Experiment(cfg, runs, {a: origin.get(a) for a in cfg["algorithms"]}, registry.styles(cfg["algorithms"]))


# 1. the schema: names the offending key, fills defaults (additionalProperties: false everywhere)
def validate(cfg: dict) -> None:
    import jsonschema
    import yaml

    schema = yaml.safe_load(SCHEMA.read_text())
    _coerce_strings(cfg, schema)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg),
                    key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        lines = []
        for e in errors:
            where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in e.absolute_path).replace(".[", "[")
            lines.append(f"  {where or '(top level)'}: {e.message}")
        raise ExperimentError(f"config: {len(errors)} invalid setting(s), nothing was run:\n" + "\n".join(lines))
    _fill_defaults(cfg, schema)


def _fill_defaults(value: Any, schema: Mapping) -> None:
    if not isinstance(value, dict) or not isinstance(schema, Mapping):
        return
    for key, sub in (schema.get("properties") or {}).items():
        if key not in value and "default" in sub:
            value[key] = json.loads(json.dumps(sub["default"]))
        if key in value:
            _fill_defaults(value[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        for key in value:
            if key not in (schema.get("properties") or {}):
                _fill_defaults(value[key], extra)


def _coerce_strings(value: Any, schema: Any) -> Any:
    """``--config seeds=[0,1,2]`` arrives as ['0', '1', '2'] (Snakemake parses nested --config
    values with YAML's BaseLoader: every scalar a string), and a config file's ``steps: 1e9`` or
    ``learning_rate: 3e-4`` as strings (YAML 1.1). Turn such strings into the integers / numbers /
    booleans the schema asks for (numbers as people write them: gorl.config.parse_number), in
    place; anything else is left for the schema to reject."""
    from gorl.config import parse_number

    if not isinstance(schema, dict):
        return value
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    if isinstance(value, float) and "integer" in types and "number" not in types and value.is_integer():
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
                value[k] = _coerce_strings(value[k], sub)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            value[i] = _coerce_strings(v, schema["items"])
    return value


# 2. algorithm names come from the registry (built-ins, entry points, `imports`)
def _load_algorithms(imports: list[str]) -> dict[str, str | None]:
    try:
        origin: dict[str, str | None] = {name: None for name in registry.algorithms()}
    except Exception as e:
        raise ExperimentError(f"config: the algorithm registry failed to load: {e}") from None
    for mod in imports:
        try:
            importlib.import_module(mod)
        except registry.RegistryError as e:
            raise ExperimentError(f"config: imports: {mod}: {e}") from None
        except Exception as e:
            raise ExperimentError(f"config: imports: cannot import module {mod!r}: {e!r}") from None
        for name in registry.algorithms():
            origin.setdefault(name, mod)
    return origin


def _check_algorithms(cfg: dict) -> None:
    known = list(registry.algorithms())

    def bad(where: str, name: str):
        return ExperimentError(f"config: {where}: unknown algorithm {name!r}{did_you_mean(name, known)}; "
                               f"{registry.where_algorithms_come_from()}")

    for i, name in enumerate(cfg["algorithms"]):
        if name not in known:
            raise bad(f"algorithms[{i}]", name)
    for name in cfg["algorithm_overrides"]:
        if name not in known:
            raise bad("algorithm_overrides", name)


# 3. tasks: the same check as `gorl-bench train` (TaskError names the task)
def _check_tasks(cfg: dict) -> None:
    from gorl.envs.registry import PLAYGROUND_PREFIX, check_task
    from gorl.errors import TaskError

    for i, task in enumerate(cfg["tasks"]):
        if task.startswith(PLAYGROUND_PREFIX) and not _playground_installed():
            continue  # checked by the run itself, on the machine that has the extra
        try:
            check_task(task, tuple(cfg["imports"]))
        except TaskError as e:
            raise ExperimentError(f"config: tasks[{i}]: {e}") from None


def _playground_installed() -> bool:
    import importlib.util
    return importlib.util.find_spec("mujoco_playground") is not None


# 4. each algorithm's preset, `set` keys and values, resolved per task as the CLI will
def _resolve_runs(cfg: dict) -> list[RunSpec]:
    from gorl.config import build_config, config_to_dict, parse_set, split_key, unknown_key_hint
    from gorl.errors import ConfigError

    runs = []
    styles = registry.styles(cfg["algorithms"])
    for name in cfg["algorithms"]:
        algo = registry.get(name)
        ov = cfg["algorithm_overrides"].get(name, {})
        preset = ov.get("preset", cfg["preset"])
        steps = ov.get("steps", cfg["steps"])
        where_preset = f"algorithm_overrides.{name}.preset" if "preset" in ov else "preset"
        fields = [f.name for f in dataclasses.fields(algo.config_cls)] if dataclasses.is_dataclass(algo.config_cls) \
            else []
        for key in ov.get("set", {}):  # KEY, or one stage's (stage<k>.KEY, later_stages.KEY) as train's --set
            try:
                field = split_key(str(key), fields or None)[2]
            except ConfigError as e:
                raise ExperimentError(f"config: algorithm_overrides.{name}.set: {e}") from None
            if fields and field not in fields:
                raise ExperimentError(f"config: algorithm_overrides.{name}.set: unknown hyperparameter "
                                      f"{key!r}{unknown_key_hint(field, fields)} for {name}")
        try:
            overrides = parse_set([f"{k}={_fmt(v)}" for k, v in sorted(ov.get("set", {}).items())])
        except ConfigError as e:
            raise ExperimentError(f"config: algorithm_overrides.{name}.set: {e}") from None
        from gorl.config import preset_names
        names = preset_names(algo.presets_file)
        if preset not in names:
            raise ExperimentError(f"config: {where_preset}: algorithm {name!r} has no preset {preset!r}; "
                                  f"presets: {', '.join(names)}")
        for task in cfg["tasks"]:
            try:
                budget = {} if steps is None else {"total_steps": steps}  # null: the preset's own
                hp = config_to_dict(build_config(algo.config_cls, algo.presets_file, preset, task,
                                                 {**overrides, **budget}))
            except ConfigError as e:
                where = f"algorithm_overrides.{name}.set" if ov.get("set") else where_preset
                raise ExperimentError(f"config: {where}: {name} on {task}: {e}") from None
            device = str(hp.get("device", "cpu"))
            for seed in cfg["seeds"]:
                runs.append(RunSpec(name, task, int(seed), preset, int(hp.get("total_steps", steps)),
                                    dict(ov.get("set", {})), device, 1 if device.startswith("cuda") else 0,
                                    styles[name], hp,
                                    teacher=hp.get("teacher", "none") == "ppo_teacher" and not hp.get("teacher_run")))
    return runs


def _check_gpu_sharing(cfg: dict, runs: list[RunSpec]) -> None:
    n = cfg.get("runs_per_gpu", 1)
    if n > 1 and not any(r.gpu for r in runs):
        raise ExperimentError(f"config: runs_per_gpu: {n} shares GPUs between GPU runs, but no run's resolved device "
                              f"is cuda (device auto counts as CPU: set algorithm_overrides.ALGO.set.device: cuda)")


# 5. analysis settings that name a task or seed of the lists above
def _check_analysis(cfg: dict) -> None:
    af = cfg["analysis"]["action_figure"]
    if af["task"] is not None and af["task"] not in cfg["tasks"]:
        raise ExperimentError(f"config: analysis.action_figure.task: {af['task']!r} is not one of tasks {cfg['tasks']}")
    if af["seed"] is not None and af["seed"] not in cfg["seeds"]:
        raise ExperimentError(f"config: analysis.action_figure.seed: {af['seed']} is not one of seeds {cfg['seeds']}")


# -- cost --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """Env steps per second of one completed run, with what the speed depends on."""

    algorithm: str
    task: str
    preset: str
    device: str
    """device kind: 'cuda' or 'cpu'."""
    rollout: str | None
    """the rollout path the run took ('scan' or 'step', provenance.json); None: not recorded
    (run directories from before the key), compatible with either."""
    rollout_setting: str | None
    """the run's ``rollout`` key (auto, scan, step), None where not recorded."""
    steps_per_s: float


def measured_rates(results: Path | str) -> list[Rate]:
    """The rate of every completed run under ``results`` (any experiment), from its config.yaml,
    status.json and provenance.json."""
    from gorl import rundir

    rates: list[Rate] = []
    root = Path(results)
    if not root.is_dir():
        return rates
    # the runs and the pipeline's teacher runs (results/NAME/teachers/ppo_teacher/TASK/seedN)
    files = [*root.glob(f"*/runs/*/*/seed*/{rundir.STATUS}"), *root.glob(f"*/teachers/*/*/seed*/{rundir.STATUS}")]
    for status_file in sorted(files):
        d = status_file.parent
        st, cfg = rundir.read_status(d), rundir.read_config(d)
        prov = rundir.read_provenance(d)
        try:
            seconds, steps = float(prov["wall_time_s"]), int(st["env_steps"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not cfg or st.get("status") != rundir.COMPLETED or seconds <= 0 or steps <= 0:
            continue
        rollout = rundir.provenance_section(prov, "rollout")
        rates.append(Rate(str(cfg.get("algorithm")), str(cfg.get("task")), str(cfg.get("preset")),
                          _device_kind(str(prov.get("device", ""))), rollout.get("used"), rollout.get("setting"),
                          steps / seconds))
    return rates


def _device_kind(device: str) -> str:
    return "cuda" if device.startswith("cuda") else "cpu"


def _backend(task: str) -> str:
    from gorl.envs.names import PLAYGROUND_PREFIX
    return "playground" if task.startswith(PLAYGROUND_PREFIX) else "other"


def planned_rollout(run: RunSpec, rates: list[Rate]) -> str | None:
    """The rollout path ``run`` will take (what its rate depends on most on a playground: task):
    'step' off playground or under ``rollout: step``; under ``scan`` the scan; under ``auto`` the
    scan, unless this algorithm's completed playground runs under auto record the per-step path
    (a plug-in agent the translator does not know). None: a config without the key."""
    setting = run.hyperparameters.get("rollout")
    if setting == "step" or _backend(run.task) != "playground":
        return "step"
    if setting == "scan":
        return "scan"
    if setting != "auto":
        return None
    seen = {r.rollout for r in rates if r.algorithm == run.algorithm and _backend(r.task) == "playground"
            and r.rollout_setting == "auto" and r.rollout is not None}
    return "step" if seen == {"step"} else "scan"


def estimate(exp: Experiment, results: Path | str = "results") -> None:
    """Fill each run's and teacher run's ``seconds`` from measured rates of runs that took the same rollout path
    (:func:`planned_rollout`) on the same device kind with the same algorithm and preset: on this
    task if measured, else on other tasks of the same backend (playground: or not); unknown
    otherwise."""
    rates = measured_rates(results)
    for r in exp.runs + exp.teacher_runs():
        path = planned_rollout(r, rates)
        like = [x for x in rates if (x.algorithm, x.preset, x.device) == (r.algorithm, r.preset, _device_kind(r.device))
                and (path is None or x.rollout is None or x.rollout == path)]
        same = [x.steps_per_s for x in like if x.task == r.task]
        other = [x.steps_per_s for x in like if x.task != r.task and _backend(x.task) == _backend(r.task)]
        via = f", rollout {path}" if path and _backend(r.task) == "playground" else ""
        if same:
            rate, r.rate_source = _median(same), f"{len(same)} run(s) of this task{via}"
        elif other:
            rate, r.rate_source = _median(other), f"{len(other)} run(s) on other tasks{via}"
        else:
            continue
        r.seconds = r.steps / rate


def _median(values: list[float]) -> float:
    # not the statistics module: workflow/scripts/statistics.py shadows it in the training job
    v = sorted(values)
    return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2


def _hms(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.1f}m"
    m = int(round(seconds / 60))
    return f"{m // 60}h{m % 60:02d}"


def plan_rows(exp: Experiment) -> list[dict[str, Any]]:
    return [{"algorithm": r.algorithm, "task": r.task, "seed": r.seed, "preset": r.preset, "steps": r.steps,
             "device": r.device, "gpu": r.gpu, "overrides": r.overrides, "seconds": r.seconds,
             "rate_source": r.rate_source, "color": r.style["color"], "family": r.style["family"]}
            for r in exp.runs]


def plan_json(exp: Experiment) -> dict[str, Any]:
    known = [r.seconds for r in exp.runs if r.seconds is not None]
    teachers = exp.teacher_runs()
    return {"name": exp.name, "runs": plan_rows(exp), "total_env_steps": exp.total_steps(),
            "teacher_runs": [{"task": r.task, "seed": r.seed, "preset": r.preset, "steps": r.steps,
                              "device": r.device, "gpu": r.gpu, "seconds": r.seconds, "rate_source": r.rate_source}
                             for r in teachers],
            "teacher_env_steps": sum(r.steps for r in teachers),
            "gpu_runs": sum(r.gpu for r in exp.runs + teachers), "runs_per_gpu": exp.runs_per_gpu,
            "gpu_env": exp.gpu_env(),
            "run_seconds_known": sum(known), "runs_without_estimate": len(exp.runs) - len(known),
            "teacher_seconds_known": sum(r.seconds for r in teachers if r.seconds is not None),
            "teachers_without_estimate": sum(r.seconds is None for r in teachers)}


def plan_text(exp: Experiment) -> str:
    head = ("algorithm", "task", "seed", "preset", "env steps", "device", "gpu", "est. time", "overrides")
    rows = [(r.algorithm, r.task, str(r.seed), r.preset, f"{r.steps:,}", r.device, str(r.gpu), _hms(r.seconds),
             " ".join(f"{k}={_fmt(v)}" for k, v in sorted(r.overrides.items())) or "-") for r in exp.runs]
    teachers = exp.teacher_runs()  # GoRL's input, trained once per (task, seed) by the teacher rule
    rows += [(r.algorithm, r.task, str(r.seed), r.preset, f"{r.steps:,}", r.device, str(r.gpu), _hms(r.seconds),
              "(teacher of GoRL)") for r in teachers]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    fmt = "  ".join(f"{{:{'>' if i in (2, 4, 6, 7) else '<'}{w}}}" for i, w in enumerate(widths))
    out = [fmt.format(*row).rstrip() for row in [head, ["-" * w for w in widths], *rows]]
    summary = plan_json(exp)
    out.append("")
    with_teachers = (f" + {len(teachers)} teacher run{'s' * (len(teachers) > 1)} "
                     f"({summary['teacher_env_steps']:,} env steps)"
                     if teachers else "")
    out.append(f"{exp.name}: {len(exp.runs)} runs ({len(exp.algorithms)} algorithms x {len(exp.tasks)} tasks x "
               f"{len(exp.seeds)} seeds){with_teachers}, total {summary['total_env_steps']:,} env steps, "
               f"{summary['gpu_runs']} on a GPU")
    if summary["gpu_runs"] and exp.runs_per_gpu > 1:
        env = exp.gpu_env()
        out.append(f"runs_per_gpu {exp.runs_per_gpu}: up to {exp.runs_per_gpu} GPU runs share each GPU "
                   f"(`--resources gpu=G` admits {exp.runs_per_gpu}*G at once; "
                   f"{math.ceil(sum(r.gpu for r in exp.runs) / exp.runs_per_gpu)} GPUs would run all the "
                   f"experiment's runs at once; teacher runs come before their GoRL runs), each with "
                   + " ".join(f"{k}={v}" for k, v in env.items() if k != "XLA_CLIENT_MEM_FRACTION"))
    missing = summary["runs_without_estimate"] + summary["teachers_without_estimate"]
    if missing < len(exp.runs) + len(teachers):
        out.append(f"estimated run time {_hms(summary['run_seconds_known'] + summary['teacher_seconds_known'])} "
                   f"(sum over runs{' and teacher runs' * bool(teachers)}, from measured rates of completed runs "
                   f"under results/)" + (f"; {missing} run(s) without a measured rate" if missing else ""))
    else:
        out.append("no measured rate for these runs (completed runs under results/ give one): time unknown")
    return "\n".join(out)
