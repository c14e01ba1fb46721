/**
 * Chaos scenario 10: nginx's rate limit from both sides (nginx.conf, deploy/nginx/).
 *
 * 1. A legitimate load at the limit the stack runs with (the default unless RATE_LIMIT_* are
 *    set): 8 paced GET workers reading /api/entries?limit=5 and 8 paced POST workers, 10 s, all
 *    from one address (every host client arrives through docker-proxy from the bridge gateway).
 *    It must get no 429, and every 202 must be persisted, once.
 * 2. nginx recreated with a low limit (RATE_LIMIT_PER_SECOND=20, RATE_LIMIT_BURST=20), then three
 *    floods of GET /api/instance from this one address, each until 50 requests were refused (at
 *    most 1,000): back to back on one keep-alive connection; with a new connection for each
 *    request (Connection: close); and the same with a forged X-Forwarded-For on each. Each must be
 *    cut off: 429s in the error shape with Retry-After: 1, and no more 200s than
 *    burst + 1 + rate × elapsed (+ 2 for nginx's millisecond accounting): the bucket belongs to the
 *    address, so neither a new connection nor a made-up client address starts a fresh one (each
 *    flood starts once the previous one's bucket had time to refill).
 * 3. nginx recreated as it was (this process's environment), and serving again.
 *
 * The floods' answers are added to the row's requests, 2xx and errors; "failed GETs" counts the
 * legitimate load only.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  BASE_URL,
  docker,
  forgetContainers,
  idOf,
  resolveContainers,
  runCompose,
  waitFor,
  waitHealthyService,
} from '@inflow/test-support';
import { flood, type Flood, type FloodMode } from '../flood.ts';
import { defineScenario, seconds, type Findings } from '../scenario.ts';

const LOW = { rate: 20, burst: 20 };
/** nginx accounts in milliseconds: a request or two more than the exact bound may pass. */
const SLACK = 2;
const MODES: readonly FloodMode[] = ['one keep-alive connection', 'a new connection per request', 'a new connection and a forged X-Forwarded-For per request'];

/** The two files nginx rendered from deploy/nginx/templates/ when its container started. */
async function renderedConf(): Promise<string> {
  return docker(['exec', idOf('nginx'), 'sh', '-c', 'cat /etc/nginx/conf.d/inflow-edge-http.conf /etc/nginx/conf.d/inflow-edge-server.conf']);
}

function limitsOf(conf: string): { rate: number; burst: number } {
  return {
    rate: Number(/rate=(\d+)r\/s/.exec(conf)?.[1] ?? 'NaN'),
    burst: Number(/burst=(\d+)/.exec(conf)?.[1] ?? 'NaN'),
  };
}

/**
 * Recreates the nginx container with `env` (docker-compose.yml passes RATE_LIMIT_* to it), waits
 * until it is healthy and proxies again, and returns how long that took.
 */
async function recreateNginx(env: NodeJS.ProcessEnv): Promise<number> {
  const startedAt = Date.now();
  runCompose(['up', '-d', '--no-deps', 'nginx'], { env });
  // A new container: the cached ids are stale.
  forgetContainers();
  resolveContainers();
  await waitHealthyService('nginx');
  await waitFor(async () => (await fetch(`${BASE_URL}/api/instance`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined))?.status === 200, {
    timeoutMs: 60_000,
    what: 'the recreated nginx to proxy /api/instance',
    intervalMs: 250,
  });
  return Date.now() - startedAt;
}

