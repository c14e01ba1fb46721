/**
 * Scenario 2: every web replica stopped with SIGTERM and started again, one at a time. A clean
 * drain means no client notices: not one failed answer, and each replica exits 0.
 */
import { composeStart, composeStop, containerInfo, waitHealthyService } from '@inflow/test-support';
import { waitInRotation } from '../harness.ts';
import { defineScenario, seconds } from '../scenario.ts';

export default defineScenario({
  id: '2',
  name: 'Rolling restart web1, web2, web3',
  load: '6 GET + 6 POST workers, throughout',
  injected: 'compose stop (SIGTERM) then start of each replica, one at a time, each back in rotation before the next',
  async fault({ load, atLoadTime, note, problem }) {
    await atLoadTime(3_000);
    for (const replica of ['web1', 'web2', 'web3']) {
      const stopAt = Date.now();
      await composeStop(replica);
      const stopped = await containerInfo(replica);
      note(`${replica}: stopped in ${seconds(Date.now() - stopAt)}, exit code ${stopped.exitCode}`);
      if (stopped.exitCode !== 0) problem(`${replica} exited ${stopped.exitCode} on SIGTERM (not a clean drain)`);
      await composeStart(replica);
      const healthyMs = await waitHealthyService(replica);
      note(`${replica}: healthy ${seconds(healthyMs)} after start, in rotation ${seconds(await waitInRotation(replica))} later`);
    }
    await atLoadTime(load.now() + 3_000);
  },
});
