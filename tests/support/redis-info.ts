/**
 * What redis-cli prints, read the same way by every suite that inspects a Redis node from inside
 * its container (the replicated compose layout, the Swarm stack).
 */

/** `INFO <section>` as key/value pairs (`role`, `master_link_status`, `slave0`, ...). */
export function parseRedisInfo(output: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of output.split('\n')) {
    const at = line.indexOf(':');
    if (at > 0) fields[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return fields;
}

/** The host of `SENTINEL get-master-addr-by-name` (its first line), or undefined when it names none. */
export function sentinelPrimaryHost(output: string | undefined): string | undefined {
  const host = output?.trim().split('\n')[0]?.trim();
  return host === undefined || host === '' ? undefined : host;
}
