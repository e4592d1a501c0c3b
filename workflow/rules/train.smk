# One job per (algorithm, task, seed): `gorl-bench train ...` into its run directory.
# Only status.json (written last by the CLI) is an output; checkpoint.pt, evals.csv,
# probes.npz ... live beside it (outputs of killed jobs are deleted by Snakemake, the
# checkpoint must survive so that the rerun resumes).
#
# Rerun triggers: `params.args` holds exactly this run's experiment (steps, preset, --set,
# --import), so editing one algorithm's override retrains that algorithm only. The job is a
# `shell:` command on purpose: a `script:` rule is rerun whenever its script's mtime changes
# (Snakemake's code trigger), which would retrain every run after a cosmetic edit of the
# wrapper. Library edits (gorl/, baselines/) never retrain either (snakemake issue #2192);
# force it with `--forcerun train` or by deleting a run's status.json (an ended run is then
# moved aside and trains anew: gorl.job.train_job).
#
# `snakemake --lint` lists "Shell command directly uses variable PYTHON / TRAIN_PY from outside
# of the rule" here, on purpose: as params they would be a rerun trigger, and a new checkout
# path or interpreter must never retrain the experiment. PYTHON is the interpreter running
# Snakemake, so on SLURM the job uses the same environment (a shared file system is assumed).
TRAIN_PY = str(Path(workflow.current_basedir).parent / "scripts" / "train.py")
PYTHON = sys.executable


rule train:
    input:
        teacher=teacher_input,  # GoRL runs that read the pipeline's teacher (rules/teacher.smk)
    output:
        status=run_status("{algo}", "{task}", "{seed}"),
    log:
        f"{RESULTS}/logs/train/{{algo}}/{{task}}/seed{{seed}}.log",
    wildcard_constraints:
        algo=r"[A-Za-z0-9_.-]+",
        task=r"[^/]+",
        seed=r"\d+",
    threads: 1  # torch/BLAS threads of the run; change with --set-threads train=N
    resources:
        gpu=train_gpus,  # 1 when the run's resolved `device` is cuda; override with --set-resources
        mem_mb=16000,
        # minutes; 24 h fits the MaxTime of most clusters. A run that needs longer (the paper
        # budget on CPU) is stopped at the limit and resumes from its checkpoint.pt in the
        # next attempt (retries: 2 in profiles/slurm)
        runtime=1440,
    params:
        args=train_args,
    shell:
        "{PYTHON:q} {TRAIN_PY:q} --status {output.status:q} --log {log:q} --threads {threads}"
        " -- {wildcards.algo:q} {wildcards.task:q} --seed {wildcards.seed} {params.args:q}"
