"""The SLURM profile against a real Slurm: a one-node cluster on localhost.

`scripts/local-slurm.sh` installs slurm-wlm and munge from Debian packages when missing,
starts munged + slurmctld + slurmd (no accounting database, like many small clusters) and
stops exactly those daemons by their PIDs afterwards. The reduced smoke experiment (PPO and
GoRL-FM, one task, one seed, tiny budgets) then runs through `snakemake --profile
profiles/slurm --profile profiles/slurm-local` with snakemake-executor-plugin-slurm, the
partition given on the command line as docs/pipeline.md says. The tests read what Slurm
itself recorded (`squeue --states=all` keeps finished jobs for MinJobAge = 300 s): every
job went through sbatch and completed, with the resources the layered profiles promise;
the tables and figures exist; a rerun submits nothing; a job the node can never run is
refused before anything is submitted. Skipped, with the reason, where the cluster cannot
be started (not root, no apt-get / package access, a Slurm of the machine's own).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "local-slurm.sh"
PARTITION = "gorltest"
MAXTIME = 600  # minutes: the partition's limit (the smoke jobs ask for at most 120)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FIGURES = ["learning_curves", "aggregate_metrics", "probability_of_improvement",
           "performance_profiles", "sample_efficiency", "action_distribution"]
# jobs of the smoke DAG below that must go through sbatch, at least (the workflow may have more)
EXPECTED_JOBS = Counter({"train": 2, "aggregate": 1, "statistics": 1, "paper_table": 1, "gorl_bimodality": 1,
                         **{f"figure_{f}": 1 for f in FIGURES}})
LOCAL_RULES = {"default", "all"}  # `localrules:` of Snakefile / workflow/Snakefile

pytestmark = pytest.mark.timeout(1800)


def _free_port_pair() -> int:
    """A port P with P and P+1 free (slurmctld, slurmd)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port > 65000:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A running one-node Slurm; yields its node size. Stopped (by PID) afterwards."""
    if sys.platform != "linux":
        pytest.skip("a local Slurm cluster needs Linux")
    mem = min(_mem_total_mb() - 512, 16000)
    if mem < 4500:
        pytest.skip(f"a local Slurm cluster for the smoke workflow needs ~5 GB of memory, have {mem + 512} MB")
    state = tmp_path_factory.mktemp("slurm")
    cpus = len(os.sched_getaffinity(0))  # like nproc: the CPUs this process may use
    env = dict(os.environ, LOCAL_SLURM_STATE=str(state), LOCAL_SLURM_PARTITION=PARTITION,
               LOCAL_SLURM_CPUS=str(cpus), LOCAL_SLURM_MEM_MB=str(mem),
               LOCAL_SLURM_PORT=str(_free_port_pair()), LOCAL_SLURM_MAXTIME=str(MAXTIME))
    env.pop("SLURM_CONF", None)
    t0 = time.perf_counter()
    out = subprocess.run(["bash", str(SCRIPT), "start"], env=env, capture_output=True, text=True,
                         timeout=600)
    if out.returncode == 3:
        pytest.skip(f"no local Slurm cluster here: {out.stderr.strip().splitlines()[-1]}")
    try:
        assert out.returncode == 0, f"local-slurm.sh start failed:\n{out.stdout}\n{out.stderr}"
        pids = {d: int((state / f"{d}.pid").read_text()) for d in ("munged", "slurmctld", "slurmd")}
        print(f"\nlocal Slurm up in {time.perf_counter() - t0:.0f} s: {cpus} CPUs, {mem} MB, {pids}")
        yield {"cpus": cpus, "mem_mb": mem, "pids": pids, "state": state}
    finally:
        stop = subprocess.run(["bash", str(SCRIPT), "stop"], env=env, capture_output=True, text=True,
                              timeout=120)
        print(stop.stdout, stop.stderr)
    assert stop.returncode == 0, stop.stderr
    for d, pid in pids.items():
        assert not Path(f"/proc/{pid}").exists(), f"{d} (PID {pid}) still running after stop"
    link = Path("/etc/slurm/slurm.conf")
    assert not (link.is_symlink() and Path(os.readlink(link)).parent == state), "stop left its link"


def _snakemake(work: Path, *args: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL="disable",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                           "--directory", str(work), *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=work)


def _profiles(*layers: str) -> list[str]:
    args = []
    for layer in layers:
        args += ["--profile", str(ROOT / "profiles" / layer)]
    return args


def _run_id(out: subprocess.CompletedProcess) -> str:
    m = re.search(r"SLURM run ID: ([0-9a-f-]{36})", out.stdout + out.stderr)
    assert m, (out.stdout + out.stderr)[-3000:]
    return m.group(1)


def _job_stats(text: str) -> Counter:
    """Snakemake's own "Job stats" table of a run: jobs per rule, local rules left out."""
    lines = text.splitlines()
    start = lines.index("Job stats:") + 3  # title, header, dashes
    stats = Counter()
    for line in lines[start:]:
        rule, count = line.split()
        if rule == "total":
            break
        if rule not in LOCAL_RULES:
            stats[rule] = int(count)
    return stats


