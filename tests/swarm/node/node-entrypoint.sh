#!/usr/bin/env bash
# The entry point of a swarm test node: runs dockerd in the foreground.
#
#   inflow-swarm-node [extra dockerd flags...]
#
# INFLOW_NODE_CGROUP_PARENT (optional): the cgroup the engine puts its containers under, e.g.
# /inflow-swarm-abc-1. Needed where the node is not --privileged (cgroup v1, the host's
# /sys/fs/cgroup mounted rw): without it the node's containers would land in the host engine's
# own /docker cgroup. tests/swarm/cluster.ts removes that cgroup after the node is gone.
set -Eeo pipefail

# A stale pid file from a killed engine (the volume is not, but /var/run is kept across a
# `docker start` of the same container) would stop dockerd and containerd from starting again.
rm -f /var/run/docker.pid /var/run/docker/containerd/containerd.pid

args=(--host unix:///var/run/docker.sock)
if [[ -n "${INFLOW_NODE_CGROUP_PARENT:-}" ]]; then
	args+=("--cgroup-parent=${INFLOW_NODE_CGROUP_PARENT}")
fi
exec dockerd "${args[@]}" "$@"
