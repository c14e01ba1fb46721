/**
 * The fault scenarios. Each runs a bounded load through nginx, injects its fault, waits for
 * the queue to drain and reconciles every answer with the rows (verify.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BASE_URL, PROJECT, REPO_ROOT, runCompose, waitFor, waitHealthy } from '@inflow/test-support';
import {
  composeStart,
  composeStop,
  containerInfo,
  countRows,
  docker,
  forgetContainers,
  idOf,
  literal,
  psql,
  queueCounts,
  resolveContainers,
  waitDrained,
  waitHealthyService,
} from '@inflow/test-support/running-stack';
import { crashProcess, dockerKill, dockerStart, sample, waitInRotation } from './harness.ts';
import { rateLimit } from './rate-limit.ts';
import { Load, type Attempt, type LoadOptions } from './load.ts';
import { reconcile, withFindings, type ScenarioResult } from './verify.ts';

export interface Context {
  /** Unique per run, so that the authors (and so the rows) of a run are its own. */
  runId: string;
  /** Every load run so far, with its author: the last scenario checks them all again. */
  loads: { author: string; load: Load }[];
}

export interface Scenario {
  id: string;
  name: string;
  load: string;
  injected: string;
  run(context: Context): Promise<ScenarioResult>;
}

/** Writes every service's logs to test-results/compose-<project>-<label>.log. */
function saveLogs(label: string): void {
  const logs = runCompose(['logs', '--no-color', '--timestamps'], { check: false }).stdout;
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'test-results', `compose-${PROJECT}-${label}.log`), logs);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

function newLoad(context: Context, id: string, options: Partial<LoadOptions>): { load: Load; author: string } {
  const author = `chaos-${context.runId}-s${id}`;
  const load = new Load({ baseUrl: BASE_URL, author, getWorkers: 6, postWorkers: 6, paceMs: 15, retryForMs: 45_000, ...options });
  context.loads.push({ author, load });
  return { load, author };
}

/** Sleeps until the load's clock reads `ms`. */
async function until(load: Load, ms: number): Promise<void> {
  const wait = ms - load.now();
  if (wait > 0) await sleep(wait);
}

const accepted = (load: Load): number => load.submissions.filter((submission) => submission.accepted).length;

const isStatus =
  (...statuses: number[]) =>
  (attempt: Attempt): boolean =>
    typeof attempt.outcome === 'number' && statuses.includes(attempt.outcome);

async function readyz(): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`${BASE_URL}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    return { status: 0, text: String(error) };
  }
}

/**
 * A service's detailed /readyz body, read inside its container: the ops port (8081 for the API
 * replicas and the worker) is internal, never published nor proxied by nginx.
 */
async function opsReadyz(service: string): Promise<string> {
  const script = 'exec 3<>/dev/tcp/127.0.0.1/8081; printf "GET /readyz HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3';
  return docker(['exec', idOf(service), 'bash', '-c', script]).catch((error: unknown) => String(error));
}

const killReplica: Scenario = {
  id: '1',
  name: 'SIGKILL a web replica',
  load: '20 s: 6 GET + 6 POST workers',
  injected: "docker kill -s KILL web2 at 3 s, docker start at 7 s; web3's node process SIGKILLed from the host at 11 s",
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, {});
    load.start();

    await until(load, 3_000);
    const web2Before = await containerInfo('web2');
    await dockerKill('web2');
    notes.push(`${seconds(load.now())}: docker kill -s KILL web2`);
    await until(load, 7_000);
    const web2After = await containerInfo('web2');
    if (web2After.status === 'running' || web2After.restartCount > web2Before.restartCount) {
      notes.push('web2 was restarted by Docker after docker kill');
    } else {
      notes.push(
        `web2 after docker kill: ${web2After.status}, exit ${web2After.exitCode}, restart count ${web2After.restartCount} (unchanged): ` +
          'Docker counts a kill through its API as a manual stop and does not apply the restart policy; started again with docker start',
      );
    }
    await dockerStart('web2');
    // Not awaited here: the next fault comes on schedule, whether web2 is healthy yet or not.
    const web2Healthy = waitHealthyService('web2').then(
      (ms) => `web2 healthy ${seconds(ms)} after docker start (its health check: /readyz every 5 s)`,
      (error: unknown) => {
        problems.push(`web2 did not become healthy again: ${String(error)}`);
        return 'web2 did not become healthy again';
      },
    );

    await until(load, 11_000);
    const web3Before = await containerInfo('web3');
    const pid = await crashProcess('web3');
    const crashedAt = Date.now();
    notes.push(`${seconds(load.now())}: SIGKILL to web3's node process (host pid ${pid})`);
    try {
      await waitFor(
        async () => {
          const state = await containerInfo('web3');
          return state.restartCount > web3Before.restartCount && state.status === 'running';
        },
        { timeoutMs: 30_000, what: 'Docker to restart web3', intervalMs: 200 },
      );
      notes.push(`web3 restarted by its restart policy (unless-stopped) ${seconds(Date.now() - crashedAt)} after the kill`);
    } catch {
      problems.push('web3 was not restarted by Docker after its process was killed');
    }

    await until(load, 20_000);
    await load.stop();
    notes.push(await web2Healthy);
    for (const replica of ['web2', 'web3']) {
      notes.push(`${replica} back in nginx's rotation (${seconds(await waitInRotation(replica))} after the load)`);
    }
    await waitDrained(author, accepted(load));
    const result = await reconcile(this, load, author, { postError: isStatus(502, 503), inFlightAllowed: true }, startedAt);
    if (result.failedGets > 0) problems.push(`${result.failedGets} GETs failed`);
    return withFindings(result, notes, problems);
  },
};

