/**
 * Scenario 1: a web replica killed twice over, as Docker's API does it (a manual stop, which the
 * restart policy ignores) and as a crash does (its process SIGKILLed, which the policy restarts).
 * nginx must route around both; a POST cut mid-request may have enqueued without its 202.
 */
import { containerInfo, waitHealthyService } from '@inflow/test-support';
import { crashProcess, dockerKill, dockerStart, waitInRotation, waitRestartedByDocker } from '../harness.ts';
import { defineScenario, seconds } from '../scenario.ts';
import { isStatus } from '../verify.ts';

export default defineScenario({
  id: '1',
  name: 'SIGKILL a web replica',
  load: '20 s: 6 GET + 6 POST workers',
  injected: "docker kill -s KILL web2 at 3 s, docker start at 7 s; web3's node process SIGKILLed inside its container at 11 s",
  async fault({ load, atLoadTime, note, problem }) {
    await atLoadTime(3_000);
    const web2Before = await containerInfo('web2');
    await dockerKill('web2');
    note(`${seconds(load.now())}: docker kill -s KILL web2`);
    await atLoadTime(7_000);
    const web2After = await containerInfo('web2');
    if (web2After.status === 'running' || web2After.restartCount > web2Before.restartCount) {
      note('web2 was restarted by Docker after docker kill');
    } else {
      note(
        `web2 after docker kill: ${web2After.status}, exit ${web2After.exitCode}, restart count ${web2After.restartCount} (unchanged): ` +
          'Docker counts a kill through its API as a manual stop and does not apply the restart policy; started again with docker start',
      );
    }
    await dockerStart('web2');
    // Not awaited here: the next fault comes on schedule, whether web2 is healthy yet or not.
    const web2Healthy = waitHealthyService('web2').then(
      (ms) => `web2 healthy ${seconds(ms)} after docker start (its health check: /readyz every 5 s)`,
      (error: unknown) => {
        problem(`web2 did not become healthy again: ${String(error)}`);
        return 'web2 did not become healthy again';
      },
    );

    await atLoadTime(11_000);
    const web3Before = await containerInfo('web3');
    const pid = await crashProcess('web3');
    note(`${seconds(load.now())}: SIGKILL to web3's node process (pid ${pid} in its container)`);
    try {
      const restartedMs = await waitRestartedByDocker('web3', web3Before, 30_000);
      note(`web3 restarted by its restart policy (unless-stopped) ${seconds(restartedMs)} after the kill`);
    } catch {
      problem('web3 was not restarted by Docker after its process was killed');
    }
    await atLoadTime(20_000);
    return { web2Healthy };
  },
  async afterLoad({ note }, { web2Healthy }) {
    note(await web2Healthy);
    for (const replica of ['web2', 'web3']) {
      note(`${replica} back in nginx's rotation (${seconds(await waitInRotation(replica))} after the load)`);
    }
  },
  // A POST that a killed replica had taken: nginx answers 502 (or the replica, closing, 503),
  // and the job may be in Redis already. The client's retry with its key finds it.
  expect: { postError: isStatus(502, 503), inFlightAllowed: true },
});
