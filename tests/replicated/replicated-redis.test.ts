/**
 * The replicated Redis layout (deploy/compose/replicated-redis.yml, docs/guarantees.md) on one
 * machine, end to end through nginx, with counts printed:
 *   - a 202 only once the replica holds the entry: replica paused, 503 queue_unavailable;
 *     unpaused, 202 again by itself, and the refused entries' retries find them;
 *   - the primary killed under load with a backlog in Redis (PostgreSQL stopped, so nothing
 *     drains): Sentinel promotes the replica, the old primary comes back as its replica, the
 *     API's POSTs and the worker resume by themselves (none of them restarted), and every 202 is
 *     persisted exactly once.
 * The stack is built and started here and removed (volumes too) whatever the outcome.
 *
 *   npm run test:replicated        (INFLOW_PORT, INFLOW_E2E_PROJECT move it; default inflow-replicated)
 */
import './env.ts';
import { randomUUID } from 'node:crypto';
import { BASE_URL, compose, containerInfo, docker, down, idOf, parseRedisInfo, postEntry, sentinelPrimaryHost, up, waitFor, type ContainerInfo } from '@inflow/test-support';
import t from 'tap';
import { Load } from '../chaos/load.ts';
import { REDIS_NODES, SENTINELS, type RedisNode } from './env.ts';

const RUN = randomUUID().slice(0, 8);
const APPS = ['web1', 'web2', 'web3', 'worker'] as const;

/** `redis-cli INFO replication` of a Redis node; undefined while it does not answer. */
async function replication(node: RedisNode): Promise<Record<string, string> | undefined> {
  const output = await docker(['exec', idOf(node), 'redis-cli', 'INFO', 'replication'], { timeoutMs: 10_000 }).catch(() => undefined);
  return output === undefined ? undefined : parseRedisInfo(output);
}

/** The primary as the first sentinel that answers names it. */
async function sentinelsPrimary(): Promise<string | undefined> {
  for (const sentinel of SENTINELS) {
    const output = await docker(['exec', idOf(sentinel), 'redis-cli', '-p', '26379', 'SENTINEL', 'get-master-addr-by-name', 'inflow'], { timeoutMs: 10_000 }).catch(
      () => undefined,
    );
    const host = sentinelPrimaryHost(output);
    if (host !== undefined) return host;
  }
  return undefined;
}

const otherNode = (node: string): RedisNode => (node === 'redis' ? 'redis2' : 'redis');

/** Waits until the sentinels name a primary that has its replica attached and in sync; returns the pair. */
async function waitReplicated(timeoutMs = 120_000): Promise<{ primary: RedisNode; replica: RedisNode }> {
  return waitFor(
    async () => {
      const primary = await sentinelsPrimary();
      if (primary !== 'redis' && primary !== 'redis2') return undefined;
      const info = await replication(primary);
      const replica = otherNode(primary);
      return info?.['role'] === 'master' && info['min_slaves_good_slaves'] === '1' && info['slave0']?.includes(`ip=${replica},`) === true
        ? { primary, replica }
        : undefined;
    },
    { timeoutMs, what: 'a primary with its replica in sync', intervalMs: 500 },
  );
}

/** The ids of the rows of one author, with how many rows each id has (psql in the postgres container). */
async function rowsOf(author: string): Promise<Map<string, number>> {
  const output = await docker(
    ['exec', idOf('postgres'), 'psql', '-U', 'inflow', '-d', 'inflow', '-tAc', `SELECT id, count(*) FROM entries WHERE author = '${author}' GROUP BY id`],
    { timeoutMs: 30_000 },
  );
  return new Map(
    output
      .trim()
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const [id = '', count = '0'] = line.split('|');
        return [id, Number(count)] as const;
      }),
  );
}

const snapshot = async (): Promise<Map<string, ContainerInfo>> => new Map(await Promise.all(APPS.map(async (app) => [app, await containerInfo(app)] as const)));

down();
t.teardown(down);
await up();
// The sentinels and the replica are not in the kit's list of services: wait for them too.
await waitReplicated();

