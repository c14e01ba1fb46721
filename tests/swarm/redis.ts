/**
 * The stack's replicated Redis as the machine-loss tests read it: which server the sentinels name
 * primary, each server's replication state (INFO replication), and which accepted entries are
 * queued on a server. Read with redis-cli inside the tasks' own containers (the backend network is
 * internal: nothing outside the swarm reaches Redis), on whichever node runs them.
 */
import { ENTRIES_QUEUE } from '@inflow/shared';
import { parseRedisInfo, sentinelPrimaryHost } from '@inflow/test-support';
import { SENTINEL_MASTER, type Service, type Stack } from './swarm.ts';

/** redis-cli in a running task of `service`; its output, or undefined when no task runs or the command fails. */
async function redisCli(stack: Stack, service: Service, args: readonly string[]): Promise<string | undefined> {
  const [task] = await stack.runningTasks(service);
  if (task === undefined) return undefined;
  const result = await stack.execIn(task, ['redis-cli', ...args]);
  return result.status === 0 ? result.stdout : undefined;
}

/** The primary a sentinel names (its announced hostname, e.g. `redis-a`), or undefined when it does not answer. */
export async function sentinelPrimary(stack: Stack, sentinel: Service): Promise<string | undefined> {
  return sentinelPrimaryHost(await redisCli(stack, sentinel, ['-p', '26379', 'SENTINEL', 'get-master-addr-by-name', SENTINEL_MASTER]));
}

/** The sentinels a sentinel knows besides itself (SENTINEL sentinels), or undefined. */
export async function sentinelPeers(stack: Stack, sentinel: Service): Promise<number | undefined> {
  const out = await redisCli(stack, sentinel, ['-p', '26379', 'SENTINEL', 'sentinels', SENTINEL_MASTER]);
  return out === undefined ? undefined : out.split('\n').filter((line) => line.trim() === 'name').length;
}

/** INFO replication of a Redis server as key/value pairs, or undefined when it does not answer. */
export async function replication(stack: Stack, server: Service): Promise<Record<string, string> | undefined> {
  const out = await redisCli(stack, server, ['INFO', 'replication']);
  return out === undefined ? undefined : parseRedisInfo(out);
}

/** A Redis server's CONFIG GET value, or undefined. */
export async function configValue(stack: Stack, server: Service, name: string): Promise<string | undefined> {
  return (await redisCli(stack, server, ['CONFIG', 'GET', name]))?.trim().split('\n')[1];
}

/**
 * Which of the entry ids have a job on `server` (BullMQ keeps a job's hash at
 * bull:<queue>:<job id>; the entry id is the job id, shared/src/queue.ts). Asked in batches.
 */
export async function queuedOn(stack: Stack, server: Service, ids: readonly string[]): Promise<Set<string>> {
  const present = new Set<string>();
  const [task] = await stack.runningTasks(server);
  if (task === undefined) throw new Error(`no running task of ${server} to ask`);
  for (let from = 0; from < ids.length; from += 500) {
    const batch = ids.slice(from, from + 500);
    // One redis-cli reading one EXISTS per line: one answer per line, in order.
    const script = 'queue=$1; shift; for id in "$@"; do echo "EXISTS bull:$queue:$id"; done | redis-cli';
    const result = await stack.execIn(task, ['sh', '-c', script, 'queued-on', ENTRIES_QUEUE, ...batch]);
    const answers = result.stdout.trim().split('\n');
    if (result.status !== 0 || answers.length !== batch.length) throw new Error(`asking ${server} for jobs: ${result.stderr}${result.stdout}`);
    batch.forEach((id, i) => {
      if (answers[i]?.trim() === '1') present.add(id);
    });
  }
  return present;
}
