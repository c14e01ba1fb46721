/**
 * Scenario 9: Redis brought to its memory limit by a backlog (the worker stopped). The API must
 * refuse POSTs (503) before Redis is full, so that the worker can still drain it, and accept
 * again once the worker has made room.
 */
import { composeStart, composeStop, waitFor } from '@inflow/test-support';
import { redisCli, redisMemory } from '../probes.ts';
import { defineScenario, seconds } from '../scenario.ts';
import { isStatus } from '../verify.ts';

/** Room left below the API's limit (80 % of maxmemory) when the load starts. */
const ROOM_BYTES = 8 * 1024 * 1024;

export default defineScenario({
  id: '9',
  name: 'Redis at its memory limit under POST load',
  load: '8 POST workers; the worker stopped until the API refuses',
  injected: "CONFIG SET maxmemory so that 8 MB of room are left below the API's limit (80 % of maxmemory); worker started once POSTs get 503",
  traffic: { getWorkers: 0, postWorkers: 8 },
  async before({ note }) {
    const original = await redisCli('CONFIG', 'GET', 'maxmemory');
    const originalBytes = original.split('\n')[1] ?? '0';
    await composeStop('worker');
    const { used } = await redisMemory();
    const maxmemory = Math.ceil((used + ROOM_BYTES) / 0.8);
    await redisCli('CONFIG', 'SET', 'maxmemory', String(maxmemory));
    note(`maxmemory ${(maxmemory / 2 ** 20).toFixed(1)} MiB (was ${originalBytes} bytes), used ${(used / 2 ** 20).toFixed(1)} MiB`);
    return async () => {
      await redisCli('CONFIG', 'SET', 'maxmemory', originalBytes);
    };
  },
  async fault({ load, atLoadTime, accepted, note, problem }) {
    const refusedAt = await waitFor(() => load.attempts.find((attempt) => attempt.method === 'POST' && attempt.outcome === 503)?.sentAt, {
      timeoutMs: 120_000,
      what: 'the API to refuse a POST',
      intervalMs: 200,
    });
    note(`${seconds(refusedAt)}: first 503, with ${accepted()} entries accepted`);
    await atLoadTime(load.now() + 3_000);
    const full = await redisMemory();
    note(`3 s later: Redis uses ${(full.used / 2 ** 20).toFixed(1)} of ${(full.max / 2 ** 20).toFixed(1)} MiB`);
    if (full.used >= full.max) problem('Redis reached maxmemory: the worker could not drain');
    await composeStart('worker');
    const workerAt = load.now();
    await waitFor(() => load.attempts.some((attempt) => attempt.method === 'POST' && attempt.outcome === 202 && attempt.sentAt > workerAt), {
      timeoutMs: 120_000,
      what: 'a POST accepted again after the worker started',
      intervalMs: 200,
    });
    note(`POSTs accepted again ${seconds(load.now() - workerAt)} after the worker started`);
    await atLoadTime(load.now() + 3_000);
  },
  afterLoad({ load, note }) {
    const refused = load.attempts.filter((attempt) => attempt.method === 'POST' && attempt.outcome === 503).length;
    note(`POSTs answered 503 queue_unavailable: ${refused}`);
  },
  expect: { postError: isStatus(503) },
});
