/**
 * The Swarm stack (deploy/swarm/stack.yml), live on this machine's Docker engine: a single-node
 * swarm, the images built from our Dockerfile, reached only through nginx's published port as a
 * user would. It deploys, waits for every task, then checks the balancing, persistence, the
 * edge's allow-list, the hardening of the tasks, a rolling update of web under load (no failed
 * request, every 202 persisted), scaling web to 5 and the worker to 2 (no duplicate rows). The
 * stack, its volumes and the swarm (when this suite made it) are removed afterwards, whatever
 * happened.
 *
 * One file of about 350 lines on purpose: every check runs against the one deployed stack, in
 * order (a rolling update and scaling change what the later checks see), and a swarm deploy costs
 * minutes; tests/swarm/swarm.ts holds the swarm and stack commands it drives.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Load, type Attempt } from '../chaos/load.ts';
import { acceptEntry, http, REPO_ROOT, waitFor, type ErrorBody } from '@inflow/test-support';
import {
  buildImages,
  deployStack,
  docker,
  ensureSwarm,
  execIn,
  inspectService,
  leaveSwarm,
  oneContainer,
  removeStack,
  rowsOf,
  runningTasks,
  saveLogs,
  serviceConverged,
  serviceName,
  SERVICES,
  STACK,
  SWARM_PORT,
  SWARM_URL,
  waitConverged,
  waitDrained,
} from './swarm.ts';

// The database password: a fresh random one per run, in a file only this process reads; the
// stack makes it the Docker secret <stack>_db_password.
const secretDir = mkdtempSync(join(tmpdir(), 'inflow-swarm-'));
const passwordFile = join(secretDir, 'db_password');
writeFileSync(passwordFile, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });

type TestContext = Parameters<Parameters<typeof t.test>[0]>[0];

let swarmIsOurs = false;

// Registered first: whatever fails below, the stack, its volumes and our swarm go.
t.teardown(async () => {
  const problems: string[] = [];
  await saveLogs().catch((error: unknown) => problems.push(`saving the logs: ${String(error)}`));
  problems.push(...(await removeStack()));
  if (swarmIsOurs) problems.push(...(await leaveSwarm()));
  rmSync(secretDir, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`cleaning up after the Swarm tests:\n${problems.join('\n')}`);
});

t.before(async () => {
  buildImages();
  const swarm = await ensureSwarm();
  swarmIsOurs = swarm.ours;
  // A stack left by an interrupted run (same name) would keep its old configs and volumes.
  const leftovers = await removeStack();
  if (leftovers.length > 0) throw new Error(`could not remove an earlier ${STACK} stack:\n${leftovers.join('\n')}`);
  await deployStack(passwordFile);
  await waitConverged(SERVICES, 600_000);
});

const WEB_IDS = (count: number): string[] => Array.from({ length: count }, (_, i) => `web.${i + 1}`);

/** GET /api/instance until `count` distinct instance ids answered; every id seen, every status. */
async function instanceIds(count: number): Promise<{ ids: string[]; statuses: number[]; mismatched: number }> {
  const seen = new Set<string>();
  const statuses: number[] = [];
  let mismatched = 0;
  await waitFor(
    async () => {
      for (let i = 0; i < 10; i += 1) {
        const answer = await http<{ instanceId: string }>(`${SWARM_URL}/api/instance`);
        statuses.push(answer.status);
        if (answer.status !== 200) continue;
        seen.add(answer.body.instanceId);
        if (answer.headers.get('x-instance-id') !== answer.body.instanceId) mismatched += 1;
      }
      return seen.size >= count;
    },
    // nginx caches the DNS answer for 1 s; a replica that just joined takes up to that long.
    { timeoutMs: 120_000, what: `${count} distinct instance ids through ${SWARM_URL}` },
  );
  return { ids: [...seen].sort(), statuses, mismatched };
}

