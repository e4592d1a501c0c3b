# GoRL's teacher (spec 14): one `ppo_teacher` run per (task, seed), trained once by its own rule
# and read by every GoRL run of that task and seed that needs one (its resolved config says
# `teacher: ppo_teacher` and names no `teacher_run`: the humanoid tasks), so GoRL-FM and
# GoRL-Diffusion share it. The GoRL job takes the teacher's status.json as an input and gets
# `--set teacher_run=<its directory>`. A teacher is an ordinary run directory (run contract,
# resume after a kill, check-run); it lives outside RUNS, so it is in no table. Like `train`,
# a rerun retrains nothing: the rule's only output is the teacher's status.json.
TEACHERS = f"{RESULTS}/teachers"
TEACHER_ALGO = "ppo_teacher"


def teacher_dir(task, seed):
    return str(rundir.run_path(TEACHERS, TEACHER_ALGO, task, seed))


def _needs_teacher(algo, task):
    """Does this GoRL run read a teacher the pipeline trains? (its resolved config)"""
    ov = config["algorithm_overrides"].get(algo, {})
    sets = ov.get("set", {})
    if sets.get("teacher_run") or sets.get("teacher", "") == "none":
        return False
    try:
        from gorl.config import resolve_values

        a = REGISTRY.get(algo)
        values = resolve_values(a.presets_file, ov.get("preset", config["preset"]), task)
    except Exception:
        return False
    teacher = sets.get("teacher", values.get("teacher", "none"))
    return teacher == TEACHER_ALGO and not values.get("teacher_run")


def teacher_device():
    """The device the experiment's GoRL runs are given (algorithm_overrides set.device), if any."""
    for algo in ALGOS:
        device = config["algorithm_overrides"].get(algo, {}).get("set", {}).get("device")
        if device and REGISTRY.get(algo).family == "gorl":
            return str(device)
    return None


def teacher_input(wildcards):
    """The teacher's status.json for a GoRL run that needs one (nothing otherwise)."""
    if not _needs_teacher(wildcards.algo, wildcards.task):
        return []
    return [f"{teacher_dir(wildcards.task, wildcards.seed)}/{rundir.STATUS}"]


def teacher_args(wildcards):
    """`--set teacher_run=DIR` for a GoRL run that needs the pipeline's teacher."""
    if not _needs_teacher(wildcards.algo, wildcards.task):
        return []
    return ["--set", f"teacher_run={teacher_dir(wildcards.task, wildcards.seed)}"]


rule teacher:
    output:
        status=f"{TEACHERS}/{TEACHER_ALGO}/{{task}}/seed{{seed}}/{rundir.STATUS}",
    log:
        f"{RESULTS}/logs/teacher/{{task}}/seed{{seed}}.log",
    wildcard_constraints:
        task=r"[^/]+",
        seed=r"\d+",
    threads: 1
    resources:
        gpu=lambda wildcards: 1 if (teacher_device() or "").startswith("cuda") else 0,
        mem_mb=16000,
        runtime=1440,
    params:
        # the experiment's preset and the GoRL runs' device (config/paper-gpu.yaml: cuda)
        args=lambda wildcards: ["--preset", config["preset"]]
        + (["--set", f"device={teacher_device()}"] if teacher_device() else []),
    shell:
        "{PYTHON:q} {TRAIN_PY:q} --status {output.status:q} --log {log:q} --threads {threads}"
        " -- " + TEACHER_ALGO + " {wildcards.task:q} --seed {wildcards.seed} {params.args:q}"
