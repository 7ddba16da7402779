#!/usr/bin/env bash
# Stop the test cluster that tests/slurm/start_cluster.sh STATE_DIR started, and nothing else.
#
#   tests/slurm/stop_cluster.sh STATE_DIR
#
# Jobs still queued or running on it are cancelled first (they can only be this cluster's). Each daemon
# is found by the PID file in STATE_DIR/run and signalled only if that PID still runs the expected
# program (a recycled PID is left alone). The /etc/slurm links are removed only if they point into
# STATE_DIR. Safe to run twice, or after a start that failed halfway.
set -uo pipefail

state=${1:?usage: stop_cluster.sh STATE_DIR}
[ -d "$state" ] || exit 0
state=$(cd "$state" && pwd -P)

ours() {  # ours PIDFILE PROGRAM: print the PID if the file names a live process running PROGRAM
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ] && echo "$pid"
}

stop() {  # stop PIDFILE PROGRAM
  local pid
  pid=$(ours "$1" "$2") || return 0
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 100); do
    [ -d "/proc/$pid" ] || { echo "stopped $2 ($pid)"; rm -f "$1"; return 0; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null && echo "killed $2 ($pid)"
  rm -f "$1"
}

if ours "$state/run/slurmctld.pid" slurmctld >/dev/null; then
  scancel --full --quiet --state=PENDING 2>/dev/null
  scancel --full --quiet 2>/dev/null
  for _ in $(seq 50); do
    [ -z "$(squeue -h -t PENDING,RUNNING,COMPLETING -o %i 2>/dev/null)" ] && break
    sleep 0.2
  done
fi

stop "$state/run/slurmd.pid" slurmd
stop "$state/run/slurmctld.pid" slurmctld
stop "$state/run/munged.pid" munged

for link in /etc/slurm/slurm.conf /etc/slurm/gres.conf; do
  if [ -L "$link" ]; then
    target=$(readlink "$link")
    [ "${target#"$state"/}" != "$target" ] && rm -f "$link"
  fi
done
exit 0
