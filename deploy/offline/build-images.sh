#!/usr/bin/env bash
# build-images.sh: builds offline stand-ins for the official Docker images that inflow's
# docker-compose.yml and Dockerfile use (node:24-bookworm-slim, postgres:15, redis:7, nginx:1.22,
# and prom/prometheus for the `monitoring` profile).
#
# Why this kit exists: some hosts (sandboxes, air-gapped or registry-less machines) cannot pull
# from Docker Hub, so `docker compose up --build` fails before it starts. Such a host can often
# still reach a Debian mirror and the npm registry. From those alone this script builds images
# under our own names (inflow-offline/*), each honouring the official image's contract as far as
# this stack uses it (env vars, users, paths, entrypoint, signals, ports). They are stand-ins,
# not copies: README.md beside this script lists every difference.
#
# usage: deploy/offline/build-images.sh [--rebuild] [IMAGE...]
#   IMAGE      base, node, postgres, redis, nginx or prometheus; default: all of them. The base image is
#              built first whenever it is missing, whatever was asked for.
#   --rebuild  rebuild the named images (all by default) even when they already exist;
#              without it an existing image is reused.
#
# environment (all optional):
#   DEBIAN_MIRROR           Debian archive        (default http://deb.debian.org/debian)
#   DEBIAN_SECURITY_MIRROR  security archive      (default http://deb.debian.org/debian-security;
#                           "none" leaves it out; it is also left out when it cannot be reached)
#   HOST_CA_BUNDLE          CA bundle put into the base image, so TLS through a gateway works
#                           (default /etc/ssl/certs/ca-certificates.crt)
#   NODE_VERSION, NPM_VERSION   passed on to deploy/node/install-node.sh
#
# Afterwards: set -a; . deploy/offline/images.env; set +a; docker compose up --build
# Needs: root (debootstrap, chroot), a running Docker engine, debootstrap, node and npm.
# Builds with the legacy builder (DOCKER_BUILDKIT=0): the Dockerfiles use no BuildKit feature.
set -Eeuo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"

readonly BASE_IMAGE=inflow-offline/debian:bookworm
readonly NODE_IMAGE=inflow-offline/node:24
readonly POSTGRES_IMAGE=inflow-offline/postgres:15
readonly REDIS_IMAGE=inflow-offline/redis:7
readonly NGINX_IMAGE=inflow-offline/nginx:1.22
readonly PROMETHEUS_IMAGE=inflow-offline/prometheus:2
readonly SUITE=bookworm
readonly LABEL_VENDOR="inflow offline kit (deploy/offline)"

debian_mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
security_mirror="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
host_ca_bundle="${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

# temporary directories removed by cleanup(); the rootfs may have /proc mounted in it
rootfs=""
proc_mounted=""
tmp_dirs=()
rebuild=no  # --rebuild given
# ids of images replaced by --rebuild, removed at the end when nothing uses them any more
replaced_ids=()

