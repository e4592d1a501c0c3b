#!/usr/bin/env bash
# A one-node Slurm cluster on localhost, for tests/test_slurm.py and for trying the SLURM
# profile on a workstation (Debian/Ubuntu, run as root; no systemd needed).
#
#   scripts/local-slurm.sh start   # install if missing, configure, start munged + slurmctld + slurmd
#   scripts/local-slurm.sh stop    # stop exactly the daemons `start` started (their PIDs in $STATE)
#
# Everything lives in $STATE: slurm.conf, its own munge key and socket, spool dirs, logs, PID
# files. The one thing outside it is /etc/slurm/slurm.conf, made a symbolic link to
# $STATE/slurm.conf (and removed by `stop`): Slurm's commands inside a job (the `srun` of
# snakemake-executor-plugin-slurm-jobstep) run with every SLURM_* variable, SLURM_CONF
# included, removed, so only the default path works. If /etc/slurm/slurm.conf already
# exists, `start` refuses: that machine has a Slurm of its own. A munged already running is
# left alone (ours has its own socket).
#
#   sudo scripts/local-slurm.sh start
#   sinfo; squeue
#   snakemake --profile profiles/slurm --profile profiles/slurm-local
#   sudo scripts/local-slurm.sh stop
#
# Environment (all optional):
#   LOCAL_SLURM_STATE      state directory                     [/tmp/gorl-local-slurm]
#   LOCAL_SLURM_PARTITION  name of the (default) partition     [debug]
#   LOCAL_SLURM_CPUS       CPUs of the node                    [nproc]
#   LOCAL_SLURM_MEM_MB     RealMemory of the node in MB        [total memory - 512]
#   LOCAL_SLURM_PORT       slurmctld port; slurmd uses PORT+1  [6817]
#   LOCAL_SLURM_MAXTIME    the partition's MaxTime (minutes)   [INFINITE]
#   LOCAL_SLURM_INSTALL    0: never apt-get install (fail instead) [1]
#
# Exit status: 0 started/stopped; 3 cannot run here (not root, Slurm/munge missing and not
# installable, or a Slurm configuration of its own in /etc/slurm); 1 anything else.
#
# Deliberately like a small real cluster without accounting: AccountingStorageType=none (no
# slurmdbd, so `sacct` fails) and Slurm's default MinJobAge (300 s). EnforcePartLimits stays
# at Slurm's default (NO): a job asking more than the node has is accepted and pends for ever
# (reason PartitionConfig), which is what the workflow's pre-flight check must catch.
set -euo pipefail

STATE=${LOCAL_SLURM_STATE:-/tmp/gorl-local-slurm}
PARTITION=${LOCAL_SLURM_PARTITION:-debug}
CPUS=${LOCAL_SLURM_CPUS:-$(nproc)}
MEM=${LOCAL_SLURM_MEM_MB:-$(( $(awk '/^MemTotal:/{print int($2/1024)}' /proc/meminfo) - 512 ))}
PORT=${LOCAL_SLURM_PORT:-6817}
MAXTIME=${LOCAL_SLURM_MAXTIME:-INFINITE}
INSTALL=${LOCAL_SLURM_INSTALL:-1}
DAEMONS=(munged slurmctld slurmd)

die() { echo "local-slurm: $*" >&2; exit 1; }
cannot_run() { echo "local-slurm: $*" >&2; exit 3; }  # exit 3: cannot run on this machine (tests skip)

alive() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

ETC_CONF=/etc/slurm/slurm.conf

stop() {
  # reverse start order; only the PIDs recorded by `start`, never by name
  for d in slurmd slurmctld munged; do
    f="$STATE/$d.pid"
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; echo "killed $d ($pid)"; else echo "stopped $d ($pid)"; fi
    fi
    rm -f "$f"
  done
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$STATE/slurm.conf" ]; then
    rm -f "$ETC_CONF"
  fi
}

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null && return 0
  [ "$INSTALL" = 1 ] || cannot_run "slurmctld/slurmd/sbatch/munged not found and LOCAL_SLURM_INSTALL=0"
  [ "$(id -u)" = 0 ] || cannot_run "slurm-wlm and munge are not installed and installing them needs root"
  command -v apt-get >/dev/null || cannot_run "slurm-wlm and munge are not installed and there is no apt-get"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge; } >"${TMPDIR:-/tmp}/local-slurm-apt.log" 2>&1 \
    || cannot_run "apt-get install slurmctld slurmd slurm-client munge failed: $(tail -1 "${TMPDIR:-/tmp}/local-slurm-apt.log")"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  for _ in $(seq $((secs * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  die "$what did not come up within ${secs}s; logs in $STATE/*.log"
}

start() {
  [ "$(id -u)" = 0 ] || cannot_run "run as root (slurmd must start jobs as their user)"
  for d in "${DAEMONS[@]}"; do
    alive "$d" && die "$d already running (PID $(cat "$STATE/$d.pid")); run '$0 stop' first"
  done
  install_packages
  # a link left by an earlier start whose state directory is gone is stale: replace it
  if [ -L "$ETC_CONF" ] && [ ! -e "$ETC_CONF" ]; then rm -f "$ETC_CONF"; fi
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    [ "$(readlink "$ETC_CONF" || true)" = "$STATE/slurm.conf" ] \
      || cannot_run "$ETC_CONF exists: this machine has a Slurm configuration of its own; not touching it"
  fi
  # a failed start leaves nothing running
  trap 'rc=$?; if [ $rc != 0 ]; then stop >&2; fi' EXIT
  HOST=$(hostname -s)
  mkdir -p "$STATE"/{munge,spool/ctld,spool/d}
  chmod 0700 "$STATE" "$STATE/munge"

  # munge: a key and a socket of our own (munged checks that nobody else can write them)
  [ -s "$STATE/munge/munge.key" ] || mungekey --create --keyfile="$STATE/munge/munge.key"
  chmod 0400 "$STATE/munge/munge.key"
  MUNGE_SOCKET="$STATE/munge/munge.socket"
  # -F: foreground, so $! is munged itself
  munged -F --force --socket="$MUNGE_SOCKET" --key-file="$STATE/munge/munge.key" \
    --pid-file="$STATE/munge/munged.pidfile" --seed-file="$STATE/munge/munged.seed" \
    --log-file="$STATE/munged.log" >"$STATE/munged.out" 2>&1 &
  echo $! >"$STATE/munged.pid"
  wait_for 10 munged bash -c "munge -S '$MUNGE_SOCKET' -n </dev/null | unmunge -S '$MUNGE_SOCKET'"

  cat >"$STATE/slurm.conf" <<EOF
# written by scripts/local-slurm.sh
ClusterName=gorllocal
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pidfile
SlurmdPidFile=$STATE/slurmd.pidfile
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=$MAXTIME State=UP
EOF
  mkdir -p /etc/slurm
  ln -sfn "$STATE/slurm.conf" "$ETC_CONF"
  export SLURM_CONF="$STATE/slurm.conf"

  # -D: foreground, so $! is the daemon itself; -i: ignore state left by an earlier start
  slurmctld -D -i -f "$SLURM_CONF" >"$STATE/slurmctld.out" 2>&1 &
  echo $! >"$STATE/slurmctld.pid"
  slurmd -D -f "$SLURM_CONF" >"$STATE/slurmd.out" 2>&1 &
  echo $! >"$STATE/slurmd.pid"
  wait_for 60 "the node" bash -c "sinfo -h -N -o %t | grep -qE '^(idle|mix|alloc)'"
  for d in "${DAEMONS[@]}"; do alive "$d" || die "$d exited; see $STATE/$d.out"; done
  sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
