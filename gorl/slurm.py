"""Pre-flight check for the pipeline on Slurm: before anything is submitted, every job's request
is compared with what the cluster can ever give one job, and the workflow stops with one line
naming the rule, the request, the limit and the fix (``workflow/rules/slurm.smk`` calls
:func:`preflight` from Snakemake's ``onstart`` with the slurm executor).

Why: with Slurm's default ``EnforcePartLimits=NO``, sbatch accepts a job that asks for more
CPUs, memory or time than any node / the partition allows, and the job pends for ever (reason
PartitionConfig, PartitionTimeLimit, ...) while Snakemake waits silently (measured on a
one-node Slurm 22.05 with snakemake-executor-plugin-slurm 2.8.0).

What is checked, per job, against its partition (``slurm_partition``, else the default):

- CPUs (``cpus_per_task``, else ``cpus_per_gpu`` x ``gpu``, else threads) <= the largest node's
  CPUs and the partition's ``MaxCPUsPerNode``;
- memory (``mem_mb``, or ``mem_mb_per_cpu`` x CPUs) <= the largest node's ``RealMemory`` and the
  partition's ``MaxMemPerNode``;
- time (``runtime``, minutes) <= the partition's ``MaxTime``;
- GPUs (``gpu``) <= the most GPUs (gres ``gpu``) of one node.

The parsing reads ``sinfo -h -N -o %P|%c|%m|%G`` and ``scontrol show partition --oneliner``
text, so it is tested on recorded output (``tests/test_slurm_limits.py``) as well as on a real
one-node Slurm (``tests/test_slurm.py``).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SINFO = ("sinfo", "-h", "-N", "-o", "%P|%c|%m|%G")
SCONTROL = ("scontrol", "show", "partition", "--oneliner")


class SlurmError(RuntimeError):
    """A job the cluster can never run, or a cluster that cannot be asked (one line)."""


@dataclass
class Limits:
    """What one job can ever get in a partition."""

    cpus: int = 0
    mem_mb: int = 0
    gpus: int = 0
    minutes: float | None = None
    """None: no time limit."""


@dataclass(frozen=True)
class Request:
    """One job's request as sbatch gets it."""

    rule: str
    partition: str | None
    cpus: int
    mem_mb: int | None
    minutes: float | None
    gpus: int


def minutes(text: str) -> float | None:
    """A Slurm time limit ('infinite', 'UNLIMITED', 'MM', 'MM:SS', 'HH:MM:SS', 'D-HH[:MM[:SS]]')
    in minutes; None for no limit."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return None
    days = 0
    if "-" in text:
        d, text = text.split("-", 1)
        days = int(d)
        h, m, s = ([int(p) for p in text.split(":")] + [0, 0])[:3]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        else:
            h, m, s = parts[:3]
    return days * 1440 + h * 60 + m + s / 60


def most_gpus(gres: str) -> int:
    """Most GPUs of one node from sinfo's %G ('gpu:a100:4(S:0-1),shard:8' -> 4; '(null)' -> 0)."""
    best = 0
    for item in gres.split(","):
        m = re.match(r"gpu(?::[^:(]+)?:(\d+)", item.strip())
        if m:
            best = max(best, int(m.group(1)))
    return best


def partitions(sinfo: str, scontrol: str) -> tuple[dict[str, Limits], str | None]:
    """({partition: limits}, the default partition or None) from the output of :data:`SINFO`
    (one line per node and partition: grouped lines would print "16000+" for mixed sizes) and
    :data:`SCONTROL`."""
    limits: dict[str, Limits] = {}
    default = None
    for line in sinfo.splitlines():
        if not line.strip():
            continue
        name, cpus, mem, gres = line.split("|")
        if name.endswith("*"):
            name = default = name[:-1]
        lim = limits.setdefault(name, Limits())
        lim.cpus = max(lim.cpus, int(re.sub(r"\D", "", cpus) or 0))
        lim.mem_mb = max(lim.mem_mb, int(re.sub(r"\D", "", mem) or 0))
        lim.gpus = max(lim.gpus, most_gpus(gres))
    for line in scontrol.splitlines():
        fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
        lim = limits.get(fields.get("PartitionName", ""))
        if lim is None:
            continue
        lim.minutes = minutes(fields.get("MaxTime", "UNLIMITED"))
        if fields.get("MaxCPUsPerNode", "UNLIMITED").isdigit():
            lim.cpus = min(lim.cpus, int(fields["MaxCPUsPerNode"]))
        if fields.get("MaxMemPerNode", "UNLIMITED").isdigit():
            lim.mem_mb = min(lim.mem_mb, int(fields["MaxMemPerNode"]))
    return limits, default