def _jobs(run_id: str) -> pd.DataFrame:
    """Slurm's own record of the jobs of one Snakemake run (the plugin names them by run ID)."""
    out = subprocess.run(["squeue", "--states=all", "--noheader", "--name", run_id,
                          "--format=%i|%T|%C|%m|%l|%P|%k"],
                         capture_output=True, text=True, timeout=60, check=True)
    rows = [ln.split("|") for ln in out.stdout.splitlines() if ln.strip()]
    df = pd.DataFrame(rows, columns=["jobid", "state", "cpus", "mem", "time", "partition", "comment"])
    df["rule"] = df["comment"].str.extract(r"^rule_(\w+?)(?:_wildcards_.*)?$", expand=False)
    return df


@pytest.fixture(scope="module")
def smoke(cluster, tmp_path_factory):
    """The reduced smoke workflow through sbatch; yields (workdir, results, run ID, output)."""
    work = tmp_path_factory.mktemp("slurm_smoke")
    cfg = yaml.safe_load((ROOT / ".test" / "config" / "e2e.yaml").read_text())
    cfg.update(name="slurm", algorithms=["ppo", "gorl_fm"], tasks=["cartpole-balance"], seeds=[0])
    (work / "slurm.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    out = _snakemake(work, *_profiles("slurm", "slurm-local"),
                     "--default-resources", f"slurm_partition={PARTITION}",
                     "--configfile", "slurm.yaml")
    seconds = time.perf_counter() - t0
    print(f"\nsmoke workflow through Slurm: {seconds:.0f} s")
    assert out.returncode == 0, (out.stdout + out.stderr)[-8000:]
    return work, work / "results" / "slurm", _run_id(out), out


def test_every_job_went_through_sbatch(smoke):
    _, _, run_id, out = smoke
    jobs = _jobs(run_id)
    planned = _job_stats(out.stdout + out.stderr)
    assert not EXPECTED_JOBS - planned, planned
    assert Counter(jobs["rule"]) == planned, jobs.to_string()
    assert (jobs["state"] == "COMPLETED").all(), jobs.to_string()
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", out.stdout + out.stderr)
    # each job id once (Snakemake 9 can log a submission line twice: its own and the executor's)
    assert sorted(set(submitted)) == sorted(jobs["jobid"])


def test_layered_profiles_keep_every_default(smoke):
    """The partition from the command line and profiles/slurm-local change only what they name:
    every job keeps its rule's memory and time limit (nothing wiped), training gets 1 CPU."""
    _, _, run_id, _ = smoke
    jobs = _jobs(run_id).set_index("comment")
    assert (jobs["partition"] == PARTITION).all(), jobs.to_string()
    train = jobs[jobs["rule"] == "train"]
    assert (train[["cpus", "mem", "time"]] == ["1", "2000M", "2:00:00"]).all(axis=None), train.to_string()
    stats = jobs.loc["rule_statistics"]
    assert (stats["cpus"], stats["mem"], stats["time"]) == ("1", "4000M", "1:00:00")
    rest = jobs[jobs["rule"].isin(set(EXPECTED_JOBS) - {"train", "statistics"})]
    assert len(rest) == sum(EXPECTED_JOBS.values()) - 3
    assert (rest[["cpus", "mem", "time"]] == ["1", "4000M", "30:00"]).all(axis=None), rest.to_string()


def test_tables_and_figures(smoke):
    _, res, _, _ = smoke
    finals = pd.read_csv(res / "tables" / "final_scores.csv")
    assert sorted(finals["algorithm"]) == ["gorl_fm", "ppo"]
    assert finals["status"].isin(["completed", "diverged"]).all(), finals.to_string()
    for t in ["evals_tidy.parquet", "aggregate_metrics.csv", "probability_of_improvement.csv",
              "performance_profiles.csv", "sample_efficiency.csv", "bimodality.csv",
              "paper_comparison.md"]:
        assert (res / "tables" / t).stat().st_size > 0, t
    for f in FIGURES:
        assert (res / "figures" / f"{f}.png").read_bytes()[:8] == PNG_MAGIC, f
        assert (res / "figures" / f"{f}.pdf").read_bytes()[:5] == b"%PDF-", f
    # every job wrote its own log (rule `log:`), not only the terminal
    for rule in EXPECTED_JOBS:
        if rule != "train":
            name = "gorl_bimodality_gorl_fm" if rule == "gorl_bimodality" else rule  # one job per GoRL algorithm
            assert (res / "logs" / f"{name}.log").exists(), rule