const rollingRestart: Scenario = {
  id: '2',
  name: 'Rolling restart web1, web2, web3',
  load: '6 GET + 6 POST workers, throughout',
  injected: 'compose stop (SIGTERM) then start of each replica, one at a time, each back in rotation before the next',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, {});
    load.start();
    await until(load, 3_000);
    for (const replica of ['web1', 'web2', 'web3']) {
      const stopAt = Date.now();
      await composeStop(replica);
      const stopped = await containerInfo(replica);
      notes.push(`${replica}: stopped in ${seconds(Date.now() - stopAt)}, exit code ${stopped.exitCode}`);
      if (stopped.exitCode !== 0) problems.push(`${replica} exited ${stopped.exitCode} on SIGTERM (not a clean drain)`);
      await composeStart(replica);
      const healthyMs = await waitHealthyService(replica);
      notes.push(`${replica}: healthy ${seconds(healthyMs)} after start, in rotation ${seconds(await waitInRotation(replica))} later`);
    }
    await sleep(3_000);
    await load.stop();
    await waitDrained(author, accepted(load));
    const result = await reconcile(this, load, author, {}, startedAt);
    return withFindings(result, notes, problems);
  },
};

const workerStopped: Scenario = {
  id: '3',
  name: 'Worker stopped for 30 s',
  load: '40 s: 2 GET + 8 POST workers',
  injected: 'compose stop worker at 3 s, start at 33 s',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, { getWorkers: 2, postWorkers: 8 });
    load.start();
    await until(load, 3_000);
    await composeStop('worker');
    notes.push(`${seconds(load.now())}: worker stopped`);
    const backlog = sample(queueCounts, 1_000);
    await until(load, 33_000);
    await backlog.stop();
    await composeStart('worker');
    const restartedAt = Date.now();
    notes.push(`${seconds(load.now())}: worker started`);
    await until(load, 40_000);
    await load.stop();

    const waiting = backlog.samples.map((counts) => counts?.waiting ?? 0);
    const peak = Math.max(0, ...waiting);
    notes.push(`GET /api/stats while the worker was down: waiting rose to ${peak} (${waiting.filter((n) => n > 0).length} of ${waiting.length} samples > 0)`);
    if (peak === 0) problems.push('the backlog was not visible in /api/stats');
    const drained = await waitDrained(author, accepted(load));
    notes.push(`backlog drained ${seconds(Date.now() - restartedAt)} after the worker started; queue then ${JSON.stringify(drained)}`);
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(this, load, author, {}, startedAt);
    return withFindings(result, notes, problems);
  },
};

