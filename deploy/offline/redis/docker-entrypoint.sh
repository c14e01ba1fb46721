#!/usr/bin/env bash
# Entrypoint of inflow-offline/redis:7, modelled on docker-library/redis's docker-entrypoint.sh.
set -Eeo pipefail

# first arg is `-f` or `--some-option`, or `something.conf`: run redis-server with it
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
	set -- redis-server "$@"
fi

# as root (the default): own /data as redis, then run this script again as redis
if [ "$1" = 'redis-server' ] && [ "$(id -u)" = '0' ]; then
	find . \! -user redis -exec chown redis '{}' +
	exec gosu redis "$0" "$@"
fi

# The official image builds Redis with protected mode off by default, so a server started from
# command-line options alone accepts clients from other containers. Debian's build keeps it on,
# which refuses them while no password is set: turn it off on the command line, first, so that an
# explicit --protected-mode given later still wins. A config file (first argument not an option)
# is left as it is, and so are the options that only print and exit.
if [ "$1" = 'redis-server' ]; then
	case "${2:-}" in
		--version | --help | --test-memory | --check-system) ;;
		'' | --?*) set -- redis-server --protected-mode no "${@:2}" ;;
	esac
fi

# files Redis writes get an appropriate umask (if none was set already)
if [ "$(umask)" = '0022' ]; then
	umask 0077
fi

exec "$@"
