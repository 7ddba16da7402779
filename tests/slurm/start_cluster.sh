#!/usr/bin/env bash
# Bring up a throw-away single-node SLURM cluster on this machine for tests/test_slurm.py.
#
#   tests/slurm/start_cluster.sh STATE_DIR
#
# Everything it creates lives in STATE_DIR: a private munge daemon (own key, socket and PID file, so a
# munge already running on the host is never touched), slurmctld and slurmd with their state, spool,
# logs and PID files. No systemd, no accounting daemon (the cluster runs without accounting, so job
# status is read with squeue; MinJobAge keeps finished jobs visible to it). FAKE_GPUS=N (default 1)
# declares N GPUs of type "fake" (device file /dev/null) so that --gpus requests can be scheduled on
# a machine without a GPU. Needs root and the Debian packages slurmctld, slurmd, slurm-client, munge
# (.ci/run installs them). tests/slurm/stop_cluster.sh STATE_DIR stops exactly these daemons.
#
# Two fixed paths are unavoidable: the client commands, and the nested `srun` of the
# snakemake-executor-plugin-slurm-jobstep (which drops every SLURM_* variable, SLURM_CONF included),
# read /etc/slurm/slurm.conf. The script links it (and gres.conf) there, and refuses to start when that
# path already holds a configuration it did not create.
set -euo pipefail

state=${1:?usage: start_cluster.sh STATE_DIR}
fake_gpus=${FAKE_GPUS:-1}
ctld_port=${SLURMCTLD_PORT:-16817}
slurmd_port=${SLURMD_PORT:-16818}
etc_conf=/etc/slurm/slurm.conf
etc_gres=/etc/slurm/gres.conf

die() { echo "start_cluster: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it starts slurmd and links /etc/slurm/slurm.conf)"
for bin in munged munge slurmctld slurmd sinfo scontrol; do
  command -v "$bin" >/dev/null || [ -x "/usr/sbin/$bin" ] || die "$bin not found (apt-get install slurmctld slurmd slurm-client munge)"
done
mkdir -p "$state"
state=$(cd "$state" && pwd -P)
marker="# Written by tests/slurm/start_cluster.sh"
harness_link() {  # true if $1 is absent, or a link this harness made (now or in an earlier, unfinished run)
  local target
  [ -e "$1" ] || [ -L "$1" ] || return 0
  [ -L "$1" ] || return 1
  target=$(readlink "$1")
  [ -e "$target" ] || return 0                                 # dangling: an earlier run's state is gone
  case "$(head -n 1 "$(dirname "$target")/slurm.conf" 2>/dev/null)" in "$marker"*) return 0 ;; esac
  return 1
}
for link in "$etc_conf" "$etc_gres"; do
  harness_link "$link" || die "$link belongs to a real SLURM installation: not touching it"
done

mkdir -p "$state"/{etc,run,log,spool,ctld}
install -d -m 0700 "$state/munge"

# --- munge: a private daemon with its own key and socket ---------------------------------------------
socket=$state/munge/munge.socket
if [ ! -s "$state/munge/munge.key" ]; then
  mungekey --create --keyfile="$state/munge/munge.key" >/dev/null 2>&1 \
    || dd if=/dev/urandom of="$state/munge/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$state/munge/munge.key"
fi
/usr/sbin/munged --force --socket="$socket" --key-file="$state/munge/munge.key" \
  --pid-file="$state/run/munged.pid" --log-file="$state/log/munged.log" --seed-file="$state/munge/seed"
for _ in $(seq 50); do [ -S "$socket" ] && break; sleep 0.1; done
munge --socket="$socket" -n | unmunge --socket="$socket" >/dev/null || die "munge does not answer on $socket"

# --- the node as slurmd sees it ------------------------------------------------------------------------
node=$(hostname -s)
hw=$(/usr/sbin/slurmd -C | head -1)
field() { sed -nE "s/.*[[:space:]]$1=([0-9]+).*/\1/p" <<<"$hw"; }
cpus=$(field CPUs); sockets=$(field SocketsPerBoard); cores=$(field CoresPerSocket)
threads=$(field ThreadsPerCore); memory=$(( $(field RealMemory) * 9 / 10 ))

gres_lines=""
node_gres=""
if [ "$fake_gpus" -gt 0 ]; then
  gres_lines="GresTypes=gpu"
  node_gres="Gres=gpu:fake:$fake_gpus"
  {
    echo "AutoDetect=off"
    for i in $(seq 0 $((fake_gpus - 1))); do
      echo "NodeName=$node Name=gpu Type=fake File=/dev/null"
    done
  } >"$state/etc/gres.conf"
fi

cat >"$state/etc/slurm.conf" <<CONF
$marker: a one-node test cluster, no accounting.
ClusterName=livaebench
SlurmctldHost=$node
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
# containers without cgroup control: plain process tracking, no CPU binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
$gres_lines
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# without accounting the executor reads job states with squeue: keep finished jobs listed for 10 min
MinJobAge=600
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$node CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$memory $node_gres State=UNKNOWN
PartitionName=main Nodes=$node Default=YES MaxTime=INFINITE State=UP
CONF

mkdir -p /etc/slurm
ln -sfn "$state/etc/slurm.conf" "$etc_conf"
if [ "$fake_gpus" -gt 0 ]; then ln -sfn "$state/etc/gres.conf" "$etc_gres"; fi

# --- controller and node daemon (both fork and write their PID files) --------------------------------
/usr/sbin/slurmctld -i -f "$state/etc/slurm.conf"
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
/usr/sbin/slurmd -f "$state/etc/slurm.conf"
for _ in $(seq 150); do
  sinfo -h -N -o %t 2>/dev/null | grep -qx idle && break
  sleep 0.2
done
if ! sinfo -h -N -o %t 2>/dev/null | grep -qx idle; then
  tail -n 20 "$state/log/slurmctld.log" "$state/log/slurmd.log" >&2 || true
  die "node $node did not become idle"
fi
sinfo -N -o "%N %t %c %m %G"