def test_rerun_submits_nothing(smoke):
    work, _, _, _ = smoke
    out = _snakemake(work, *_profiles("slurm", "slurm-local"),
                     "--default-resources", f"slurm_partition={PARTITION}",
                     "--configfile", "slurm.yaml", timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    text = out.stdout + out.stderr
    assert "Nothing to be done" in text
    assert "has been submitted with SLURM jobid" not in text
    assert _jobs(_run_id(out)).empty


@pytest.mark.parametrize("override, words", [
    (lambda c: ["--set-threads", f"train={c['cpus'] + 1}"], ["rule train", "CPUs", "--set-threads train="]),
    # (a command-line --set-resources replaces all of slurm-local's: name train's runtime too)
    (lambda c: ["--set-resources", f"train:mem_mb={c['mem_mb'] + 1000}", "train:runtime=60"],
     ["rule train", "MB", "--set-resources train:mem_mb="]),
    (lambda c: ["--set-resources", f"train:runtime={MAXTIME + 60}"],
     ["rule train", f"at most {MAXTIME} min", f"--set-resources train:runtime={MAXTIME}"]),
    (lambda c: ["--default-resources", "slurm_partition=nosuchpartition"], ["nosuchpartition", PARTITION]),
], ids=["cpus", "memory", "time", "partition"])
def test_impossible_job_refused_before_submission(cluster, tmp_path, override, words):
    """A request the node can never satisfy (Slurm would accept it and let it pend for ever
    with reason PartitionConfig) stops the workflow at once, in one line, nothing submitted."""
    cfg = yaml.safe_load((ROOT / ".test" / "config" / "e2e.yaml").read_text())
    cfg.update(name="refused", algorithms=["ppo"], tasks=["cartpole-balance"], seeds=[0])
    (tmp_path / "refused.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    out = _snakemake(tmp_path, *_profiles("slurm", "slurm-local"), *override(cluster),
                     "--configfile", "refused.yaml", timeout=300)
    assert out.returncode != 0
    err = out.stdout + out.stderr
    line = next((ln for ln in err.splitlines() if "slurm pre-flight" in ln), None)
    assert line is not None, err[-4000:]
    for w in words:
        assert w in line, line
    assert "has been submitted with SLURM jobid" not in err
    assert _jobs(_run_id(out)).empty
    assert not (tmp_path / "results").exists()



def test_sigint_cancels_the_submitted_jobs(cluster, tmp_path):
    """Ctrl-C (SIGINT) is the clean stop documented in docs/pipeline.md: Snakemake scancels
    what it submitted and exits (SIGTERM would only wait for the jobs to finish)."""
    cfg = yaml.safe_load((ROOT / ".test" / "config" / "e2e.yaml").read_text())
    cfg.update(name="interrupted", algorithms=["ppo"], tasks=["cartpole-balance"], seeds=[0],
               steps=2_000_000)
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    env = dict(os.environ, MUJOCO_GL="disable",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    log = tmp_path / "snakemake.out"
    with open(log, "w") as fh:
        # a shell's background job (`bash .ci/run &`) ignores SIGINT and its children inherit
        # that: a small trampoline gives Snakemake the default back before exec (preexec_fn would
        # fork this process, which JAX's threads make unsafe)
        reset_sigint = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                        "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")
        proc = subprocess.Popen([sys.executable, "-c", reset_sigint, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
                                 "--directory", str(tmp_path), *_profiles("slurm", "slurm-local"),
                                 "--configfile", "long.yaml"],
                                stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    try:
        deadline = time.time() + 180
        running = pd.DataFrame()
        while time.time() < deadline and proc.poll() is None:
            m = re.search(r"SLURM run ID: ([0-9a-f-]{36})", log.read_text())
            if m:
                jobs = _jobs(m.group(1))
                running = jobs[jobs["state"] == "RUNNING"]
                if len(running):
                    break
            time.sleep(1)
        assert len(running) == 1, log.read_text()[-4000:]
        proc.send_signal(signal.SIGINT)
        try:  # generous: Snakemake scancels, then waits for Slurm to report the job gone
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            raise AssertionError("snakemake did not exit within 300 s of SIGINT:\n"
                                 + log.read_text()[-3000:]) from None
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode != 0, text[-3000:]
    jobs = _jobs(m.group(1))
    assert list(jobs["state"]) == ["CANCELLED"], jobs.to_string()
    assert not (tmp_path / "results" / "interrupted" / "runs" / "ppo" / "cartpole-balance" / "seed0"
                / "status.json").exists()
