# GoRL's teacher (spec 14): one `ppo_teacher` run per (task, seed), trained once by its own rule
# and read by every GoRL run of that task and seed that needs one (its resolved config says
# `teacher: ppo_teacher` and names no `teacher_run`: the humanoid tasks), so GoRL-FM and
# GoRL-Diffusion share it. The GoRL job takes the teacher's status.json as an input and gets
# `--set teacher_run=<its directory>`. A teacher is an ordinary run directory (run contract,
# resume after a kill, check-run); it lives outside RUNS, so it is in no table. Like `train`,
# a rerun retrains nothing: the rule's only output is the teacher's status.json.
# (TEACHERS, teacher_dir, teacher_input and teacher_args are in common.smk: a rule file holds rules)


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
        algo=TEACHER_ALGO,
        # the experiment's preset and how its GoRL runs execute (config/paper-gpu.yaml: cuda,
        # the compiled update, checkpoint_every auto; gorl.experiment.TEACHER_SHARED)
        args=lambda wildcards: EXP.teacher_args(),
    shell:
        "{PYTHON:q} {TRAIN_PY:q} --status {output.status:q} --log {log:q} --threads {threads}"
        " -- {params.algo} {wildcards.task:q} --seed {wildcards.seed} {params.args:q}"
