# Pre-flight check for the SLURM executor (`--profile profiles/slurm`): before anything is
# submitted, every job's request is compared with what the cluster can ever give one job,
# and the workflow stops with one line naming the rule, the request, the limit and the fix.
#
# Why: with Slurm's default EnforcePartLimits=NO, sbatch accepts a job that asks for more
# CPUs, memory or time than any node / the partition allows, and the job pends for ever
# (reason PartitionConfig, PartitionTimeLimit, ...) while Snakemake waits silently
# (measured on a one-node Slurm 22.05 with snakemake-executor-plugin-slurm 2.8.0).
#
# What is checked, per job, against its partition (`slurm_partition`, else the default):
#   CPUs   (cpus_per_task, else cpus_per_gpu x gpu, else threads) <= the largest node's CPUs
#          and the partition's MaxCPUsPerNode;
#   memory (mem_mb, or mem_mb_per_cpu x CPUs) <= the largest node's RealMemory and the
#          partition's MaxMemPerNode;
#   time   (runtime, minutes) <= the partition's MaxTime;
#   GPUs   (gpu) <= the most GPUs (gres gpu) of one node.
# Only the main Snakemake process runs it (onstart hooks never run inside jobs), only with
# the slurm executor, and not with --dry-run; `--no-hooks` skips it.
import re
import subprocess


def _slurm_out(*cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise WorkflowError(f"slurm pre-flight: cannot run {' '.join(cmd)}: {e}")
    if out.returncode != 0:
        msg = (out.stderr or out.stdout).strip().splitlines()
        raise WorkflowError(
            f"slurm pre-flight: {' '.join(cmd)} failed: {msg[-1] if msg else out.returncode}"
        )
    return out.stdout


def _slurm_minutes(text):
    """Slurm time limit ('infinite', 'UNLIMITED', 'MM', 'HH:MM:SS', 'D-HH[:MM[:SS]]') -> minutes."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        parts = [int(p) for p in text.split(":")] + [0, 0]
        h, m, s = parts[:3]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts
    return days * 1440 + h * 60 + m + s / 60


def _slurm_gpus(gres):
    """Most GPUs in one node from sinfo's %G ('gpu:a100:4(S:0-1),shard:8' -> 4)."""
    best = 0
    for item in gres.split(","):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            best = max(best, int(m.group(1)))
    return best


def _slurm_partitions():
    """{partition: limits} for every partition, and the name of the default one."""
    limits, default = {}, None
    # -N: one line per node and partition (grouped lines would print "16000+" for mixed sizes)
    for line in _slurm_out("sinfo", "-h", "-N", "-o", "%P|%c|%m|%G").splitlines():
        name, cpus, mem, gres = line.split("|")
        if name.endswith("*"):
            name = name[:-1]
            default = name
        lim = limits.setdefault(name, {"cpus": 0, "mem_mb": 0, "gpus": 0, "minutes": None})
        lim["cpus"] = max(lim["cpus"], int(re.sub(r"\D", "", cpus) or 0))
        lim["mem_mb"] = max(lim["mem_mb"], int(re.sub(r"\D", "", mem) or 0))
        lim["gpus"] = max(lim["gpus"], _slurm_gpus(gres))
    for line in _slurm_out("scontrol", "show", "partition", "--oneliner").splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        lim = limits.get(fields.get("PartitionName"))
        if lim is None:
            continue
        lim["minutes"] = _slurm_minutes(fields.get("MaxTime", "UNLIMITED"))
        if fields.get("MaxCPUsPerNode", "UNLIMITED").isdigit():
            lim["cpus"] = min(lim["cpus"], int(fields["MaxCPUsPerNode"]))
        if fields.get("MaxMemPerNode", "UNLIMITED").isdigit():
            lim["mem_mb"] = min(lim["mem_mb"], int(fields["MaxMemPerNode"]))
    return limits, default


def _slurm_request(job):
    """(partition or None, CPUs, memory MB or None, minutes or None, GPUs) as sbatch gets them."""
    res = job.resources
    gpus = int(res.get("gpu", 0) or 0)
    if res.get("cpus_per_task"):
        cpus = int(res["cpus_per_task"])
    elif gpus and res.get("cpus_per_gpu"):
        cpus = int(res["cpus_per_gpu"]) * gpus
    else:
        cpus = job.threads
    if res.get("mem_mb_per_cpu"):
        mem = int(res["mem_mb_per_cpu"]) * cpus
    else:
        mem = int(res["mem_mb"]) if res.get("mem_mb") else None
    minutes = res.get("runtime") or None
    partition = res.get("slurm_partition") or None
    return partition, cpus, mem, minutes, gpus


def slurm_preflight(jobs):
    """Raise one WorkflowError line for the first rule whose jobs the cluster cannot run."""
    limits, default = _slurm_partitions()
    seen = set()
    for job in jobs:
        if job.is_local:
            continue
        partition, cpus, mem, minutes, gpus = _slurm_request(job)
        key = (job.rule.name, partition, cpus, mem, minutes, gpus)
        if key in seen:
            continue
        seen.add(key)
        part = partition or default
        where = f"rule {job.rule.name}"
        if part is None:
            raise WorkflowError(
                f"slurm pre-flight: {where}: no slurm_partition given and the cluster has no "
                "default partition; name one (see docs/pipeline.md, SLURM)"
            )
        lim = limits.get(str(part))
        if lim is None:
            raise WorkflowError(
                f"slurm pre-flight: {where}: partition {part!r} does not exist; "
                f"partitions: {', '.join(sorted(limits))}"
            )
        fix = "nothing was submitted; lower it (e.g. --set-{}) or pick another partition"
        if cpus > lim["cpus"]:
            raise WorkflowError(
                f"slurm pre-flight: {where} asks for {cpus} CPUs per job but a node of "
                f"partition {part!r} has at most {lim['cpus']}: "
                + fix.format(f"threads {job.rule.name}={lim['cpus']}")
            )
        if mem is not None and mem > lim["mem_mb"]:
            raise WorkflowError(
                f"slurm pre-flight: {where} asks for {mem} MB per job but a node of "
                f"partition {part!r} has at most {lim['mem_mb']} MB: "
                + fix.format(f"resources {job.rule.name}:mem_mb={lim['mem_mb']}")
            )
        if minutes is not None and lim["minutes"] is not None and minutes > lim["minutes"]:
            raise WorkflowError(
                f"slurm pre-flight: {where} asks for runtime {minutes} min but partition "
                f"{part!r} allows at most {lim['minutes']:g} min: "
                + fix.format(f"resources {job.rule.name}:runtime={int(lim['minutes'])}")
            )
        if gpus > lim["gpus"]:
            raise WorkflowError(
                f"slurm pre-flight: {where} asks for {gpus} GPU(s) per job but a node of "
                f"partition {part!r} has {lim['gpus']}: "
                + fix.format(f"resources {job.rule.name}:gpu={lim['gpus']}")
            )


onstart:
    if workflow.executor_plugin is not None and workflow.executor_plugin.name == "slurm":
        slurm_preflight(list(workflow.dag.needrun_jobs()))