/** What a load was told, against the rows of its author (the queue must have drained). */
async function reconcile(load: Load, author: string) {
  const isOk = (attempt: Attempt) => typeof attempt.outcome === 'number' && attempt.outcome >= 200 && attempt.outcome < 300;
  const failed = load.attempts.filter((attempt) => !isOk(attempt)).map((attempt) => `${attempt.method} ${attempt.path} ${String(attempt.outcome)}`);
  const rows = await rowsOf(author);
  const rowsByMessage = new Map<string, string[]>();
  for (const row of rows) rowsByMessage.set(row.message, [...(rowsByMessage.get(row.message) ?? []), row.id]);
  const submitted = new Set(load.submissions.map((submission) => submission.message));
  let lost = 0;
  let neverAccepted = 0;
  let conflicting = 0;
  for (const submission of load.submissions) {
    if (!submission.accepted) {
      neverAccepted += 1;
      continue;
    }
    if (submission.ids.size > 1) conflicting += 1;
    const id = [...submission.ids][0];
    if (!(rowsByMessage.get(submission.message) ?? []).includes(id ?? '')) lost += 1;
  }
  return {
    requests: load.attempts.length,
    gets: load.attempts.filter((attempt) => attempt.method === 'GET').length,
    accepted: load.submissions.filter((submission) => submission.accepted).length,
    failed,
    lost,
    neverAccepted,
    conflicting,
    duplicated: [...rowsByMessage.values()].filter((ids) => ids.length > 1).length,
    stray: rows.filter((row) => !submitted.has(row.message)).length,
    persistedBy: new Set(rows.map((row) => row.persistedBy)),
  };
}

/** The assertions every load must pass: nothing failed, every 202 persisted exactly once. */
function assertReconciled(t: TestContext, result: Awaited<ReturnType<typeof reconcile>>, options: { gets: boolean }): void {
  t.comment(
    `${result.requests} requests (${result.gets} GET), ${result.accepted} entries accepted, persisted by ${[...result.persistedBy].sort().join(', ')}`,
  );
  t.same(result.failed.slice(0, 20), [], `no failed request (of ${result.requests}; ${result.failed.length} failed)`);
  t.ok(result.accepted > 0, 'entries were accepted');
  if (options.gets) t.ok(result.gets > 0, 'the load sent GETs too');
  t.equal(result.neverAccepted, 0, 'every entry submitted got a 202');
  t.equal(result.lost, 0, 'every 202 is a row under the id it named');
  t.equal(result.duplicated, 0, 'no entry stored twice');
  t.equal(result.conflicting, 0, 'no Idempotency-Key answered with two ids');
  t.equal(result.stray, 0, 'no row that no client submitted');
}

t.test('every service runs all its tasks, healthy, with DNS round robin; only nginx publishes a port, in host mode', async (t) => {
  for (const service of SERVICES) {
    t.equal(await serviceConverged(service), true, `${service}: all tasks running and healthy`);
    const spec = (await inspectService(service)).Spec;
    t.equal(spec.EndpointSpec?.Mode, 'dnsrr', `${service}: endpoint_mode dnsrr`);
    const ports = (spec.EndpointSpec?.Ports ?? []).map(({ TargetPort, PublishedPort, PublishMode }) => ({ TargetPort, PublishedPort, PublishMode }));
    t.same(ports, service === 'nginx' ? [{ TargetPort: 80, PublishedPort: Number(SWARM_PORT), PublishMode: 'host' }] : [], `${service}: published ports`);
    const update = spec.UpdateConfig;
    const stateless = service === 'web' || service === 'worker';
    t.match(update, { Order: stateless ? 'start-first' : 'stop-first', FailureAction: 'rollback' }, `${service}: update_config`);
  }
  t.equal((await inspectService('web')).Spec.Mode.Replicated?.Replicas, 3, 'web: 3 replicas');
  t.equal((await runningTasks('web')).length, 3, 'web: 3 containers');
});

