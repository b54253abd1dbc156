#!/usr/bin/env bash
# Stop the cluster that tests/cluster/slurm_up.sh started in DIR: cancel its jobs, then stop
# slurmd, slurmctld and munged by the PIDs in their PID files (nothing else is signalled).
set -uo pipefail
DIR=${1:?usage: slurm_down.sh DIR}
export SLURM_CONF="$DIR/slurm.conf"

if [ -f "$DIR/slurmctld.pid" ] && command -v scancel >/dev/null; then
  scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 40); do  # let slurmd end the jobs' steps (KillWait=5)
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
    sleep 0.5
  done
fi

stop() {  # stop NAME PIDFILE: SIGTERM, then SIGKILL after 10 s
  local name=$1 file=$2 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm_down.sh: $name ($pid) ignored SIGTERM, killing it" >&2
      kill -9 "$pid"
    fi
  fi
  rm -f "$file"
}
stop slurmd "$DIR/slurmd.pid"
stop slurmctld "$DIR/slurmctld.pid"
stop munged "$DIR/munge/munged.pid"
echo "slurm_down.sh: stopped the cluster in $DIR" >&2
