"""gorl.slurm, the pipeline's pre-flight check on Slurm, on recorded sinfo / scontrol text: the
cases a one-node test cluster cannot show (GPUs, mixed node sizes, per-partition caps, every time
format). tests/test_slurm.py runs the same check through Snakemake on a real Slurm."""
from __future__ import annotations

import pytest

from gorl import slurm
from gorl.slurm import Limits, Request

# sinfo -h -N -o '%P|%c|%m|%G': one line per node and partition; `*` marks the default
SINFO = """\
cpu*|32|128000|(null)
cpu*|64|256000|(null)
gpu|32|512000|gpu:h100:4(S:0-1),shard:8
gpu|16|256000|gpu:2
small|8|16000|(null)
"""
SCONTROL = """\
PartitionName=cpu AllowGroups=ALL Default=YES MaxNodes=UNLIMITED MaxTime=2-00:00:00 MaxCPUsPerNode=48 MaxMemPerNode=UNLIMITED
PartitionName=gpu AllowGroups=ALL MaxTime=12:00:00 MaxCPUsPerNode=UNLIMITED MaxMemPerNode=400000
PartitionName=small AllowGroups=ALL MaxTime=UNLIMITED
PartitionName=down AllowGroups=ALL MaxTime=30
"""


@pytest.mark.parametrize("text, want", [
    ("UNLIMITED", None), ("infinite", None), ("", None),
    ("30", 30), ("30:30", 30.5), ("01:02:30", 62.5), ("2-00:00:00", 2880), ("1-12", 2160), ("1-01:30", 1530),
])
def test_time_limits_in_minutes(text, want):
    assert slurm.minutes(text) == want


@pytest.mark.parametrize("gres, want", [
    ("(null)", 0), ("gpu:2", 2), ("gpu:h100:4(S:0-1),shard:8", 4), ("shard:8,gpu:a100:1", 1), ("mps:100", 0),
])
def test_most_gpus_of_a_node(gres, want):
    assert slurm.most_gpus(gres) == want


def test_partitions_take_the_largest_node_and_the_partition_caps():
    limits, default = slurm.partitions(SINFO, SCONTROL)
    assert default == "cpu"
    assert limits == {"cpu": Limits(cpus=48, mem_mb=256000, gpus=0, minutes=2880),   # MaxCPUsPerNode caps 64
                      "gpu": Limits(cpus=32, mem_mb=400000, gpus=4, minutes=720),    # MaxMemPerNode caps 512000
                      "small": Limits(cpus=8, mem_mb=16000, gpus=0, minutes=None)}   # no node in "down"


def test_requests_as_sbatch_gets_them():
    assert slurm.request("train", {"mem_mb": 4000, "runtime": 120}, 1) == Request("train", None, 1, 4000, 120, 0)
    assert slurm.request("train", {"cpus_per_task": 4, "mem_mb_per_cpu": 2000, "slurm_partition": "cpu"}, 1) == \
        Request("train", "cpu", 4, 8000, None, 0)
    assert slurm.request("train", {"gpu": 2, "cpus_per_gpu": 8}, 1) == Request("train", None, 16, None, None, 2)
    assert slurm.request("figure", {}, 3) == Request("figure", None, 3, None, None, 0)


@pytest.mark.parametrize("req, words", [
    (Request("train", None, 49, None, None, 0), ["rule train asks for 49 CPUs", "'cpu' has at most 48",
                                                  "--set-threads train=48"]),
    (Request("train", "small", 1, 20000, None, 0), ["20000 MB", "at most 16000 MB",
                                                    "--set-resources train:mem_mb=16000"]),
    (Request("train", "gpu", 1, 450000, None, 1), ["at most 400000 MB"]),
    (Request("train", "gpu", 1, None, 721, 1), ["runtime 721 min", "at most 720 min",
                                                "--set-resources train:runtime=720"]),
    (Request("train", None, 1, None, None, 1), ["1 GPU(s)", "'cpu' has 0", "--set-resources train:gpu=0"]),
    (Request("train", "gpu", 1, None, None, 5), ["5 GPU(s)", "'gpu' has 4"]),
    (Request("train", "nosuch", 1, None, None, 0), ["partition 'nosuch' does not exist", "cpu, gpu, small"]),
], ids=["cpus", "memory", "memory-cap", "time", "gpu-on-cpu", "gpus", "partition"])
def test_a_request_no_node_can_run_is_refused_in_one_line(req, words):
    limits, default = slurm.partitions(SINFO, SCONTROL)
    fine = Request("figure", None, 1, 4000, 60, 0)
    with pytest.raises(slurm.SlurmError) as e:
        slurm.check([fine, req, fine], limits, default)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("slurm pre-flight: ")
    for w in words:
        assert w in msg, msg


def test_requests_that_fit_pass_and_a_missing_default_is_named():
    limits, default = slurm.partitions(SINFO, SCONTROL)
    slurm.check([Request("train", None, 48, 256000, 2880, 0), Request("train", "gpu", 32, 400000, 720, 4),
                 Request("figure", "small", 8, 16000, 10**6, 0)], limits, default)  # each at its limit
    with pytest.raises(slurm.SlurmError, match="no slurm_partition given and the cluster has no default"):
        slurm.check([Request("train", None, 1, None, None, 0)], limits, None)


def test_a_cluster_that_cannot_be_asked_is_one_line(monkeypatch):
    monkeypatch.setattr(slurm, "SINFO", ("sinfo-that-does-not-exist",))
    with pytest.raises(slurm.SlurmError, match="cannot run sinfo-that-does-not-exist"):
        slurm.preflight([Request("train", None, 1, None, None, 0)])
