# One job per (algorithm, task, seed): `gorl-bench train ...` into its run directory.
# Only status.json (written last by the CLI) is an output; checkpoint.pt, evals.csv,
# probes.npz ... live beside it (outputs of killed jobs are deleted by Snakemake, the
# checkpoint must survive so that the rerun resumes).


rule train:
    output:
        status=f"{RUNS}/{{algo}}/{{task}}/seed{{seed}}/status.json",
    log:
        f"{RESULTS}/logs/train/{{algo}}/{{task}}/seed{{seed}}.log",
    params:
        args=train_args,
    wildcard_constraints:
        algo=r"[A-Za-z0-9_.-]+",
        task=r"[^/]+",
        seed=r"\d+",
    threads: 1
    resources:
        gpu=0,
    script:
        "../scripts/train.py"
