/**
 * Scenario 3: the worker stopped for 30 s under POST load. The API keeps accepting, the backlog
 * shows in GET /api/stats, and the worker drains it once started.
 */
import { composeStart, composeStop, queueCounts } from '@inflow/test-support';
import { sample } from '../harness.ts';
import { defineScenario, seconds } from '../scenario.ts';

export default defineScenario({
  id: '3',
  name: 'Worker stopped for 30 s',
  load: '40 s: 2 GET + 8 POST workers',
  injected: 'compose stop worker at 3 s, start at 33 s',
  traffic: { getWorkers: 2, postWorkers: 8 },
  async fault({ load, atLoadTime, note, problem }) {
    await atLoadTime(3_000);
    await composeStop('worker');
    note(`${seconds(load.now())}: worker stopped`);
    const backlog = sample(queueCounts, 1_000);
    await atLoadTime(33_000);
    await backlog.stop();
    await composeStart('worker');
    const restartedAt = Date.now();
    note(`${seconds(load.now())}: worker started`);
    await atLoadTime(40_000);

    const waiting = backlog.samples.map((counts) => counts?.waiting ?? 0);
    const peak = Math.max(0, ...waiting);
    note(`GET /api/stats while the worker was down: waiting rose to ${peak} (${waiting.filter((n) => n > 0).length} of ${waiting.length} samples > 0)`);
    if (peak === 0) problem('the backlog was not visible in /api/stats');
    return { restartedAt };
  },
  afterDrain({ note }, queue, { restartedAt }) {
    note(`backlog drained ${seconds(Date.now() - restartedAt)} after the worker started; queue then ${JSON.stringify(queue)}`);
  },
});
