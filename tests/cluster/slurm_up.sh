#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the cluster tests (tests/cluster/):
#   tests/cluster/slurm_up.sh DIR      start it; writes DIR/env.sh (source it to use the cluster)
#   tests/cluster/slurm_down.sh DIR    stop exactly the daemons this script started
# Installs slurm-wlm and munge with apt-get when missing (needs root). Everything lives in
# DIR: slurm.conf, a fresh munge key and socket, state, spool, logs and the daemons' PID
# files; the ports are free ports picked at start, so the cluster does not touch /etc or
# any other SLURM on the machine. No cgroups (linuxproc process tracking, no task plugin),
# no accounting database: tests/cluster/bin/sacct answers submitit's state queries from
# `scontrol show job` instead. The node has SLURM_TEST_CPUS CPUs (default 4, more than a
# small machine has: the test jobs are tiny and mostly wait) and one partition, `debug`.
set -euo pipefail
DIR=${1:?usage: slurm_up.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CPUS=${SLURM_TEST_CPUS:-4}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "slurm_up.sh: slurm-wlm and munge are missing and cannot be installed here (needs root and apt-get)" >&2
    exit 3
  fi
  echo "slurm_up.sh: installing slurm-wlm and munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >&2
fi
if [ "$(id -u)" != 0 ]; then
  echo "slurm_up.sh: slurmd has to run as root to start jobs" >&2
  exit 3
fi

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
mkdir -p "$DIR/munge" "$DIR/state" "$DIR/spool" "$DIR/log"
chmod 700 "$DIR/munge"

# free TCP ports for slurmctld and slurmd
read -r CTLD_PORT SLURMD_PORT < <(python3 - <<'PY'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
PY
)
MEM_MB=$(awk '/MemTotal/ {print int($2 / 1024 / 2)}' /proc/meminfo)  # half of this machine

dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
SOCKET="$DIR/munge/munge.socket"
munged --force --key-file="$DIR/munge/munge.key" --socket="$SOCKET" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" \
  --seed-file="$DIR/munge/munged.seed"

cat > "$DIR/slurm.conf" <<CONF
ClusterName=cocoertest
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
AuthInfo=socket=$SOCKET,cred_expire=5
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MpiDefault=none
SwitchType=switch/none
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
MailProg=/bin/true
EnforcePartLimits=ALL
KillWait=5
MinJobAge=3600
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF

cat > "$DIR/env.sh" <<ENV
export SLURM_CONF=$DIR/slurm.conf
export PATH=$HERE/bin:\$PATH
ENV
export SLURM_CONF="$DIR/slurm.conf"

slurmctld -i
slurmd -N localhost

for _ in $(seq 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null || true)
  if [ "$state" = idle ]; then
    echo "slurm_up.sh: one-node cluster up in $DIR (slurmctld port $CTLD_PORT, $CPUS CPUs, ${MEM_MB} MB)" >&2
    exit 0
  fi
  sleep 0.5
done
echo "slurm_up.sh: the node did not become idle (state: ${state:-none}); logs in $DIR/log" >&2
tail -n 20 "$DIR"/log/*.log >&2 || true
"$HERE/slurm_down.sh" "$DIR" || true
exit 1