t.test('a 202 only once the replica holds the entry: paused replica, 503; unpaused, 202 by itself', async (t) => {
  const author = `paused-${RUN}`;
  const { replica } = await waitReplicated();
  const first = await postEntry(BASE_URL, { author, message: 'before the pause' });
  t.equal(first.status, 202, 'replicated: 202');

  const accepted = new Map<string, string>();
  const keys = Array.from({ length: 8 }, (_, i) => `${author}-${String(i)}`);
  await docker(['pause', idOf(replica)]);
  let during: { status: number; code: unknown }[];
  try {
    // Eight at once: they share WAITs, and none of those can be confirmed by a frozen replica.
    during = await Promise.all(
      keys.map(async (key) => {
        const answer = await postEntry<{ error?: { code?: unknown } }>(BASE_URL, { author, message: key }, { 'idempotency-key': key });
        return { status: answer.status, code: answer.body.error?.code };
      }),
    );
  } finally {
    await docker(['unpause', idOf(replica)]);
  }
  t.same(
    during.map(({ status, code }) => `${String(status)} ${String(code)}`),
    keys.map(() => '503 queue_unavailable'),
    'every POST while the replica is paused: 503 queue_unavailable, never a 202 that one Redis holds',
  );

  const back = await waitFor(
    async () => {
      const answer = await postEntry<{ id: string }>(BASE_URL, { author, message: 'after the pause' });
      return answer.status === 202 ? answer.body : undefined;
    },
    { timeoutMs: 60_000, what: 'a 202 once the replica is back', intervalMs: 250 },
  );
  accepted.set('after', back.id);
  // The refused ones, retried with their keys: accepted now, each as one entry.
  for (const key of keys) {
    const retry = await postEntry<{ id: string }>(BASE_URL, { author, message: key }, { 'idempotency-key': key });
    t.equal(retry.status, 202, `${key} retried: 202`);
    accepted.set(key, retry.body.id);
  }
  accepted.set('before', (first.body as { id: string }).id);
  const rows = await waitFor(
    async () => {
      const found = await rowsOf(author);
      return [...accepted.values()].every((id) => found.has(id)) ? found : undefined;
    },
    { timeoutMs: 120_000, what: 'every 202 of the pause test persisted', intervalMs: 500 },
  );
  t.equal(rows.size, accepted.size, 'one row per accepted entry, none for the refused attempts');
  t.ok([...rows.values()].every((count) => count === 1), 'each once');
  t.comment(`replica paused: ${String(during.length)} POSTs answered 503, none 202; ${String(accepted.size)} entries accepted and persisted once each`);
});

