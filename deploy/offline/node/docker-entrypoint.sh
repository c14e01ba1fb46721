#!/usr/bin/env bash
# Entrypoint of inflow-offline/node:24, same rule as the official node image's: when the first
# argument is an option (-e, --version, ...), not a command on PATH, or a non-executable file
# (a script name), run it with node.
set -Eeo pipefail

if [ "${1#-}" != "$1" ] || [ -z "$(command -v "$1")" ] || { [ -f "$1" ] && ! [ -x "$1" ]; }; then
  set -- node "$@"
fi

exec "$@"
