#!/bin/sh
# Entrypoint hook of the Swarm stack's nginx: deploy/swarm/stack.yml delivers it as a config into
# /docker-entrypoint.d/, where the nginx image's entrypoint runs it after
# 20-envsubst-on-templates.sh has rendered the edge's includes. It writes
# /etc/nginx/conf.d/inflow-swarm-upstream.conf, which deploy/swarm/nginx.conf includes: how nginx
# reaches the API replicas, the tasks of the web service (`tasks.web`, addresses that change
# whenever a task is replaced). The first of these that this nginx accepts (`nginx -t`):
#
#   1. An upstream block whose server is re-resolved at run time (`server tasks.web:8080 resolve`,
#      in open-source nginx from 1.27.3: the official nginx:1.28 image the stack defaults to),
#      with idle connections to the replicas kept (keep-alive), as compose's nginx.conf does.
#   2. The name in a variable (`proxy_pass http://$inflow_api`), resolved per request through the
#      resolver in nginx.conf, cached 1 s; nginx keeps no upstream connections then, one TCP
#      connection per request (measured: deploy/swarm/README.md). nginx 1.22, the offline
#      stand-in image, has no `resolve` on upstream servers and gets this one.
#
# Either way, proxy_pass names $inflow_api (a variable naming an upstream block reaches that
# block). The choice is logged in one line. Tested live (tests/swarm) with nginx 1.22 only, that
# is with 2; 1 has been checked against nginx's documentation, not run. Should a newer nginx
# refuse it, its error is logged and 2 is used.
# POSIX sh: the official image runs it with /bin/sh (dash).
set -eu

conf=/etc/nginx/conf.d/inflow-swarm-upstream.conf

log() {
	if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
		printf '%s: %s\n' "$0" "$*"
	fi
}

cat >"$conf" <<'EOF'
# Written by 40-inflow-swarm-upstream.sh: tasks.web re-resolved at run time, with keep-alive.
upstream inflow_api {
  # `resolve` needs the group in shared memory.
  zone inflow_api 256k;
  # Passive health checks as in compose: 3 failed attempts within 10 s take an address out for 10 s.
  server tasks.web:8080 resolve max_fails=3 fail_timeout=10s;
  # Below Node's keepAliveTimeout (65 s): see compose's nginx.conf.
  keepalive 64;
  keepalive_timeout 60s;
  keepalive_requests 10000;
}
map $server_port $inflow_api {
  default inflow_api;
}
EOF
if errors="$(nginx -t -q 2>&1)"; then
	log "the replicas: upstream block with 'server tasks.web:8080 resolve' and keep-alive"
	exit 0
fi

cat >"$conf" <<'EOF'
# Written by 40-inflow-swarm-upstream.sh: this nginx has no `resolve` on upstream servers, so the
# name is resolved per request (resolver in nginx.conf), without upstream keep-alive.
map $server_port $inflow_api {
  default tasks.web:8080;
}
EOF
log "the replicas: tasks.web resolved per request, no upstream keep-alive (this nginx refused the resolve form: $(printf '%s' "$errors" | sed '1!d; s/^.*\[emerg\] [0-9#]*: //'))"
# Anything wrong with the rest of the configuration stops the container here, with nginx's words.
nginx -t -q
