/**
 * Scenario 8: the worker SIGKILLed while it certainly has entries in flight (PostgreSQL paused,
 * so their INSERTs hang). Their locks expire, the stalled check hands them to the restarted
 * worker, and every one is persisted once.
 */
import { containerInfo, docker, idOf, literal, psql, waitFor } from '@inflow/test-support';
import { crashProcess, waitRestartedByDocker } from '../harness.ts';
import { activeJobIds } from '../probes.ts';
import { defineScenario, seconds } from '../scenario.ts';

export default defineScenario({
  id: '8',
  name: 'Worker SIGKILLed with entries in flight',
  load: '25 s: 6 POST workers',
  injected:
    'docker pause postgres at 3 s until at least 10 jobs are active (their INSERTs hang), SIGKILL to the worker process inside its container, docker unpause postgres; Docker restarts the worker',
  traffic: { getWorkers: 0, postWorkers: 6 },
  async fault({ load, atLoadTime, note, problem }) {
    await atLoadTime(3_000);
    // Holds the worker's INSERTs, so that it certainly has entries in flight when it dies.
    await docker(['pause', idOf('postgres')]);
    let inFlight: string[] = [];
    try {
      await waitFor(async () => (await activeJobIds()).length >= 10, { timeoutMs: 30_000, what: '10 active jobs', intervalMs: 100 });
      const before = await containerInfo('worker');
      const pid = await crashProcess('worker');
      const killedAt = Date.now();
      inFlight = await activeJobIds();
      note(`${seconds(load.now())}: SIGKILL to the worker (pid ${pid} in its container) with ${inFlight.length} entries active`);
      await docker(['unpause', idOf('postgres')]);
      await waitRestartedByDocker('worker', before, 60_000);
      const runningAt = Date.now();
      const ids = inFlight.map(literal).join(', ');
      await waitFor(async () => Number((await psql(`SELECT count(*) FROM entries WHERE id IN (${ids})`))[0]?.[0]) === inFlight.length, {
        timeoutMs: 120_000,
        what: 'every entry that was in flight to be persisted',
        intervalMs: 100,
      });
      const persistedAt = Date.now();
      note(
        `worker running again ${seconds(runningAt - killedAt)} after the kill; all ${inFlight.length} entries it had in flight persisted ` +
          `${seconds(persistedAt - runningAt)} after that (target: within 15 s; lock 8 s, stalled check every 2 s)`,
      );
    } finally {
      await docker(['unpause', idOf('postgres')]).catch(() => undefined);
    }
    if (inFlight.length === 0) problem('no entry was in flight when the worker died');
    await atLoadTime(25_000);
  },
});
