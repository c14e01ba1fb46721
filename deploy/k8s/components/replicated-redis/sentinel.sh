#!/bin/sh
# Entry script of a Redis Sentinel of the replicated layout (docs/guarantees.md), for the stack's
# Redis image (the official redis:7 or the offline stand-in): compose's
# deploy/compose/replicated-redis.yml, the Swarm stack and Kubernetes run it as
#
#   sh /usr/local/etc/inflow/sentinel.sh
#
# It writes a sentinel.conf that Sentinel can rewrite (Sentinel records the current primary, the
# replicas and the other sentinels in it), then runs `redis-server <conf> --sentinel` through the
# image's entrypoint, which drops root for the `redis` user.
#
#   SENTINEL_MASTER_NAME        the name clients ask for (inflow; the apps' REDIS_SENTINEL_MASTER)
#   SENTINEL_MASTER_HOST        the primary's stable hostname at first boot (required)
#   SENTINEL_MASTER_PORT        its port (6379)
#   SENTINEL_QUORUM             sentinels that must agree that the primary is down (2 of 3)
#   SENTINEL_ANNOUNCE_HOSTNAME  this sentinel's own stable hostname (required)
#   SENTINEL_PORT               the port this sentinel listens on (26379)
#   SENTINEL_DOWN_AFTER_MS      silence before a primary counts as down (5000)
#   SENTINEL_FAILOVER_TIMEOUT_MS  (30000)
#   SENTINEL_CONF               where the file lives (/data/sentinel.conf; must be writable)
#
# Hostnames, not addresses: task and pod addresses change when they are rescheduled, their names
# do not, so Sentinel resolves and announces names (resolve-hostnames, announce-hostnames).
#
# A sentinel.conf that Sentinel already rewrote for this master name is kept as it is: it knows
# the current primary and the failover epoch, which the environment does not (after a failover
# SENTINEL_MASTER_HOST names the old primary). Remove the file (or the volume) to start afresh.
set -eu

# A name that does not resolve must fail fast. Redis resolves host names synchronously: a lookup
# of a dead node's name that takes Docker's embedded DNS on an internal network 10 s or more to
# give up (measured: 20 s) freezes the process that long, which sends a sentinel into TILT mode
# (no failover while its clock jumps) and a replica into silence. glibc reads RES_OPTIONS from the
# environment: one try, one second.
export RES_OPTIONS="${RES_OPTIONS:-timeout:1 attempts:1}"

: "${SENTINEL_MASTER_NAME:=inflow}"
: "${SENTINEL_MASTER_PORT:=6379}"
: "${SENTINEL_QUORUM:=2}"
: "${SENTINEL_PORT:=26379}"
: "${SENTINEL_DOWN_AFTER_MS:=5000}"
: "${SENTINEL_FAILOVER_TIMEOUT_MS:=30000}"
: "${SENTINEL_CONF:=/data/sentinel.conf}"

# die MESSAGE: say why on stderr and stop (the orchestrator's restart policy tries again).
die() {
	echo "sentinel.sh: $1" >&2
	exit 78
}

[ -n "${SENTINEL_MASTER_HOST:-}" ] || die "SENTINEL_MASTER_HOST is required (the primary's hostname)"
[ -n "${SENTINEL_ANNOUNCE_HOSTNAME:-}" ] || die "SENTINEL_ANNOUNCE_HOSTNAME is required (this sentinel's own hostname)"
for number in "$SENTINEL_MASTER_PORT" "$SENTINEL_QUORUM" "$SENTINEL_PORT" "$SENTINEL_DOWN_AFTER_MS" "$SENTINEL_FAILOVER_TIMEOUT_MS"; do
	case "$number" in
		'' | *[!0-9]*) die "not a positive integer: '$number'" ;;
	esac
done

# wait_for_name HOST: Sentinel refuses a `monitor` line whose host does not resolve and exits;
# on Swarm and Kubernetes a service's name appears only once its task or pod is scheduled.
wait_for_name() {
	waited=0
	until getent hosts "$1" > /dev/null 2>&1; do
		if [ $((waited % 10)) -eq 0 ]; then
			echo "sentinel.sh: waiting for '$1' to resolve" >&2
		fi
		waited=$((waited + 1))
		sleep 1
	done
}

# write_conf: the first-boot configuration, from the environment.
write_conf() {
	tmp="$SENTINEL_CONF.tmp"
	cat > "$tmp" <<CONF
# Written by deploy/redis/sentinel.sh at first boot; Sentinel rewrites it from then on.
port $SENTINEL_PORT
protected-mode no
dir $(dirname "$SENTINEL_CONF")
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $SENTINEL_ANNOUNCE_HOSTNAME
sentinel monitor $SENTINEL_MASTER_NAME $SENTINEL_MASTER_HOST $SENTINEL_MASTER_PORT $SENTINEL_QUORUM
sentinel down-after-milliseconds $SENTINEL_MASTER_NAME $SENTINEL_DOWN_AFTER_MS
sentinel failover-timeout $SENTINEL_MASTER_NAME $SENTINEL_FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $SENTINEL_MASTER_NAME 1
CONF
	mv "$tmp" "$SENTINEL_CONF"
}

mkdir -p "$(dirname "$SENTINEL_CONF")"
if grep -qs "^sentinel monitor $SENTINEL_MASTER_NAME " "$SENTINEL_CONF"; then
	echo "sentinel.sh: keeping $SENTINEL_CONF (Sentinel's own record of the current primary)" >&2
	known_host=$(sed -n "s/^sentinel monitor $SENTINEL_MASTER_NAME \([^ ]*\) .*/\1/p" "$SENTINEL_CONF")
	wait_for_name "$known_host"
else
	write_conf
	wait_for_name "$SENTINEL_MASTER_HOST"
fi

# The image's entrypoint (docker-library/redis and the offline stand-in alike) makes the data
# directory the redis user's and drops root before it runs redis-server.
exec docker-entrypoint.sh redis-server "$SENTINEL_CONF" --sentinel
