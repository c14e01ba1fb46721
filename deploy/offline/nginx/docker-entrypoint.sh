#!/usr/bin/env bash
# Entrypoint of inflow-offline/nginx:1.22, modelled on the official nginx image's
# /docker-entrypoint.sh: when the command is nginx (or nginx-debug), first source the *.envsh
# files and run the executable *.sh files in /docker-entrypoint.d/, in name order. Set
# NGINX_ENTRYPOINT_QUIET_LOGS to anything to silence its own messages.
set -Eeo pipefail

# Prints a message unless NGINX_ENTRYPOINT_QUIET_LOGS is set.
entrypoint_log() {
	if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
		printf '%s\n' "$*"
	fi
}

if [ "$1" = 'nginx' ] || [ "$1" = 'nginx-debug' ]; then
	shopt -s nullglob
	hooks=(/docker-entrypoint.d/*)
	shopt -u nullglob
	if [ "${#hooks[@]}" -gt 0 ]; then
		entrypoint_log "$0: /docker-entrypoint.d/ is not empty, will attempt to perform configuration"
		for f in "${hooks[@]}"; do
			[ -f "$f" ] || continue
			case "$f" in
				*.envsh)
					if [ -x "$f" ]; then
						entrypoint_log "$0: Sourcing $f"
						# shellcheck disable=SC1090
						. "$f"
					else
						entrypoint_log "$0: Ignoring $f, not executable"
					fi
					;;
				*.sh)
					if [ -x "$f" ]; then
						entrypoint_log "$0: Launching $f"
						"$f"
					else
						entrypoint_log "$0: Ignoring $f, not executable"
					fi
					;;
				*) entrypoint_log "$0: Ignoring $f" ;;
			esac
		done
		entrypoint_log "$0: Configuration complete; ready for start up"
	else
		entrypoint_log "$0: No files found in /docker-entrypoint.d/, skipping configuration"
	fi
fi

exec "$@"
