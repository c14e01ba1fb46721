#!/usr/bin/env bash
# Container health probe without curl: exits 0 when the program's own HTTP endpoint answers 2xx.
#   bash healthcheck.sh [PATH [PORT]]     PATH defaults to /healthz
# PORT defaults to the worker's HEALTH_PORT when set, else the API's PORT (both set by the
# image). The API's detailed /readyz is on its ops port (OPS_PORT, 8081): compose passes it.
#
# Bash builtins only (/dev/tcp, printf, read): a probe costs a few milliseconds of CPU. A probe
# written in Node cost 0.2 to 0.35 CPU-seconds each, V8 starting up: with four node containers
# probed every 5 s that was a sixth of a 2-core machine (docs/performance.md#where-the-time-goes-and-why-some-goals-are-not-met).
set -euo pipefail

path="${1:-/healthz}"
port="${2:-${HEALTH_PORT:-${PORT:-8080}}}"
if [[ ! "${port}" =~ ^[0-9]{1,5}$ ]]; then
  echo "healthcheck.sh: the port must be a number (got \"${port}\")" >&2
  exit 2
fi

exec 3<>"/dev/tcp/127.0.0.1/${port}"
printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${path}" >&3
# The status line: "HTTP/1.1 200 OK".
read -r -t 3 _ status _ <&3
[[ "${status}" == 2?? ]]
