#!/usr/bin/env bash
# Start or stop a single-node SLURM cluster on localhost for the tests, from Debian packages,
# with one GPU as far as the scheduler knows (a character device that is really /dev/null).
# Needs root. It keeps its state under /run/rcb-slurm and writes /etc/slurm/{slurm,gres}.conf
# (srun inside a job only looks there), refusing to replace a slurm.conf it did not write;
# `stop` removes them again, so that SLURM clients (and Snakemake's SLURM plugin, which asks
# `scontrol` at start-up and waits 10 s for a controller that is gone) see no cluster.
#
#   tests/slurm/cluster.sh start    install packages if missing, start munge, slurmctld, slurmd
#   tests/slurm/cluster.sh stop     stop the daemons and remove the configuration
#   tests/slurm/cluster.sh status   print the node state (idle when ready)
set -euo pipefail

STATE=/run/rcb-slurm
CONF_DIR=/etc/slurm
MARKER="# written by rnn-cell-bench tests/slurm/cluster.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)

log() { echo "cluster.sh: $*" >&2; }

install_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

write_config() {
  local cpus memory_mb
  cpus=$(nproc)
  memory_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
  if [ -f "$CONF_DIR/slurm.conf" ] && ! grep -qx "$MARKER" "$CONF_DIR/slurm.conf"; then
    log "$CONF_DIR/slurm.conf belongs to another cluster; not touching it"
    exit 1
  fi
  mkdir -p "$CONF_DIR" "$STATE"/{state,spool,log} /run/fakegpu
  # A GPU without File= is dropped by slurmd, and a regular file is refused.
  [ -c /run/fakegpu/nvidia0 ] || mknod /run/fakegpu/nvidia0 c 1 3
  cat > "$CONF_DIR/slurm.conf" <<CONF
$MARKER
ClusterName=rcb-test
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/state
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
# Without fast backfill, CPU jobs wait behind a queued GPU job.
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1,bf_window=1,bf_resolution=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Else one job takes all the memory.
DefMemPerCPU=500
GresTypes=gpu
ReturnToService=2
# A job that is cancelled or times out gets SIGTERM, then SIGKILL this many seconds later.
KillWait=30
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory_mb Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
  echo "NodeName=localhost Name=gpu Count=1 File=/run/fakegpu/nvidia0" > "$CONF_DIR/gres.conf"
}

start_munge() {
  mkdir -p /run/munge
  chown munge:munge /run/munge
  if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged
  fi
}

node_state() { sinfo -h -o %T 2>/dev/null | head -n 1; }

start() {
  [ "$(id -u)" -eq 0 ] || { log "must run as root"; exit 1; }
  install_packages
  stop >/dev/null 2>&1 || true
  rm -rf "$STATE/state"  # a node left in DRAIN/INVAL would persist across restarts
  write_config
  start_munge
  slurmctld
  slurmd -N localhost
  for _ in $(seq 1 60); do
    case "$(node_state)" in
      idle) log "cluster ready (node idle)"; return 0 ;;
      *drain*|*inval*) scontrol update nodename=localhost state=resume || true ;;
    esac
    sleep 0.5
  done
  log "the node never became idle: $(node_state)"
  tail -n 20 "$STATE"/log/*.log >&2 || true
  exit 1
}

stop() {
  for pid_file in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    if [ -f "$pid_file" ]; then
      kill "$(cat "$pid_file")" 2>/dev/null || true
      rm -f "$pid_file"
    fi
  done
  pkill -x slurmd 2>/dev/null || true
  pkill -x slurmctld 2>/dev/null || true
  if [ -f "$CONF_DIR/slurm.conf" ] && grep -qx "$MARKER" "$CONF_DIR/slurm.conf"; then
    rm -f "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"
  fi
  log "cluster stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) node_state ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