const redisRestart: Scenario = {
  id: '4',
  name: 'Redis restarted with a backlog',
  load: '2 GET + 6 POST workers; worker stopped, so every 202 waits in Redis',
  injected: 'redis-server SIGKILLed from the host (Docker restarts it), then compose stop redis for 5 s and start',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    await composeStop('worker');
    const { load, author } = newLoad(context, this.id, { getWorkers: 2, postWorkers: 6, getPaths: ['/api/entries?limit=20', '/api/instance', '/api/stats'] });
    load.start();
    await until(load, 6_000);
    const before = await queueCounts();
    notes.push(`${seconds(load.now())}: backlog ${before?.waiting ?? '?'} waiting`);

    // A crash: AOF with fsync always must have every job Redis acknowledged.
    const redisBefore = await containerInfo('redis');
    await crashProcess('redis');
    const crashedAt = load.now();
    notes.push(`${seconds(crashedAt)}: SIGKILL to redis-server`);
    await waitFor(
      async () => {
        const state = await containerInfo('redis');
        return state.restartCount > redisBefore.restartCount && state.status === 'running';
      },
      { timeoutMs: 30_000, what: 'Docker to restart redis', intervalMs: 200 },
    );
    await waitFor(() => queueCounts(), { timeoutMs: 60_000, what: 'the API to reach Redis again', intervalMs: 200 });
    notes.push(`redis restarted by its policy; the API answered /api/stats again ${seconds(load.now() - crashedAt)} after the kill`);

    // A planned outage long enough to see: POSTs must get 503, never 202.
    await until(load, load.now() + 4_000);
    await composeStop('redis');
    const downFrom = load.now();
    await sleep(5_000);
    const downUntil = load.now();
    await composeStart('redis');
    await waitFor(() => queueCounts(), { timeoutMs: 60_000, what: 'the API to reach Redis again', intervalMs: 200 });
    notes.push(`${seconds(downFrom)}–${seconds(downUntil)}: redis stopped; the API answered /api/stats again ${seconds(load.now() - downUntil)} after the start`);
    await sleep(3_000);
    await load.stop();

    const whileDown = load.attempts.filter((attempt) => attempt.method === 'POST' && attempt.sentAt >= downFrom && attempt.answeredAt <= downUntil);
    const acceptedWhileDown = whileDown.filter((attempt) => attempt.outcome === 202).length;
    const refused = whileDown.filter((attempt) => attempt.outcome === 503).length;
    notes.push(`POSTs sent and answered while Redis was stopped: ${whileDown.length}, of which 503: ${refused}, 202: ${acceptedWhileDown}`);
    if (acceptedWhileDown > 0) problems.push(`${acceptedWhileDown} POSTs got 202 while Redis was down`);
    if (refused === 0) problems.push('no POST was refused while Redis was down: the outage was not observed');

    // Nothing consumed yet: every accepted entry must still be waiting.
    const backlog = await waitFor(() => queueCounts(), { timeoutMs: 30_000, what: '/api/stats', intervalMs: 500 });
    notes.push(`after both restarts, before the worker starts: ${backlog.waiting} waiting for ${accepted(load)} accepted`);
    if (backlog.waiting < accepted(load)) problems.push(`only ${backlog.waiting} jobs left for ${accepted(load)} accepted entries`);
    await composeStart('worker');
    const drained = await waitDrained(author, accepted(load));
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(
      this,
      load,
      author,
      {
        postError: isStatus(503),
        // What needs the queue says it is unavailable while Redis is down.
        getError: isStatus(503),
        // A job Redis wrote to its AOF just before the kill, whose answer the API never got.
        inFlightAllowed: true,
      },
      startedAt,
    );
    return withFindings(result, notes, problems);
  },
};