/** Whether one flood was cut off as the low limit promises (the bound of this file's header). */
function judgeFlood(result: Flood, { note, problem }: Findings): void {
  const { mode } = result;
  const elapsedS = result.elapsedMs / 1000;
  const allowed = Math.floor(LOW.burst + 1 + LOW.rate * elapsedS) + SLACK;
  note(
    `flood on ${mode}: ${result.requests} requests in ${elapsedS.toFixed(2)} s over ${result.connections} connection(s): ` +
      `${result.served} served (bound: burst + 1 + rate × time + ${SLACK} = ${allowed}), ${result.refused} refused`,
  );
  if (result.refused === 0) problem(`flood on ${mode}: never refused`);
  if (result.served > allowed) problem(`flood on ${mode}: ${result.served} served, more than the ${allowed} the limit allows in ${elapsedS.toFixed(2)} s`);
  if (result.other > 0) problem(`flood on ${mode}: ${result.other} answers neither 200 nor 429`);
  if (result.malformed > 0) problem(`flood on ${mode}: ${result.malformed} 429s without the error shape, Retry-After: 1 or X-Instance-Id: nginx`);
  if (mode === 'one keep-alive connection' && result.connections !== 1) problem(`flood on ${mode}: used ${result.connections} connections`);
  if (mode !== 'one keep-alive connection' && result.connections !== result.requests) {
    problem(`flood on ${mode}: ${result.connections} connections for ${result.requests} requests`);
  }
}

export default defineScenario({
  id: '10',
  name: 'Rate limit: legitimate load, then floods from one address',
  load: '10 s: 8 GET (/api/entries?limit=5) + 8 POST workers, paced, at the running limit; then 3 floods of GET /api/instance, each until 50 refusals',
  injected: `nginx recreated with RATE_LIMIT_PER_SECOND=${LOW.rate} RATE_LIMIT_BURST=${LOW.burst}; floods on one keep-alive connection, with a new connection per request, and with a forged X-Forwarded-For; nginx recreated as it was`,
  traffic: { getWorkers: 8, postWorkers: 8, getPaths: ['/api/entries?limit=5'] },
  // 1. The legitimate load, at the limit the stack runs with.
  async fault({ atLoadTime, note }) {
    const original = await renderedConf();
    const running = limitsOf(original);
    note(`nginx runs with ${running.rate} requests/s, burst ${running.burst}, per address`);
    await atLoadTime(10_000);
    return { original };
  },
  async afterLoad(context, { original }) {
    const { load, note, problem } = context;
    const legitimate = load.attempts.length;
    const limited = load.attempts.filter((attempt) => attempt.outcome === 429).length;
    note(`legitimate load: ${legitimate} requests in ${seconds(load.now())} (${Math.round(legitimate / (load.now() / 1000))}/s from one address), ${limited} answered 429`);

    // 2. A low limit, and floods.
    const floods: Flood[] = [];
    try {
      const tookMs = await recreateNginx({ ...process.env, RATE_LIMIT_PER_SECOND: String(LOW.rate), RATE_LIMIT_BURST: String(LOW.burst) });
      const low = limitsOf(await renderedConf());
      note(`nginx recreated with ${low.rate} requests/s, burst ${low.burst} (serving again after ${seconds(tookMs)})`);
      if (low.rate !== LOW.rate || low.burst !== LOW.burst) problem(`nginx rendered rate ${low.rate}, burst ${low.burst}, not ${LOW.rate} and ${LOW.burst}`);
      for (const mode of MODES) {
        // Time for the bucket to refill (burst / rate), so that each flood shows the whole burst
        // pass and then the cut. The bound checked holds whatever the bucket held.
        if (floods.length > 0) await sleep((LOW.burst / LOW.rate) * 1000 + 200);
        const result = await flood(mode);
        floods.push(result);
        judgeFlood(result, context);
      }
    } finally {
      // 3. nginx as it was.
      const tookMs = await recreateNginx(process.env);
      const restored = await renderedConf();
      note(`nginx recreated as it was (${limitsOf(restored).rate} requests/s, burst ${limitsOf(restored).burst}), serving again after ${seconds(tookMs)}`);
      if (restored !== original) problem('nginx did not come back with the configuration it had');
    }

    // The floods' answers count into the row; "failed GETs" stays the legitimate load's.
    const refused = floods.reduce((sum, one) => sum + one.refused, 0);
    const other = floods.reduce((sum, one) => sum + one.other, 0);
    context.countRequests({
      requests: floods.reduce((sum, one) => sum + one.requests, 0),
      ok2xx: floods.reduce((sum, one) => sum + one.served, 0),
      errors: { ...(refused > 0 ? { 'GET 429': refused } : {}), ...(other > 0 ? { 'GET other (flood)': other } : {}) },
    });
  },
});
