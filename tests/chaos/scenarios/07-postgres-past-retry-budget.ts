/**
 * Scenario 7: PostgreSQL down ten times as long as the whole retry budget (retry-budget.ts). The
 * worker must stop fetching and say why on its /readyz, rather than spend every job's attempts
 * and move them to the failed set: no job may fail, and all are persisted once it is back.
 */
import { composeStart, composeStop, queueCounts, waitFor } from '@inflow/test-support';
import { opsReadyz, waitPublicReady } from '../probes.ts';
import { RETRY_BUDGET_MS } from '../retry-budget.ts';
import { defineScenario, seconds } from '../scenario.ts';
import { isStatus } from '../verify.ts';

const OUTAGE_MS = 10 * RETRY_BUDGET_MS;

export default defineScenario({
  id: '7',
  name: 'PostgreSQL down longer than the retry budget',
  load: '2 GET + 6 POST workers; the stack runs with a retry budget of 3 attempts, 1 s and 2 s apart (3 s)',
  injected: `compose stop postgres at 3 s for ${OUTAGE_MS / 1000} s (ten times the whole retry budget), then start`,
  traffic: { getWorkers: 2, postWorkers: 6 },
  async fault({ load, atLoadTime, note, problem }) {
    await atLoadTime(3_000);
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
      problem(String(error));
      return '';
    });
    const consumer = /"consumer":\{[^}]*\}/.exec(waiting)?.[0];
    if (consumer !== undefined) note(`worker /readyz during the outage: ${consumer}`);
    await atLoadTime(stoppedAt + OUTAGE_MS);
    const midway = await queueCounts();
    note(`after ${seconds(load.now() - stoppedAt)} down: queue ${JSON.stringify(midway)}`);
    if ((midway?.failed ?? 0) > 0) problem(`${midway?.failed ?? 0} jobs failed during the outage`);
    await composeStart('postgres');
    const downUntil = load.now();
    await waitPublicReady();
    note(`${seconds(downFrom)}–${seconds(downUntil)}: postgres stopped (stop done at ${seconds(stoppedAt)})`);
    await atLoadTime(load.now() + 3_000);
    return { downFrom, downUntil };
  },
  afterDrain({ note }, queue) {
    note(`drained after the start: queue ${JSON.stringify(queue)}`);
  },
  expect: ({ downFrom, downUntil }) => ({
    getError: (attempt) => isStatus(503)(attempt) && attempt.sentAt >= downFrom - 1_000 && attempt.sentAt <= downUntil + 30_000,
  }),
});