t.test('the primary killed under load with a backlog: Sentinel promotes the replica, the old primary rejoins as its replica, every 202 persisted once', async (t) => {
  const author = `failover-${RUN}`;
  const appsBefore = await snapshot();
  // A backlog that stays in Redis: nothing drains while PostgreSQL is down.
  await compose(['stop', '-t', '10', 'postgres']);
  let postgresStopped = true;
  const load = new Load({ baseUrl: BASE_URL, author, getWorkers: 1, postWorkers: 4, paceMs: 40, retryForMs: 120_000, requestTimeoutMs: 10_000 }).start();
  try {
    const acceptedCount = () => load.submissions.filter((submission) => submission.accepted).length;
    await waitFor(() => acceptedCount() >= 60, { timeoutMs: 120_000, what: '60 entries accepted before the fault', intervalMs: 100 });

    const { primary, replica } = await waitReplicated();
    const backlog = await docker(['exec', idOf(primary), 'redis-cli', 'LLEN', 'bull:entries:wait']);
    t.ok(Number(backlog) > 0, `a backlog in Redis when the primary dies (${backlog.trim()} jobs waiting)`);
    const killedAt = Date.now();
    const acceptedAtKill = acceptedCount();
    await docker(['kill', '-s', 'KILL', idOf(primary)]);

    await waitFor(async () => (await sentinelsPrimary()) === replica, { timeoutMs: 120_000, what: `the sentinels to promote ${replica}`, intervalMs: 250 });
    const failoverMs = Date.now() - killedAt;
    const promoted = await replication(replica);
    t.equal(promoted?.['role'], 'master', `${replica} is the primary now`);

    // With two Redis, the new primary refuses writes until it has a replica again (POSTs 503):
    // bring the old primary's machine back.
    await docker(['start', idOf(primary)]);
    await waitFor(
      async () => {
        const info = await replication(primary);
        return info?.['role'] === 'slave' && info['master_host'] === replica && info['master_link_status'] === 'up';
      },
      { timeoutMs: 120_000, what: `${primary} to come back as the replica of ${replica}`, intervalMs: 500 },
    );
    const rejoinedMs = Date.now() - killedAt;
    t.pass(`${primary} came back as the replica of ${replica} (INFO replication)`);

    // The API's POSTs resume by themselves: 20 more accepted after the rejoin.
    const acceptedAtRejoin = acceptedCount();
    await waitFor(() => acceptedCount() >= acceptedAtRejoin + 20, { timeoutMs: 120_000, what: 'POSTs accepted again after the failover', intervalMs: 100 });
    const resumedMs = Date.now() - killedAt;
    await load.stop();

    await compose(['start', 'postgres']);
    postgresStopped = false;

    const accepted = load.submissions.filter((submission) => submission.accepted);
    t.ok(
      accepted.every((submission) => submission.ids.size === 1),
      'each key was answered with one id, its retries included',
    );
    const ids = new Set(accepted.flatMap((submission) => [...submission.ids]));
    // The worker, never restarted, drains the backlog from the new primary.
    const rows = await waitFor(
      async () => {
        const found = await rowsOf(author);
        return [...ids].every((id) => found.has(id)) ? found : undefined;
      },
      { timeoutMs: 300_000, what: `all ${String(ids.size)} accepted entries persisted`, intervalMs: 1_000 },
    );
    t.ok([...rows.values()].every((count) => count === 1), 'every 202 persisted exactly once');
    const neverAccepted = [...rows.keys()].filter((id) => !ids.has(id)).length;

    const appsAfter = await snapshot();
    for (const app of APPS) {
      t.match(appsAfter.get(app), { startedAt: appsBefore.get(app)?.startedAt, restartCount: appsBefore.get(app)?.restartCount, status: 'running' }, `${app} was not restarted`);
    }

    const posts = load.attempts.filter((attempt) => attempt.method === 'POST');
    const failed = posts.filter((attempt) => attempt.outcome !== 202);
    const byOutcome = new Map<string, number>();
    for (const attempt of failed) byOutcome.set(String(attempt.outcome), (byOutcome.get(String(attempt.outcome)) ?? 0) + 1);
    t.ok(
      failed.every((attempt) => attempt.outcome === 503 && attempt.errorShape === true),
      'every failed POST was a 503 with the error shape (no 5xx of another kind, no dropped connection)',
    );
    t.comment(
      [
        `failover: the sentinels promoted ${replica} ${String(failoverMs)} ms after ${primary} was killed;`,
        `${primary} was back as its replica at ${String(rejoinedMs)} ms, POSTs accepted again by ${String(resumedMs)} ms;`,
        `${String(acceptedAtKill)} accepted before the kill, ${String(ids.size)} in all, every one persisted once (${String(neverAccepted)} rows of entries whose POST never got a 202);`,
        `POSTs: ${String(posts.length)} sent, ${String(failed.length)} failed (${[...byOutcome].map(([outcome, count]) => `${outcome}: ${String(count)}`).join(', ') || 'none'}).`,
      ].join(' '),
    );
  } finally {
    await load.stop();
    if (postgresStopped) await compose(['start', 'postgres']).catch(() => undefined);
    // Both Redis running again whatever happened, for the teardown's logs.
    for (const node of REDIS_NODES) await docker(['start', idOf(node)]).catch(() => undefined);
  }
});