const postgresRestart: Scenario = {
  id: '5',
  name: 'PostgreSQL restarted under load',
  load: '25 s: 4 GET + 6 POST workers',
  injected: 'compose stop postgres at 4 s; compose start 8 s after the stop completed',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, { getWorkers: 4, postWorkers: 6 });
    load.start();
    const readiness = sample(readyz, 500);
    await until(load, 4_000);
    // From the moment the stop is asked for: PostgreSQL ends its connections at once, and a
    // busy Docker takes seconds to report the stop done.
    const downFrom = load.now();
    await composeStop('postgres');
    const stoppedAt = load.now();
    const web1During = await opsReadyz('web1');
    await until(load, stoppedAt + 8_000);
    await composeStart('postgres');
    const downUntil = load.now();
    await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 60_000, what: '/readyz to answer 200 again', intervalMs: 250 });
    const readyAt = load.now();
    notes.push(
      `${seconds(downFrom)}: compose stop postgres (done at ${seconds(stoppedAt)}); ${seconds(downUntil)}: started; /readyz 200 again ${seconds(readyAt - downUntil)} later`,
    );
    await until(load, Math.max(25_000, readyAt + 5_000));
    await load.stop();
    await readiness.stop();

    // Publicly only "not ready"; which dependency failed is for the ops port (read during the outage).
    const degraded = readiness.samples.filter((probe) => probe.status === 503);
    notes.push(`public /readyz samples: ${readiness.samples.length}, 503: ${degraded.length}${degraded[0] === undefined ? '' : ` (${degraded[0].text.slice(0, 120)})`}`);
    if (degraded.length === 0) problems.push('/readyz never showed the outage');
    const leaking = readiness.samples.filter((probe) => /postgres|redis|ECONN|\d+\.\d+\.\d+\.\d+/i.test(probe.text));
    if (leaking.length > 0) problems.push(`${leaking.length} public /readyz answers named internals, e.g. ${leaking[0]?.text.slice(0, 120) ?? ''}`);
    notes.push(`web1's ops /readyz during the outage: ${/"postgres":\{[^}]*\}/.exec(web1During)?.[0] ?? web1During.slice(-160)}`);
    if (!/"postgres":\{"ok":false/.test(web1During)) problems.push("web1's ops /readyz did not name postgres as unavailable");
    if (readiness.samples.at(-1)?.status !== 200) problems.push('/readyz was not 200 at the end');

    const drained = await waitDrained(author, accepted(load));
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(
      this,
      load,
      author,
      {
        // Reads need PostgreSQL: 503 database_unavailable while it is down.
        getError: (attempt) => isStatus(503)(attempt) && attempt.sentAt >= downFrom - 1_000 && attempt.sentAt <= readyAt + 1_000,
      },
      startedAt,
    );
    return withFindings(result, notes, problems);
  },
};

const wholeStack: Scenario = {
  id: '6',
  name: 'Whole stack down (volumes kept) mid-backlog',
  load: '3,000 POSTs (16 at a time) with the worker stopped',
  injected: 'worker started, then docker-compose down as soon as it has persisted some; docker-compose up -d',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    await composeStop('worker');
    const { load, author } = newLoad(context, this.id, { getWorkers: 0, postWorkers: 0 });
    await load.burst(3_000, 16);
    const earlier = context.loads.filter((entry) => entry.load !== load);
    const rowsBefore = await countRows();
    // `down` removes the containers and their logs: keep them for the report, like support's
    // down(). Now, not just before the `down`: that takes seconds, and the backlog would be gone.
    saveLogs('before-down');
    await composeStart('worker');
    await waitFor(async () => (await countRows(author)) > 0, { timeoutMs: 60_000, what: 'the worker to persist something', intervalMs: 100 });
    const [persistedAtDown, queued] = await Promise.all([countRows(author), queueCounts()]);
    notes.push(`docker-compose down issued with ${persistedAtDown} of ${accepted(load)} persisted, queue ${JSON.stringify(queued)}`);
    runCompose(['down']);
    forgetContainers();
    runCompose(['up', '-d']);
    await waitHealthy();
    resolveContainers();
    notes.push(`stack down and up again in ${seconds(Date.now() - startedAt)} since the scenario began`);

    const drained = await waitDrained(author, accepted(load));
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const rowsAfter = await countRows();
    notes.push(`rows: ${rowsBefore} before the worker started, ${rowsAfter} after (${rowsAfter - rowsBefore} new for ${accepted(load)} accepted)`);
    if (rowsAfter - rowsBefore !== accepted(load)) problems.push(`expected ${accepted(load)} new rows, found ${rowsAfter - rowsBefore}`);

    // Everything the earlier scenarios were promised is still there after down and up.
    let earlierAccepted = 0;
    for (const entry of earlier) {
      const check = await reconcile({ id: '', name: '', load: '', injected: '' }, entry.load, entry.author, { inFlightAllowed: true, getError: () => true, postError: () => true }, Date.now());
      earlierAccepted += check.accepted;
      if (check.lost > 0 || check.duplicated > 0) problems.push(`${entry.author}: ${check.lost} lost, ${check.duplicated} duplicated after down/up`);
    }
    if (earlier.length > 0) notes.push(`all ${earlierAccepted} entries accepted by the earlier scenarios are still persisted, once each`);

    const result = await reconcile(this, load, author, {}, startedAt);
    return withFindings(result, notes, problems);
  },
};

/** Runs redis-cli in the redis container; its output, trimmed. */
async function redisCli(...args: string[]): Promise<string> {
  return (await docker(['exec', idOf('redis'), 'redis-cli', ...args])).trim();
}

