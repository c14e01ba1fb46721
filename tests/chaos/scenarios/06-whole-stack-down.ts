/**
 * Scenario 6, run last: the whole stack taken down (volumes kept) while the worker is halfway
 * through a backlog, and brought up again. Every entry accepted before, by this scenario and by
 * all the earlier ones, must be persisted once afterwards.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  composeStart,
  composeStop,
  countRows,
  forgetContainers,
  PROJECT,
  queueCounts,
  REPO_ROOT,
  resolveContainers,
  runCompose,
  waitFor,
  waitHealthy,
} from '@inflow/test-support';
import { defineScenario, seconds } from '../scenario.ts';
import { reconcile } from '../verify.ts';

/** Writes every service's logs to test-results/compose-<project>-<label>.log. */
function saveLogs(label: string): void {
  const logs = runCompose(['logs', '--no-color', '--timestamps'], { check: false }).stdout;
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'test-results', `compose-${PROJECT}-${label}.log`), logs);
}

export default defineScenario({
  id: '6',
  name: 'Whole stack down (volumes kept) mid-backlog',
  load: '3,000 POSTs (16 at a time) with the worker stopped',
  injected: 'worker started, then docker-compose down as soon as it has persisted some; docker-compose up -d',
  // No paced workers: one burst, then the fault.
  traffic: { getWorkers: 0, postWorkers: 0 },
  before: () => composeStop('worker'),
  async fault({ run, load, author, startedAt, accepted, note }) {
    await load.burst(3_000, 16);
    const earlier = run.loads.filter((entry) => entry.load !== load);
    const rowsBefore = await countRows();
    // `down` removes the containers and their logs: keep them for the report, like support's
    // down(). Now, not just before the `down`: that takes seconds, and the backlog would be gone.
    saveLogs('before-down');
    await composeStart('worker');
    await waitFor(async () => (await countRows(author)) > 0, { timeoutMs: 60_000, what: 'the worker to persist something', intervalMs: 100 });
    const [persistedAtDown, queued] = await Promise.all([countRows(author), queueCounts()]);
    note(`docker-compose down issued with ${persistedAtDown} of ${accepted()} persisted, queue ${JSON.stringify(queued)}`);
    runCompose(['down']);
    forgetContainers();
    runCompose(['up', '-d']);
    await waitHealthy();
    resolveContainers();
    note(`stack down and up again in ${seconds(Date.now() - startedAt)} since the scenario began`);
    return { earlier, rowsBefore };
  },
  async afterDrain({ accepted, note, problem }, _queue, { earlier, rowsBefore }) {
    const rowsAfter = await countRows();
    note(`rows: ${rowsBefore} before the worker started, ${rowsAfter} after (${rowsAfter - rowsBefore} new for ${accepted()} accepted)`);
    if (rowsAfter - rowsBefore !== accepted()) problem(`expected ${accepted()} new rows, found ${rowsAfter - rowsBefore}`);

    // Everything the earlier scenarios were promised is still there after down and up: only
    // their rows are checked again here, their answers were judged in their own scenarios.
    const anyAnswer = { inFlightAllowed: true, getError: () => true, postError: () => true };
    let earlierAccepted = 0;
    let earlierBroken = 0;
    for (const entry of earlier) {
      const check = await reconcile({ id: '', name: '', load: '', injected: '' }, entry.load, entry.author, anyAnswer, Date.now());
      earlierAccepted += check.accepted;
      if (check.lost > 0 || check.duplicated > 0) {
        earlierBroken += 1;
        problem(`${entry.author}: ${check.lost} lost, ${check.duplicated} duplicated after down/up`);
      }
    }
    if (earlier.length > 0 && earlierBroken === 0) note(`all ${earlierAccepted} entries accepted by the earlier scenarios are still persisted, once each`);
  },
});
