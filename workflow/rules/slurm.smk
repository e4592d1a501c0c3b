# Pre-flight check for the SLURM executor (`--profile profiles/slurm`): before anything is
# submitted, every job's request is compared with what the cluster can ever give one job, and
# the workflow stops with one line naming the rule, the request, the limit and the fix (why,
# and what is checked: gorl/slurm.py). Only the main Snakemake process runs it (onstart hooks
# never run inside jobs), only with the slurm executor, and not with --dry-run; `--no-hooks`
# skips it.
from gorl import slurm


onstart:
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        try:
            slurm.preflight(
                slurm.request(job.rule.name, job.resources, job.threads)
                for job in workflow.dag.needrun_jobs()
                if not job.is_local
            )
        except slurm.SlurmError as e:
            raise WorkflowError(str(e)) from None
