/**
 * Scenario 5: PostgreSQL stopped for 8 s under load. POSTs do not need it (the queue holds the
 * entries); reads answer 503 while it is down; the public /readyz says "not ready" without
 * naming internals, the ops port says which dependency failed.
 */
import { composeStart, composeStop } from '@inflow/test-support';
import { sample } from '../harness.ts';
import { opsReadyz, readyz, waitPublicReady } from '../probes.ts';
import { defineScenario, seconds } from '../scenario.ts';
import { isStatus } from '../verify.ts';

export default defineScenario({
  id: '5',
  name: 'PostgreSQL restarted under load',
  load: '25 s: 4 GET + 6 POST workers',
  injected: 'compose stop postgres at 4 s; compose start 8 s after the stop completed',
  traffic: { getWorkers: 4, postWorkers: 6 },
  async fault({ load, atLoadTime, note, problem }) {
    const readiness = sample(readyz, 500);
    await atLoadTime(4_000);
    // From the moment the stop is asked for: PostgreSQL ends its connections at once, and a
    // busy Docker takes seconds to report the stop done.
    const downFrom = load.now();
    await composeStop('postgres');
    const stoppedAt = load.now();
    const web1During = await opsReadyz('web1');
    await atLoadTime(stoppedAt + 8_000);
    await composeStart('postgres');
    const downUntil = load.now();
    await waitPublicReady();
    const readyAt = load.now();
    note(`${seconds(downFrom)}: compose stop postgres (done at ${seconds(stoppedAt)}); ${seconds(downUntil)}: started; /readyz 200 again ${seconds(readyAt - downUntil)} later`);
    await atLoadTime(Math.max(25_000, readyAt + 5_000));
    await readiness.stop();

    // Publicly only "not ready"; which dependency failed is for the ops port (read during the outage).
    const degraded = readiness.samples.filter((probe) => probe.status === 503);
    note(`public /readyz samples: ${readiness.samples.length}, 503: ${degraded.length}${degraded[0] === undefined ? '' : ` (${degraded[0].text.slice(0, 120)})`}`);
    if (degraded.length === 0) problem('/readyz never showed the outage');
    const leaking = readiness.samples.filter((probe) => /postgres|redis|ECONN|\d+\.\d+\.\d+\.\d+/i.test(probe.text));
    if (leaking.length > 0) problem(`${leaking.length} public /readyz answers named internals, e.g. ${leaking[0]?.text.slice(0, 120) ?? ''}`);
    note(`web1's ops /readyz during the outage: ${/"postgres":\{[^}]*\}/.exec(web1During)?.[0] ?? web1During.slice(-160)}`);
    if (!/"postgres":\{"ok":false/.test(web1During)) problem("web1's ops /readyz did not name postgres as unavailable");
    if (readiness.samples.at(-1)?.status !== 200) problem('/readyz was not 200 at the end');
    return { downFrom, readyAt };
  },
  expect: ({ downFrom, readyAt }) => ({
    // Reads need PostgreSQL: 503 database_unavailable while it is down.
    getError: (attempt) => isStatus(503)(attempt) && attempt.sentAt >= downFrom - 1_000 && attempt.sentAt <= readyAt + 1_000,
  }),
});
