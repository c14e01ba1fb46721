#!/usr/bin/env bash
# Hook of inflow-offline/nginx:1.22, as in the official image: renders each
# $NGINX_ENVSUBST_TEMPLATE_DIR/**/*$NGINX_ENVSUBST_TEMPLATE_SUFFIX (default
# /etc/nginx/templates/**/*.template) to $NGINX_ENVSUBST_OUTPUT_DIR (default /etc/nginx/conf.d)
# with envsubst, replacing only the variables that are defined in the environment (and match
# the regex NGINX_ENVSUBST_FILTER when it is set), so nginx's own $variables survive.
set -Eeo pipefail

# Prints a message unless NGINX_ENTRYPOINT_QUIET_LOGS is set.
entrypoint_log() {
	if [ -z "${NGINX_ENTRYPOINT_QUIET_LOGS:-}" ]; then
		printf '%s\n' "$*"
	fi
}

# Renders every template found under the template directory.
auto_envsubst() {
	local template_dir="${NGINX_ENVSUBST_TEMPLATE_DIR:-/etc/nginx/templates}"
	local suffix="${NGINX_ENVSUBST_TEMPLATE_SUFFIX:-.template}"
	local output_dir="${NGINX_ENVSUBST_OUTPUT_DIR:-/etc/nginx/conf.d}"
	local filter="${NGINX_ENVSUBST_FILTER:-}"

	[ -d "$template_dir" ] || return 0
	if [ ! -w "$output_dir" ]; then
		entrypoint_log "$0: ERROR: $template_dir exists, but $output_dir is not writable"
		return 0
	fi

	local name defined_envs=''
	while IFS= read -r name; do
		if [ -z "$filter" ] || [[ "$name" =~ $filter ]]; then
			defined_envs+="\${$name} "
		fi
	done < <(compgen -e)

	local template relative_path output_path subdir
	while IFS= read -r -d '' template; do
		relative_path="${template#"$template_dir/"}"
		output_path="$output_dir/${relative_path%"$suffix"}"
		subdir="$(dirname "$relative_path")"
		mkdir -p "$output_dir/$subdir"
		entrypoint_log "$0: Running envsubst on $template to $output_path"
		envsubst "$defined_envs" <"$template" >"$output_path"
	done < <(find "$template_dir" -follow -type f -name "*$suffix" -print0)
}

auto_envsubst

exit 0