t.test("Swarm's nginx.conf publishes exactly the paths of compose's nginx.conf, and reaches the replicas through $inflow_api", async (t) => {
  const compose = readFileSync(join(REPO_ROOT, 'nginx.conf'), 'utf8');
  const swarm = readFileSync(join(REPO_ROOT, 'deploy', 'swarm', 'nginx.conf'), 'utf8');
  const directives = (conf: string, name: string) =>
    [...conf.matchAll(new RegExp(`^\\s*${name}\\s+([^;{]+)[;{]`, 'gm'))].map((match) => (match[1] ?? '').trim().replace(/\s+/g, ' ')).sort();
  t.same(directives(swarm, 'location'), directives(compose, 'location'), 'the same locations (the allow-list and the error answers)');
  t.same(directives(swarm, 'error_page'), directives(compose, 'error_page'), 'the same error pages');
  t.same(directives(swarm, 'include'), [...directives(compose, 'include'), '/etc/nginx/conf.d/inflow-swarm-upstream.conf'].sort(), 'the same includes, and the upstream one');
  t.same([...new Set(directives(swarm, 'proxy_pass'))], ['http://$inflow_api'], 'every proxy_pass names $inflow_api');
  t.same(directives(swarm, 'upstream'), [], 'no upstream block resolved once at start');
  t.same(directives(swarm, 'resolver'), ['127.0.0.11 valid=1s ipv6=off'], "Docker's DNS, answers kept 1 s (below Swarm's 2 s between leaving the DNS and the stop)");

  // Which way this nginx took (the offline 1.22 has no `resolve` on upstream servers).
  const nginx = await oneContainer('nginx');
  const upstream = await execIn(nginx, ['cat', '/etc/nginx/conf.d/inflow-swarm-upstream.conf']);
  const version = (await execIn(nginx, ['nginx', '-v'])).stderr.trim();
  t.comment(`${version}: ${upstream.stdout.includes(' resolve ') ? 'upstream block with resolve and keep-alive' : 'tasks.web resolved per request'}`);
  t.match(upstream.stdout, /map \$server_port \$inflow_api \{/, 'the hook wrote the upstream include');
});

t.test('three replicas answer through the published port, each with its own instance id', async (t) => {
  const { ids, statuses, mismatched } = await instanceIds(3);
  t.same(ids, WEB_IDS(3), 'web.1, web.2 and web.3 (INSTANCE_ID from the task slot)');
  t.same([...new Set(statuses)], [200], `all ${statuses.length} requests answered 200`);
  t.equal(mismatched, 0, 'X-Instance-Id names the instance that answered');
});

t.test('the edge: public paths answer, everything else is a 404 in the API error shape', async (t) => {
  for (const path of ['/', '/main.js', '/styles.css', '/healthz', '/readyz', '/api/instance', '/api/stats', '/api/entries?limit=1']) {
    t.equal((await http(`${SWARM_URL}${path}`)).status, 200, `GET ${path}: 200`);
  }
  for (const path of ['/metrics', '/api/metrics', '/api/entries/a/b', '/api/nothing', '/_edge/502', '/nginx.conf', '/api/instance/']) {
    const answer = await http<ErrorBody>(`${SWARM_URL}${path}`);
    t.equal(answer.status, 404, `GET ${path}: 404`);
    t.match(answer.body, { error: { code: 'not_found', message: String } }, `GET ${path}: the error shape`);
  }
});

t.test('the event stream passes through nginx unbuffered: an entry shows up while the stream is open', async (t) => {
  const controller = new AbortController();
  const response = await fetch(`${SWARM_URL}/api/events`, { signal: controller.signal, headers: { accept: 'text/event-stream' } });
  t.equal(response.status, 200);
  t.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  let text = '';
  const body = response.body;
  if (body === null) throw new Error('the event stream has no body');
  const decoder = new TextDecoder();
  const reading = (async () => {
    for await (const chunk of body) text += decoder.decode(chunk as Uint8Array, { stream: true });
  })().catch(() => undefined);
  try {
    await waitFor(() => text.includes('event: hello'), { timeoutMs: 30_000, what: 'the stream to say hello' });
    // The replica subscribes to the queue's events when its first stream connects: post until an
    // entry's change arrives (another replica may accept it).
    const ids: string[] = [];
    await waitFor(
      async () => {
        ids.push((await acceptEntry(SWARM_URL, 'swarm-events', `event ${ids.length}`)).id);
        return ids.some((id) => text.includes(id));
      },
      { timeoutMs: 60_000, what: 'an accepted entry on the event stream', intervalMs: 1_000 },
    );
    t.pass(`an entry's change arrived on the open stream (after ${ids.length} POSTs)`);
  } finally {
    controller.abort();
    await reading;
  }
});

t.test('entries POSTed through the published port are persisted', async (t) => {
  const author = 'swarm-e2e';
  const accepted = await Promise.all(Array.from({ length: 30 }, (_, i) => acceptEntry(SWARM_URL, author, `entry ${i}`)));
  t.same([...new Set(accepted.map((entry) => entry.acceptedBy))].sort(), WEB_IDS(3), 'every replica accepted some');
  for (const { id } of accepted) {
    const entry = await waitFor(
      async () => {
        const answer = await http<{ status: string }>(`${SWARM_URL}/api/entries/${id}`);
        return answer.status === 200 && answer.body.status === 'persisted' ? answer.body : undefined;
      },
      { timeoutMs: 60_000, what: `entry ${id} to be persisted`, intervalMs: 200 },
    );
    t.match(entry, { id, status: 'persisted', author, persistedBy: 'worker.1' }, `${id} persisted`);
  }
});

t.test('the tasks are hardened like the compose services', async (t) => {
  for (const service of ['web', 'worker']) {
    const tasks = await runningTasks(service);
    t.ok(tasks.length > 0, `${service}: tasks to inspect`);
    for (const task of tasks) {
      const name = `${service}.${task.slot}`;
      const { Config, HostConfig, Mounts } = task.info;
      t.equal(Config.User, 'node', `${name}: User node`);
      t.equal((await execIn(task.id, ['id', '-u'])).stdout.trim(), '1000', `${name}: runs as uid 1000, not root`);
      t.equal(HostConfig.ReadonlyRootfs, true, `${name}: ReadonlyRootfs`);
      t.same(HostConfig.CapDrop, ['ALL'], `${name}: CapDrop ALL`);
      t.same(HostConfig.CapAdd ?? [], [], `${name}: no capability added`);
      t.match((await execIn(task.id, ['grep', '^CapEff:', '/proc/1/status'])).stdout, /^CapEff:\s+0+\s*$/, `${name}: no effective capability`);
      t.equal(HostConfig.Init, true, `${name}: docker-init as PID 1`);
      t.ok(Mounts.some((mount) => mount.Type === 'tmpfs' && mount.Destination === '/tmp'), `${name}: /tmp is a tmpfs`);
      t.equal((await execIn(task.id, ['touch', '/tmp/inflow-swarm-write-test'])).status, 0, `${name}: /tmp is writable`);
      const rootWrite = await execIn(task.id, ['touch', '/app/inflow-swarm-write-test']);
      t.not(rootWrite.status, 0, `${name}: the root filesystem is not writable`);
      t.match(rootWrite.stderr, /Read-only file system/, `${name}: read-only, not merely forbidden`);
      t.notOk(Config.Env.some((entry) => entry.startsWith('DB_PASS=')), `${name}: no DB_PASS in the environment`);
      t.ok(Config.Env.includes('DB_PASS_FILE=/run/secrets/db_password'), `${name}: DB_PASS_FILE names the secret`);
      t.equal((await execIn(task.id, ['stat', '-L', '-c', '%u %a', '/run/secrets/db_password'])).stdout.trim(), '1000 400', `${name}: the secret is readable by node only`);
    }
  }
});

t.test('PostgreSQL and Redis keep their data in the stack volumes, Redis with the durability of compose', async (t) => {
  const mounts = async (service: string) => ((await runningTasks(service))[0]?.info.Mounts ?? []).filter((mount) => mount.Type === 'volume').map(({ Name, Destination }) => ({ Name, Destination }));
  t.same(await mounts('postgres'), [{ Name: `${STACK}_postgres-data`, Destination: '/var/lib/postgresql/data' }], 'postgres: its volume');
  t.same(await mounts('redis'), [{ Name: `${STACK}_redis-data`, Destination: '/data' }], 'redis: its volume');
  const redis = await oneContainer('redis');
  const config = async (name: string) => (await execIn(redis, ['redis-cli', 'CONFIG', 'GET', name])).stdout.trim().split('\n')[1];
  t.equal(await config('appendonly'), 'yes', 'appendonly yes');
  t.equal(await config('appendfsync'), 'always', 'appendfsync always');
  t.equal(await config('maxmemory-policy'), 'noeviction', 'noeviction');
  const maxmemory = Number(await config('maxmemory'));
  if ((process.env['REDIS_MAXMEMORY'] ?? '1gb') === '1gb') t.equal(maxmemory, 1024 ** 3, 'maxmemory 1gb (REDIS_MAXMEMORY)');
  else t.ok(maxmemory > 0, 'maxmemory set (REDIS_MAXMEMORY)');
  const postgres = (await runningTasks('postgres'))[0]?.info.Config.Env ?? [];
  t.ok(postgres.includes('POSTGRES_PASSWORD_FILE=/run/secrets/db_password'), 'postgres: the password from the secret');
  t.notOk(postgres.some((entry) => entry.startsWith('POSTGRES_PASSWORD=')), 'postgres: no password in the environment');
});

t.test('a rolling update of web under load: no failed request, every 202 persisted', async (t) => {
  const author = `swarm-rolling-${Date.now()}`;
  const before = new Set((await runningTasks('web')).map((task) => task.taskId));
  const nginxBefore = await oneContainer('nginx');
  // Paced and bounded: 3 GET and 3 POST loops, one request each per 20 ms at most, until the update
  // is over; a failed POST is retried with its Idempotency-Key (counted as a failure all the same).
  // The client waits longer than nginx does (proxy_read_timeout 30 s): nginx's answer counts, not
  // how busy the machine is.
  const load = new Load({ baseUrl: SWARM_URL, author, getWorkers: 3, postWorkers: 3, paceMs: 20, retryForMs: 60_000, requestTimeoutMs: 60_000 }).start();
  try {
    await waitFor(() => load.submissions.filter((submission) => submission.accepted).length >= 20, { timeoutMs: 60_000, what: 'the load to flow' });
    await docker(['service', 'update', '--force', '--detach', serviceName('web')]);
    await waitFor(
      async () => {
        const state = (await inspectService('web')).UpdateStatus?.State;
        if (state !== undefined && /rollback|paused/.test(state)) throw new Error(`the update of web went ${state}`);
        const tasks = await runningTasks('web');
        return state === 'completed' && tasks.every((task) => !before.has(task.taskId)) && (await serviceConverged('web')) === true;
      },
      { timeoutMs: 600_000, what: 'the update of web to replace every task', intervalMs: 1_000 },
    );
    // Then the new tasks alone, for a while (a number of requests, not a time).
    const mark = load.attempts.length;
    await waitFor(() => load.attempts.length >= mark + 300, { timeoutMs: 120_000, what: '300 more requests after the update' });
  } finally {
    await load.stop();
  }
  const after = await runningTasks('web');
  t.equal(after.length, 3, 'three tasks again');
  t.ok(after.every((task) => !before.has(task.taskId)), 'every task was replaced');
  t.equal(await oneContainer('nginx'), nginxBefore, 'nginx kept running (the same container) and followed the new addresses by itself');
  t.equal((await inspectService('web')).UpdateStatus?.State, 'completed', 'the update completed (no rollback)');
  await waitDrained(author, load.submissions.filter((submission) => submission.accepted).length);
  assertReconciled(t, await reconcile(load, author), { gets: true });
  t.same((await instanceIds(3)).ids, WEB_IDS(3), 'the replaced tasks keep their slots ids');
});

t.test('web scaled to 5: five instance ids', async (t) => {
  await docker(['service', 'scale', '--detach', `${serviceName('web')}=5`]);
  await waitConverged(['web']);
  t.equal((await runningTasks('web')).length, 5, 'five tasks');
  const { ids, statuses } = await instanceIds(5);
  t.same(ids, WEB_IDS(5), 'web.1 to web.5 answer');
  t.same([...new Set(statuses)], [200], 'every request answered 200');
});

t.test('the worker scaled to 2: both persist, no entry is stored twice', async (t) => {
  await docker(['service', 'scale', '--detach', `${serviceName('worker')}=2`]);
  await waitConverged(['worker']);
  t.equal((await runningTasks('worker')).length, 2, 'two worker tasks');
  const author = `swarm-workers-${Date.now()}`;
  const load = new Load({ baseUrl: SWARM_URL, author, getWorkers: 0, postWorkers: 0, paceMs: 0, retryForMs: 60_000, requestTimeoutMs: 60_000 });
  // Bursts of 200 entries, each drained, until both workers have taken some (bounded by the wait).
  await waitFor(
    async () => {
      await load.burst(200, 16);
      await waitDrained(author, load.submissions.filter((submission) => submission.accepted).length);
      const workers = new Set((await rowsOf(author)).map((row) => row.persistedBy));
      return workers.has('worker.1') && workers.has('worker.2');
    },
    { timeoutMs: 300_000, what: 'entries persisted by worker.1 and by worker.2', intervalMs: 0 },
  );
  const result = await reconcile(load, author);
  t.same([...result.persistedBy].sort(), ['worker.1', 'worker.2'], 'both workers persisted entries');
  assertReconciled(t, result, { gets: false });
});
