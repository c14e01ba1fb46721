#!/bin/sh
# Entry script of a Redis server of the replicated layout, the primary and the replica alike
# (docs/guarantees.md): compose's deploy/compose/replicated-redis.yml, the Swarm stack and
# Kubernetes run it in the stack's Redis image as
#
#   sh /usr/local/etc/inflow/redis.sh [more redis-server options]
#
# The single Redis's durability flags (as docker-compose.yml and deploy/k8s/base/redis.yaml state
# them for the default layout), and the ones replication adds:
#   appendonly yes, appendfsync always  a job is on disk before the API answers 202
#   maxmemory REDIS_MAXMEMORY (1gb), maxmemory-policy noeviction  BullMQ's keys are never evicted
#   save ""                              the AOF is the persistence; no RDB snapshots besides
# and, because REDIS_ANNOUNCE_HOSTNAME is set (the replicated layout):
#   replica-announce-ip REDIS_ANNOUNCE_HOSTNAME  Sentinel and the other node know it by name
#   min-replicas-to-write 1, min-replicas-max-lag 10  a primary without a live replica refuses
#                                        writes, so nothing is accepted on one machine only
#   replicaof <primary> 6379             on the replica
#
#   REDIS_ANNOUNCE_HOSTNAME  this node's stable hostname (required)
#   REDIS_PRIMARY_HOST       the primary's hostname at first boot: this node starts as its
#                            replica, or as the primary when it names this node itself
#   REDIS_PRIMARY_PORT       (6379)
#   REDIS_SENTINELS          optional host:port,host:port: asked first who the primary is now
#   REDIS_SENTINEL_MASTER    the name the sentinels know it by (inflow)
#   REDIS_MAXMEMORY          (1gb)
#
# Who is the primary is decided by the sentinels once they run: a node that comes back after a
# failover asks them and starts as a replica of the primary they elected, instead of as a second
# primary holding older data (and if no sentinel answers, the first-boot role applies; Sentinel
# turns a stale primary into a replica when it sees it).
set -eu

# A name that does not resolve must fail fast. Redis resolves host names synchronously: a lookup
# of a dead node's name that takes Docker's embedded DNS on an internal network 10 s or more to
# give up (measured: 20 s) freezes the process that long, which sends a sentinel into TILT mode
# (no failover while its clock jumps) and a replica into silence. glibc reads RES_OPTIONS from the
# environment: one try, one second.
export RES_OPTIONS="${RES_OPTIONS:-timeout:1 attempts:1}"

: "${REDIS_PRIMARY_PORT:=6379}"
: "${REDIS_SENTINEL_MASTER:=inflow}"
: "${REDIS_MAXMEMORY:=1gb}"

die() {
	echo "redis.sh: $1" >&2
	exit 78
}

[ -n "${REDIS_ANNOUNCE_HOSTNAME:-}" ] || die "REDIS_ANNOUNCE_HOSTNAME is required (this node's own hostname)"
[ -n "${REDIS_PRIMARY_HOST:-}" ] || die "REDIS_PRIMARY_HOST is required (the primary's hostname at first boot)"

# current_primary: "host port" of the primary as the first sentinel that answers knows it, or
# nothing. Each sentinel gets two seconds: a dead sentinel must not hold the start up.
current_primary() {
	old_ifs=$IFS
	IFS=,
	for sentinel in ${REDIS_SENTINELS:-}; do
		IFS=$old_ifs
		answer=$(timeout 2 redis-cli -h "${sentinel%:*}" -p "${sentinel##*:}" --raw \
			SENTINEL get-master-addr-by-name "$REDIS_SENTINEL_MASTER" 2> /dev/null || true)
		host=$(echo "$answer" | sed -n 1p)
		port=$(echo "$answer" | sed -n 2p)
		case "$port" in
			'' | *[!0-9]*) continue ;;
		esac
		echo "$host $port"
		return 0
	done
	IFS=$old_ifs
}

primary=$(current_primary)
if [ -n "$primary" ]; then
	echo "redis.sh: the sentinels name $primary as the primary" >&2
else
	primary="$REDIS_PRIMARY_HOST $REDIS_PRIMARY_PORT"
	echo "redis.sh: no sentinel answered; first-boot primary: $primary" >&2
fi
primary_host=${primary% *}
primary_port=${primary##* }

set -- \
	--appendonly yes \
	--appendfsync always \
	--maxmemory "$REDIS_MAXMEMORY" \
	--maxmemory-policy noeviction \
	--save "" \
	--replica-announce-ip "$REDIS_ANNOUNCE_HOSTNAME" \
	--min-replicas-to-write 1 \
	--min-replicas-max-lag 10 \
	"$@"
if [ "$primary_host" != "$REDIS_ANNOUNCE_HOSTNAME" ]; then
	set -- "$@" --replicaof "$primary_host" "$primary_port"
fi

# The image's entrypoint drops root for the redis user (and, in the offline stand-in, turns
# Debian's protected mode off the way the official image's build does).
exec docker-entrypoint.sh redis-server "$@"