async function redisMemory(): Promise<{ used: number; max: number }> {
  const info = await redisCli('INFO', 'memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
  return { used: field('used_memory'), max: field('maxmemory') };
}

/** The retry budget the chaos stack runs with (run.ts): the outage below lasts ten times as long. */
export const CHAOS_RETRY = { attempts: 3, delayMs: 1_000 };
const retryBudgetMs = CHAOS_RETRY.delayMs * (2 ** (CHAOS_RETRY.attempts - 1) - 1);

const postgresPastBudget: Scenario = {
  id: '7',
  name: 'PostgreSQL down longer than the retry budget',
  load: '2 GET + 6 POST workers; the stack runs with a retry budget of 3 attempts, 1 s and 2 s apart (3 s)',
  injected: `compose stop postgres at 3 s for ${(10 * retryBudgetMs) / 1000} s (ten times the whole retry budget), then start`,
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, { getWorkers: 2, postWorkers: 6 });
    load.start();
    await until(load, 3_000);
    const downFrom = load.now();
    await composeStop('postgres');
    const stoppedAt = load.now();
    // The worker says why it does nothing: sampled once entries have met the closed database.
    const waiting = await waitFor(
      async () => {
        const body = await opsReadyz('worker');
        return /waiting for the database/.test(body) ? body : undefined;
      },
      { timeoutMs: 30_000, what: "the worker's /readyz to say it waits for the database", intervalMs: 500 },
    ).catch((error: unknown) => {
      problems.push(String(error));
      return '';
    });
    const consumer = /"consumer":\{[^}]*\}/.exec(waiting)?.[0];
    if (consumer !== undefined) notes.push(`worker /readyz during the outage: ${consumer}`);
    await until(load, stoppedAt + 10 * retryBudgetMs);
    const midway = await queueCounts();
    notes.push(`after ${seconds(load.now() - stoppedAt)} down: queue ${JSON.stringify(midway)}`);
    if ((midway?.failed ?? 0) > 0) problems.push(`${midway?.failed ?? 0} jobs failed during the outage`);
    await composeStart('postgres');
    const downUntil = load.now();
    await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 60_000, what: '/readyz to answer 200 again', intervalMs: 250 });
    notes.push(`${seconds(downFrom)}–${seconds(downUntil)}: postgres stopped (stop done at ${seconds(stoppedAt)})`);
    await until(load, load.now() + 3_000);
    await load.stop();
    const drained = await waitDrained(author, accepted(load));
    notes.push(`drained after the start: queue ${JSON.stringify(drained)}`);
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(
      this,
      load,
      author,
      { getError: (attempt) => isStatus(503)(attempt) && attempt.sentAt >= downFrom - 1_000 && attempt.sentAt <= downUntil + 30_000 },
      startedAt,
    );
    return withFindings(result, notes, problems);
  },
};

/** The ids in BullMQ's active list, read straight from Redis. */
async function activeJobIds(): Promise<string[]> {
  const output = await redisCli('LRANGE', 'bull:entries:active', '0', '-1');
  return output === '' ? [] : output.split('\n');
}

const workerCrash: Scenario = {
  id: '8',
  name: 'Worker SIGKILLed with entries in flight',
  load: '25 s: 6 POST workers',
  injected:
    'docker pause postgres at 3 s until at least 10 jobs are active (their INSERTs hang), SIGKILL to the worker process from the host, docker unpause postgres; Docker restarts the worker',
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const { load, author } = newLoad(context, this.id, { getWorkers: 0, postWorkers: 6 });
    load.start();
    await until(load, 3_000);
    // Holds the worker's INSERTs, so that it certainly has entries in flight when it dies.
    await docker(['pause', idOf('postgres')]);
    let inFlight: string[] = [];
    try {
      await waitFor(async () => (await activeJobIds()).length >= 10, { timeoutMs: 30_000, what: '10 active jobs', intervalMs: 100 });
      const before = await containerInfo('worker');
      const pid = await crashProcess('worker');
      const killedAt = Date.now();
      inFlight = await activeJobIds();
      notes.push(`${seconds(load.now())}: SIGKILL to the worker (host pid ${pid}) with ${inFlight.length} entries active`);
      await docker(['unpause', idOf('postgres')]);
      await waitFor(
        async () => {
          const state = await containerInfo('worker');
          return state.restartCount > before.restartCount && state.status === 'running';
        },
        { timeoutMs: 60_000, what: 'Docker to restart the worker', intervalMs: 100 },
      );
      const runningAt = Date.now();
      const ids = inFlight.map(literal).join(', ');
      await waitFor(async () => Number((await psql(`SELECT count(*) FROM entries WHERE id IN (${ids})`))[0]?.[0]) === inFlight.length, {
        timeoutMs: 120_000,
        what: 'every entry that was in flight to be persisted',
        intervalMs: 100,
      });
      const persistedAt = Date.now();
      notes.push(
        `worker running again ${seconds(runningAt - killedAt)} after the kill; all ${inFlight.length} entries it had in flight persisted ` +
          `${seconds(persistedAt - runningAt)} after that (target: within 15 s; lock 8 s, stalled check every 2 s)`,
      );
    } finally {
      await docker(['unpause', idOf('postgres')]).catch(() => undefined);
    }
    if (inFlight.length === 0) problems.push('no entry was in flight when the worker died');
    await until(load, 25_000);
    await load.stop();
    const drained = await waitDrained(author, accepted(load));
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(this, load, author, {}, startedAt);
    return withFindings(result, notes, problems);
  },
};