def request(rule: str, resources: Mapping[str, Any], threads: int) -> Request:
    """The request of a job of ``rule`` with these Snakemake resources and threads, as the slurm
    executor turns it into sbatch options."""
    gpus = int(resources.get("gpu", 0) or 0)
    if resources.get("cpus_per_task"):
        cpus = int(resources["cpus_per_task"])
    elif gpus and resources.get("cpus_per_gpu"):
        cpus = int(resources["cpus_per_gpu"]) * gpus
    else:
        cpus = int(threads)
    if resources.get("mem_mb_per_cpu"):
        mem = int(resources["mem_mb_per_cpu"]) * cpus
    else:
        mem = int(resources["mem_mb"]) if resources.get("mem_mb") else None
    return Request(rule, resources.get("slurm_partition") or None, cpus, mem, resources.get("runtime") or None, gpus)


def check(requests: Iterable[Request], limits: Mapping[str, Limits], default: str | None) -> None:
    """Raise :class:`SlurmError`, one line, for the first request the cluster can never run."""
    fix = "nothing was submitted; lower it (e.g. --set-{}) or pick another partition"
    for r in dict.fromkeys(requests):  # each distinct request once, in order
        part = r.partition or default
        where = f"rule {r.rule}"
        if part is None:
            raise SlurmError(f"slurm pre-flight: {where}: no slurm_partition given and the cluster has no "
                             "default partition; name one (see docs/pipeline.md, SLURM)")
        lim = limits.get(str(part))
        if lim is None:
            raise SlurmError(f"slurm pre-flight: {where}: partition {part!r} does not exist; "
                             f"partitions: {', '.join(sorted(limits))}")
        if r.cpus > lim.cpus:
            raise SlurmError(f"slurm pre-flight: {where} asks for {r.cpus} CPUs per job but a node of "
                             f"partition {part!r} has at most {lim.cpus}: "
                             + fix.format(f"threads {r.rule}={lim.cpus}"))
        if r.mem_mb is not None and r.mem_mb > lim.mem_mb:
            raise SlurmError(f"slurm pre-flight: {where} asks for {r.mem_mb} MB per job but a node of "
                             f"partition {part!r} has at most {lim.mem_mb} MB: "
                             + fix.format(f"resources {r.rule}:mem_mb={lim.mem_mb}"))
        if r.minutes is not None and lim.minutes is not None and r.minutes > lim.minutes:
            raise SlurmError(f"slurm pre-flight: {where} asks for runtime {r.minutes} min but partition "
                             f"{part!r} allows at most {lim.minutes:g} min: "
                             + fix.format(f"resources {r.rule}:runtime={int(lim.minutes)}"))
        if r.gpus > lim.gpus:
            raise SlurmError(f"slurm pre-flight: {where} asks for {r.gpus} GPU(s) per job but a node of "
                             f"partition {part!r} has {lim.gpus}: "
                             + fix.format(f"resources {r.rule}:gpu={lim.gpus}"))


def _out(cmd: tuple[str, ...]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SlurmError(f"slurm pre-flight: cannot run {' '.join(cmd)}: {e}") from None
    if out.returncode != 0:
        msg = (out.stderr or out.stdout).strip().splitlines()
        raise SlurmError(f"slurm pre-flight: {' '.join(cmd)} failed: {msg[-1] if msg else out.returncode}")
    return out.stdout


def preflight(requests: Iterable[Request]) -> None:
    """:func:`check` the requests against this cluster's limits (asked with sinfo and scontrol)."""
    check(requests, *partitions(_out(SINFO), _out(SCONTROL)))