# Prints the usage header of this file.
usage() {
  sed -n '2,/^set -Eeuo/{/^set -Eeuo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

# Prints a progress line.
log() {
  printf '==> %s\n' "$*"
}

# Prints an error and exits.
die() {
  printf 'build-images.sh: error: %s\n' "$*" >&2
  exit 1
}

# Unmounts /proc from the rootfs and removes every temporary directory.
cleanup() {
  if [[ -n "$proc_mounted" ]]; then
    umount "$rootfs/proc" || umount -l "$rootfs/proc" || true
  fi
  if [[ -n "$rootfs" && -d "$rootfs" ]]; then
    # --one-file-system: never follow into anything still mounted in the chroot
    rm -rf --one-file-system "$rootfs"
  fi
  local dir
  for dir in "${tmp_dirs[@]}"; do
    rm -rf "$dir"
  done
}

# Checks root, the commands this script calls, and that the Docker engine answers.
check_prerequisites() {
  [[ "$(id -u)" == 0 ]] || die "must run as root (debootstrap and chroot need it)"
  local cmd
  for cmd in docker debootstrap chroot tar node npm; do
    command -v "$cmd" >/dev/null || die "'$cmd' not found on PATH"
  done
  docker info >/dev/null 2>&1 || die "the Docker engine does not answer ('docker info' failed); start dockerd first"
  [[ -s "$host_ca_bundle" ]] || die "CA bundle $host_ca_bundle not found (set HOST_CA_BUNDLE)"
}

# True when the image reference exists locally.
image_exists() {
  docker image inspect "$1" >/dev/null 2>&1
}

# Runs a command inside the rootfs being built, non-interactively.
in_rootfs() {
  chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 "$@"
}

# Writes the deb822 apt sources of the base image; with "security" it includes bookworm-security.
write_apt_sources() {
  local with_security="$1"
  rm -f "$rootfs/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\n' \
      "$debian_mirror" "$SUITE" "$SUITE"
    printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    if [[ "$with_security" == security ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\n' \
        "$security_mirror" "$SUITE"
      printf 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n'
    fi
  } >"$rootfs/etc/apt/sources.list.d/debian.sources"
}

# Applies the debian:bookworm-slim conventions: no services started by package scripts, no
# docs/man pages/translations installed, no apt caches kept in image layers.
write_slim_config() {
  printf '#!/bin/sh\n# no init system in a container: package scripts must not start services\nexit 101\n' \
    >"$rootfs/usr/sbin/policy-rc.d"
  chmod 0755 "$rootfs/usr/sbin/policy-rc.d"

  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# as in debian:bookworm-slim: no documentation, man pages or translations (copyrights kept)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF

  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
# keep downloaded packages and apt's binary caches out of image layers
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::Languages "none";\n' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
}

# Removes what the slim dpkg excludes would not have installed, plus logs and apt lists.
slim_rootfs() {
  find "$rootfs/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  rm -rf "$rootfs"/usr/share/{groff,info,linda,lintian,man}/*
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/* "$rootfs"/tmp/* "$rootfs"/root/.cache
  # Docker provides /etc/resolv.conf and /etc/hostname to every container
  : >"$rootfs/etc/resolv.conf"
  printf 'localhost\n' >"$rootfs/etc/hostname"
}

# Builds the base image: debootstrap minbase, apt sources (security when reachable), updates,
# the host CA bundle, slimming; then imports the tree as a single-layer image.
build_base() {
  rootfs="$(mktemp -d /var/tmp/inflow-offline-rootfs.XXXXXX)"
  # the log is kept only when something fails
  local log_file="$rootfs.log"

  log "debootstrap --variant=minbase $SUITE from $debian_mirror"
  if ! debootstrap --variant=minbase "$SUITE" "$rootfs" "$debian_mirror" >"$log_file" 2>&1; then
    tail -n 30 "$log_file" >&2
    die "debootstrap failed (full log: $log_file)"
  fi

  write_slim_config
  cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
  mount -t proc proc "$rootfs/proc"
  proc_mounted=1

  local with_security=no
  if [[ "$security_mirror" != none ]]; then
    with_security=security
  fi
  write_apt_sources "$with_security"
  if ! in_rootfs apt-get -o Acquire::http::Timeout=20 update >>"$log_file" 2>&1; then
    [[ "$with_security" == security ]] || die "apt-get update failed in the new rootfs (log: $log_file)"
    log "warning: $security_mirror unreachable; the base image's apt sources leave bookworm-security out"
    with_security=no
    write_apt_sources no
    in_rootfs apt-get -o Acquire::http::Timeout=20 update >>"$log_file" 2>&1 ||
      die "apt-get update failed in the new rootfs (log: $log_file)"
  fi
  log "apt sources: $SUITE $SUITE-updates$([[ "$with_security" == security ]] && printf ' %s-security' "$SUITE")"
  log "applying Debian updates to the rootfs"
  in_rootfs apt-get -y -o Dpkg::Options::=--force-confold dist-upgrade >>"$log_file" 2>&1 ||
    die "apt-get dist-upgrade failed in the new rootfs (log: $log_file)"
  in_rootfs apt-get clean >>"$log_file" 2>&1

  umount "$rootfs/proc"
  proc_mounted=""

  # The host's bundle holds the CAs of any TLS gateway between us and the npm registry. A second
  # copy under /usr/local/share/ca-certificates survives update-ca-certificates, which rewrites
  # ca-certificates.crt whenever a later layer installs the ca-certificates package.
  install -D -m 0644 "$host_ca_bundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  install -D -m 0644 "$host_ca_bundle" "$rootfs/usr/local/share/ca-certificates/inflow-offline-host.crt"

  slim_rootfs

  log "importing the rootfs as $BASE_IMAGE"
  tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --change "LABEL org.opencontainers.image.vendor=\"$LABEL_VENDOR\"" \
    --message "debootstrap --variant=minbase $SUITE (inflow offline kit)" \
    - "$BASE_IMAGE" >/dev/null

  rm -rf --one-file-system "$rootfs"
  rootfs=""
  rm -f "$log_file"
}

# Runs docker build with the legacy builder: docker_build IMAGE CONTEXT [extra build args...]
# A rebuild ignores the build cache, so that it fetches current Debian packages.
docker_build() {
  local image="$1" context="$2"
  shift 2
  local -a cache=()
  if [[ "$rebuild" == yes ]]; then
    cache=(--no-cache)
  fi
  DOCKER_BUILDKIT=0 docker build --force-rm "${cache[@]}" \
    --build-arg "BASE_IMAGE=$BASE_IMAGE" \
    --label "org.opencontainers.image.vendor=$LABEL_VENDOR" \
    -t "$image" "$@" "$context"
}

# Builds the node image: install-node.sh stages Node and npm into a temporary build context
# (a copy of deploy/offline/node/ plus stage/usr/local), which the Dockerfile copies in.
build_node() {
  local context
  context="$(mktemp -d /var/tmp/inflow-offline-node.XXXXXX)"
  tmp_dirs+=("$context")
  chmod 0755 "$context"
  cp -a "$here/node/." "$context/"
  log "staging Node.js and npm with deploy/node/install-node.sh"
  bash "$repo_root/deploy/node/install-node.sh" "$context/stage/usr/local"
  local version
  version="$("$context/stage/usr/local/bin/node" --version)"
  docker_build "$NODE_IMAGE" "$context" --build-arg "NODE_VERSION=${version#v}"
  rm -rf "$context"
}

# Builds one of the images whose build context is its own folder under deploy/offline/.
build_from_folder() {
  local image="$1" folder="$2"
  docker_build "$image" "$here/$folder"
}

# Maps a short name (node, postgres, ...) to its image reference.
image_of() {
  case "$1" in
    base) printf '%s\n' "$BASE_IMAGE" ;;
    node) printf '%s\n' "$NODE_IMAGE" ;;
    postgres) printf '%s\n' "$POSTGRES_IMAGE" ;;
    redis) printf '%s\n' "$REDIS_IMAGE" ;;
    nginx) printf '%s\n' "$NGINX_IMAGE" ;;
    prometheus) printf '%s\n' "$PROMETHEUS_IMAGE" ;;
    *) die "unknown image '$1' (expected base, node, postgres, redis, nginx or prometheus)" ;;
  esac
}

# Builds one image by short name unless it exists and no rebuild was asked for.
build_one() {
  local name="$1" force="$2" image started old_id new_id
  image="$(image_of "$name")"
  if [[ "$force" != yes ]] && image_exists "$image"; then
    log "reused $image (already present; --rebuild forces a new build)"
    return
  fi
  old_id="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  log "building $image"
  started=$SECONDS
  case "$name" in
    base) build_base ;;
    node) build_node ;;
    *) build_from_folder "$image" "$name" ;;
  esac
  log "built $image in $((SECONDS - started)) s"
  new_id="$(docker image inspect --format '{{.Id}}' "$image")"
  if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    replaced_ids+=("$old_id")
  fi
}

# Removes the images that --rebuild replaced, newest first (so children go before their base);
# one still used by a container or by another image (e.g. an app image built FROM it) stays.
remove_replaced() {
  local i id
  for ((i = ${#replaced_ids[@]} - 1; i >= 0; i--)); do
    id="${replaced_ids[i]}"
    if docker image rm "$id" >/dev/null 2>&1; then
      log "removed the replaced image ${id#sha256:}"
    else
      log "kept the replaced image ${id#sha256:} (still in use)"
    fi
  done
}

# Writes images.env, which points docker-compose.yml and the Dockerfile at the stand-ins.
write_images_env() {
  cat >"$here/images.env" <<EOF
# written by deploy/offline/build-images.sh; use: set -a; . deploy/offline/images.env; set +a
NODE_IMAGE=$NODE_IMAGE
POSTGRES_IMAGE=$POSTGRES_IMAGE
REDIS_IMAGE=$REDIS_IMAGE
NGINX_IMAGE=$NGINX_IMAGE
PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE
EOF
  log "wrote ${here#"$repo_root"/}/images.env"
}

main() {
  local arg
  local -a names=()
  for arg in "$@"; do
    case "$arg" in
      --rebuild) rebuild=yes ;;
      -h | --help)
        usage
        return 0
        ;;
      -*) die "unknown option '$arg' (see --help)" ;;
      *)
        image_of "$arg" >/dev/null
        names+=("$arg")
        ;;
    esac
  done
  if [[ ${#names[@]} -eq 0 ]]; then
    names=(base node postgres redis nginx prometheus)
  fi

  check_prerequisites
  trap cleanup EXIT

  local started=$SECONDS name
  # every other image is built FROM the base: build it first if it is missing
  if [[ " ${names[*]} " != *" base "* ]] && ! image_exists "$BASE_IMAGE"; then
    build_one base yes
  fi
  for name in "${names[@]}"; do
    build_one "$name" "$rebuild"
  done

  remove_replaced
  write_images_env
  log "done in $((SECONDS - started)) s:"
  docker image ls --format '    {{.Repository}}:{{.Tag}}  {{.Size}}' 'inflow-offline/*'
}

main "$@"