const redisFull: Scenario = {
  id: '9',
  name: 'Redis at its memory limit under POST load',
  load: '8 POST workers; the worker stopped until the API refuses',
  injected: "CONFIG SET maxmemory so that 8 MB of room are left below the API's limit (80 % of maxmemory); worker started once POSTs get 503",
  async run(context) {
    const startedAt = Date.now();
    const notes: string[] = [];
    const problems: string[] = [];
    const original = await redisCli('CONFIG', 'GET', 'maxmemory');
    const originalBytes = original.split('\n')[1] ?? '0';
    await composeStop('worker');
    const { used } = await redisMemory();
    const maxmemory = Math.ceil((used + 8 * 1024 * 1024) / 0.8);
    await redisCli('CONFIG', 'SET', 'maxmemory', String(maxmemory));
    notes.push(`maxmemory ${(maxmemory / 2 ** 20).toFixed(1)} MiB (was ${originalBytes} bytes), used ${(used / 2 ** 20).toFixed(1)} MiB`);
    const { load, author } = newLoad(context, this.id, { getWorkers: 0, postWorkers: 8 });
    try {
      load.start();
      const refusedAt = await waitFor(() => load.attempts.find((attempt) => attempt.method === 'POST' && attempt.outcome === 503)?.sentAt, {
        timeoutMs: 120_000,
        what: 'the API to refuse a POST',
        intervalMs: 200,
      });
      notes.push(`${seconds(refusedAt)}: first 503, with ${accepted(load)} entries accepted`);
      await until(load, load.now() + 3_000);
      const full = await redisMemory();
      notes.push(`3 s later: Redis uses ${(full.used / 2 ** 20).toFixed(1)} of ${(full.max / 2 ** 20).toFixed(1)} MiB`);
      if (full.used >= full.max) problems.push('Redis reached maxmemory: the worker could not drain');
      await composeStart('worker');
      const workerAt = load.now();
      await waitFor(() => load.attempts.some((attempt) => attempt.method === 'POST' && attempt.outcome === 202 && attempt.sentAt > workerAt), {
        timeoutMs: 120_000,
        what: 'a POST accepted again after the worker started',
        intervalMs: 200,
      });
      notes.push(`POSTs accepted again ${seconds(load.now() - workerAt)} after the worker started`);
      await until(load, load.now() + 3_000);
      await load.stop();
    } finally {
      await redisCli('CONFIG', 'SET', 'maxmemory', originalBytes);
    }
    const refused = load.attempts.filter((attempt) => attempt.method === 'POST' && attempt.outcome === 503).length;
    notes.push(`POSTs answered 503 queue_unavailable: ${refused}`);
    const drained = await waitDrained(author, accepted(load));
    if (drained.failed > 0) problems.push(`${drained.failed} jobs failed for good`);
    const result = await reconcile(this, load, author, { postError: isStatus(503) }, startedAt);
    return withFindings(result, notes, problems);
  },
};

// The whole-stack scenario runs last: it checks again every entry the others were promised.
export const SCENARIOS: readonly Scenario[] = [
  killReplica,
  rollingRestart,
  workerStopped,
  redisRestart,
  postgresRestart,
  postgresPastBudget,
  workerCrash,
  redisFull,
  rateLimit,
  wholeStack,
];
