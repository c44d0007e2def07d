#!/usr/bin/env bash
# A single-node SLURM cluster on localhost for the tests, as root and without systemd.
#
#   tests/slurm/cluster.sh install   Debian's slurmctld, slurmd, slurm-client and munge, if missing
#   tests/slurm/cluster.sh start     install, write /etc/slurm/slurm.conf, start munged, slurmctld
#                                    and slurmd, and wait until the node is idle
#   tests/slurm/cluster.sh stop      cancel this cluster's jobs and stop the three daemons by pid
#   tests/slurm/cluster.sh status    the daemons' pids and `sinfo`
#
# Exit codes: 0 done, 1 failed (the daemons' logs are printed), 77 cannot run here (not root, no
# apt-get, or a slurm.conf this script did not write): the SLURM test is skipped with that reason.
# Every command is idempotent: `start` on a running cluster only waits for the node; `stop` on a
# stopped one does nothing. Only processes whose pids this script recorded are ever signalled.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client munge)
CONF=/etc/slurm/slurm.conf
MARK="# Written by auxbench tests/slurm/cluster.sh"
RUN=${AUXBENCH_SLURM_RUN:-/run/auxbench-slurm} # pid files and the daemons' own output
PARTITION=auxbench # tests/slurm/profile names it
NODE=$(hostname -s)
DAEMONS=(munged slurmctld slurmd)

say() { echo "cluster.sh: $*" >&2; }
skip() {
  say "SKIP: $*"
  exit 77
}
fail() {
  say "FAILED: $*"
  logs
  exit 1
}

logs() {
  local file
  for file in "$RUN"/*.out /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log \
    /var/log/munge/munged.log; do
    [ -s "$file" ] && { echo "--- $file (last 30 lines)" >&2; tail -n 30 "$file" >&2; }
  done
  return 0
}

installed() {
  local package
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || return 1
  done
}

install_packages() {
  installed && return 0
  [ "$(id -u)" = 0 ] || skip "not root: cannot apt-get install ${PACKAGES[*]}"
  command -v apt-get >/dev/null || skip "no apt-get: cannot install ${PACKAGES[*]}"
  say "installing ${PACKAGES[*]}"
  # Without systemd the packages' init scripts would try to start the daemons with a config that
  # does not exist yet: deny that through policy-rc.d unless the machine already has one.
  local policy=/usr/sbin/policy-rc.d ours=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && ours=1
  fi
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends)
  local status=0
  "${apt[@]}" "${PACKAGES[@]}" >/dev/null ||
    { apt-get update -qq && "${apt[@]}" "${PACKAGES[@]}" >/dev/null; } || status=$?
  [ "$ours" = 1 ] && rm -f "$policy"
  [ "$status" = 0 ] || fail "apt-get install ${PACKAGES[*]} exited with $status"
}

write_conf() {
  if [ -e "$CONF" ] && [[ "$(head -n 1 "$CONF")" != "$MARK"* ]]; then
    skip "$CONF exists and was not written by this script; not touching a real cluster's config"
  fi
  local cpus memory
  cpus=$(slurmd -C | sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' | head -n 1)
  memory=$(slurmd -C | sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' | head -n 1)
  [ -n "$cpus" ] && [ -n "$memory" ] || fail "slurmd -C did not report CPUs and RealMemory"
  mkdir -p /etc/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd /var/log/slurm
  cat >"$CONF.tmp" <<CONFIG
$MARK: one node, no accounting database, no cgroups.
ClusterName=auxbench
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# No accounting database: finished jobs stay visible to squeue (and to the Snakemake plugin's
# status queries, slurm-status-command: squeue) for an hour.
MinJobAge=3600
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONFIG
  mv "$CONF.tmp" "$CONF"
}

pid_of() { # the recorded pid of daemon $1, if that process is still that daemon
  local file="$RUN/$1.pid" pid
  [ -s "$file" ] || return 1
  pid=$(cat "$file")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

launch() { # launch NAME COMMAND...: in the foreground of a background process, pid recorded
  local name=$1
  shift
  pid_of "$name" >/dev/null && return 0
  # setsid (which does not fork here: a script's background job leads no process group) puts the
  # daemon in its own session, so $! is the daemon's pid.
  setsid "$@" </dev/null >"$RUN/$name.out" 2>&1 &
  echo $! >"$RUN/$name.pid"
}

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$what not ready after ${seconds}s"
    sleep 1
  done
}

node_idle() { sinfo -h -n "$NODE" -o %T | grep -qx idle; }

start() {
  [ "$(id -u)" = 0 ] || skip "not root: slurmd and a config under /etc need root"
  install_packages
  write_conf
  mkdir -p "$RUN"
  # munged as the munge user, as its packaging runs it; the key is made at install time.
  install -d -o munge -g munge -m 0755 /run/munge
  [ -s /etc/munge/munge.key ] || setpriv --reuid=munge --regid=munge --init-groups mungekey -c
  launch munged setpriv --reuid=munge --regid=munge --init-groups munged -F
  sleep 0.5
  wait_for 30 munged bash -c 'munge -n | unmunge'
  # -c: no state from a previous run (no old jobs); -D: in the foreground of the recorded pid.
  launch slurmctld slurmctld -D -c
  wait_for 60 slurmctld scontrol ping
  launch slurmd slurmd -D
  local deadline=$((SECONDS + 90))
  until node_idle; do
    # A node left down or drained by an earlier run is resumed (it has no jobs).
    if sinfo -h -n "$NODE" -o %T | grep -Eq 'down|drain'; then
      scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "node $NODE not idle after 90s: $(sinfo -h -N -l 2>&1)"
    sleep 1
  done
  for daemon in "${DAEMONS[@]}"; do
    pid_of "$daemon" >/dev/null || fail "$daemon exited"
  done
  say "up: partition $PARTITION, node $NODE idle ($(status_line))"
}

status_line() {
  local daemon out=()
  for daemon in "${DAEMONS[@]}"; do out+=("$daemon=$(pid_of "$daemon" || echo -)"); done
  echo "${out[*]}"
}

stop() {
  [ -d "$RUN" ] || return 0
  local jobs
  if pid_of slurmctld >/dev/null && jobs=$(squeue -h -t running,pending -o %i 2>/dev/null) &&
    [ -n "$jobs" ]; then
    # shellcheck disable=SC2086
    scancel $jobs || true
    sleep 2
  fi
  local daemon pid i
  for daemon in slurmd slurmctld munged; do
    pid=$(pid_of "$daemon") || { rm -f "$RUN/$daemon.pid"; continue; }
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 50); do
      [ -d "/proc/$pid" ] || break
      sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
      say "$daemon ($pid) did not stop on SIGTERM; SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN/$daemon.pid"
  done
  say "stopped"
}

case "${1:-}" in
install) install_packages ;;
start) start ;;
stop) stop ;;
status)
  status_line
  sinfo 2>&1 || true
  ;;
*)
  echo "usage: $0 install|start|stop|status" >&2
  exit 2
  ;;
esac
