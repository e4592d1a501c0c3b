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
        gpu=lambda wildcards: 1 if (EXP.teacher_device() or "").startswith("cuda") else 0,
        mem_mb=16000,
        runtime=1440,
    params:
        # the experiment's preset and the GoRL runs' device (config/paper-gpu.yaml: cuda)
        args=lambda wildcards: ["--preset", config["preset"]]
        + (["--set", f"device={EXP.teacher_device()}"] if EXP.teacher_device() else []),
    shell:
        "{PYTHON:q} {TRAIN_PY:q} --status {output.status:q} --log {log:q} --threads {threads}"
        " -- " + TEACHER_ALGO + " {wildcards.task:q} --seed {wildcards.seed} {params.args:q}"
