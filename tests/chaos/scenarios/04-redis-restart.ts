/**
 * Scenario 4: Redis crashed and then stopped while it holds a backlog (the worker is stopped, so
 * every 202 is a job waiting in Redis). With AOF fsync always, the crash must lose no job Redis
 * acknowledged; while Redis is stopped, POSTs must be refused (503), never accepted.
 */
import { composeStart, composeStop, containerInfo, queueCounts, waitFor } from '@inflow/test-support';
import { crashProcess, waitRestartedByDocker } from '../harness.ts';
import { defineScenario, seconds } from '../scenario.ts';
import { isStatus } from '../verify.ts';

const REDIS_STOPPED_MS = 5_000;

/** Waits until the API answers GET /api/stats, which reads the queue, again. */
async function waitApiReachesRedis(): Promise<void> {
  await waitFor(() => queueCounts(), { timeoutMs: 60_000, what: 'the API to reach Redis again', intervalMs: 200 });
}

export default defineScenario({
  id: '4',
  name: 'Redis restarted with a backlog',
  load: '2 GET + 6 POST workers; worker stopped, so every 202 waits in Redis',
  injected: 'redis-server SIGKILLed inside its container (Docker restarts it), then compose stop redis for 5 s and start',
  traffic: { getWorkers: 2, postWorkers: 6 },
  before: () => composeStop('worker'),
  async fault({ load, atLoadTime, note }) {
    await atLoadTime(6_000);
    const backlog = await queueCounts();
    note(`${seconds(load.now())}: backlog ${backlog?.waiting ?? '?'} waiting`);

    // A crash: AOF with fsync always must have every job Redis acknowledged.
    const redisBefore = await containerInfo('redis');
    await crashProcess('redis');
    const crashedAt = load.now();
    note(`${seconds(crashedAt)}: SIGKILL to redis-server`);
    await waitRestartedByDocker('redis', redisBefore, 30_000);
    await waitApiReachesRedis();
    note(`redis restarted by its policy; the API answered /api/stats again ${seconds(load.now() - crashedAt)} after the kill`);

    // A planned outage long enough to see: POSTs must get 503, never 202.
    await atLoadTime(load.now() + 4_000);
    await composeStop('redis');
    const downFrom = load.now();
    await atLoadTime(downFrom + REDIS_STOPPED_MS);
    const downUntil = load.now();
    await composeStart('redis');
    await waitApiReachesRedis();
    note(`${seconds(downFrom)}–${seconds(downUntil)}: redis stopped; the API answered /api/stats again ${seconds(load.now() - downUntil)} after the start`);
    await atLoadTime(load.now() + 3_000);
    return { downFrom, downUntil };
  },
  async afterLoad({ load, accepted, note, problem }, { downFrom, downUntil }) {
    const whileDown = load.attempts.filter((attempt) => attempt.method === 'POST' && attempt.sentAt >= downFrom && attempt.answeredAt <= downUntil);
    const acceptedWhileDown = whileDown.filter((attempt) => attempt.outcome === 202).length;
    const refused = whileDown.filter((attempt) => attempt.outcome === 503).length;
    note(`POSTs sent and answered while Redis was stopped: ${whileDown.length}, of which 503: ${refused}, 202: ${acceptedWhileDown}`);
    if (acceptedWhileDown > 0) problem(`${acceptedWhileDown} POSTs got 202 while Redis was down`);
    if (refused === 0) problem('no POST was refused while Redis was down: the outage was not observed');

    // Nothing consumed yet: every accepted entry must still be waiting.
    const backlog = await waitFor(() => queueCounts(), { timeoutMs: 30_000, what: '/api/stats', intervalMs: 500 });
    note(`after both restarts, before the worker starts: ${backlog.waiting} waiting for ${accepted()} accepted`);
    if (backlog.waiting < accepted()) problem(`only ${backlog.waiting} jobs left for ${accepted()} accepted entries`);
    await composeStart('worker');
  },
  expect: {
    postError: isStatus(503),
    // What needs the queue says it is unavailable while Redis is down.
    getError: isStatus(503),
    // A job Redis wrote to its AOF just before the kill, whose answer the API never got.
    inFlightAllowed: true,
  },
});
