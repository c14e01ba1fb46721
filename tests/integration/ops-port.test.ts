/**
 * Issue 15, through the real API process: readiness detail lives on the ops port (OPS_PORT) and
 * nowhere else. With Redis or PostgreSQL down, the public /readyz says "not ready" and nothing
 * more, the ops /readyz names the dependency with a reason in words, and the raw error (with its
 * address) is in the log only. The compose health check (healthcheck.sh on the ops port) follows.
 * The ops port is required: a taken one, or PORT itself, stops the process at start.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { API_MAIN, freePort, http, nodeCommand, REPO_ROOT, startStack, waitFor, type AppProcess, type ErrorBody } from '@inflow/test-support';

t.setTimeout(120_000);

interface OpsReadiness {
  status?: string;
  error?: { code: string; message: string };
  checks: Record<string, { ok: boolean; ms: number; reason?: string }>;
}

const NOT_READY = { error: { code: 'not_ready', message: 'this instance is not ready to serve requests; retry' } };

/** deploy/node/healthcheck.sh, as compose runs it: its exit code. */
const healthcheck = (port: number): number | null =>
  spawnSync('bash', [join(REPO_ROOT, 'deploy/node/healthcheck.sh'), '/readyz', String(port)], { env: { PATH: process.env['PATH'] ?? '' } }).status;

/** Asserts what the public port says while `dependency` is down: not ready, and nothing else. */
async function assertPublicSaysOnlyNotReady(t: Tap, api: AppProcess) {
  const ready = await http<ErrorBody>(`${api.url}/readyz`);
  t.equal(ready.status, 503);
  t.same(ready.body, NOT_READY, 'the one error shape, a generic message');
  t.notMatch(ready.text, /redis|postgres|127\.0\.0\.1|ECONNREFUSED|"ms"/i, 'no dependency, address, latency or raw error');
  t.equal(ready.headers.get('retry-after'), '1');
  t.equal((await http(`${api.url}/healthz`)).status, 200, 'liveness does not depend on it');
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('a dependency down: the ops port says which and why, the public port only "not ready", the log the rest', async (t) => {
  const opsPort = await freePort();
  const stack = await startStack(t, { apis: 1, workers: 0, env: { OPS_PORT: String(opsPort) } });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');
  const ops = `http://127.0.0.1:${String(opsPort)}`;
  t.match(await api.waitForLog((line) => line.msg === 'api listening'), { opsPort, port: api.port });
  t.equal(healthcheck(opsPort), 0, 'healthy');

  // Redis down.
  await stack.redis.stop();
  const redisDown = await waitFor(
    async () => {
      const result = await http<OpsReadiness>(`${ops}/readyz`);
      return result.status === 503 ? result : undefined;
    },
    { timeoutMs: 15_000, what: 'the ops /readyz to say Redis is down' },
  );
  t.match(redisDown.body, {
    error: { code: 'dependency_unavailable', message: 'not ready: redis unavailable' },
    checks: { redis: { ok: false, ms: Number, reason: /^(not connected \(\w+\)|connection refused|no answer within 2000 ms)$/ }, postgres: { ok: true, ms: Number } },
  });
  t.notMatch(redisDown.text, /127\.0\.0\.1|ECONNREFUSED/, 'the ops answer has no address or raw error either');
  await assertPublicSaysOnlyNotReady(t, api);
  t.not(healthcheck(opsPort), 0, 'the compose health check fails');
  t.ok(
    api.logs.some((line) => line.msg === 'readiness: redis unavailable' && line['dependency'] === 'redis'),
    'the failed check is logged',
  );
  // ioredis reports the refused reconnection when it tries again (within about a second).
  const raw = await api.waitForLog((line) => JSON.stringify(line).includes(`ECONNREFUSED 127.0.0.1:${String(stack.redis.port)}`), 15_000);
  t.match(raw, { level: 'warn', module: 'redis' }, 'the raw error, with its address, is in the log');

  await stack.redis.start();
  await waitFor(async () => (await http(`${api.url}/readyz`)).status === 200, { timeoutMs: 20_000, what: 'the API to be ready again' });
  t.same((await http(`${api.url}/readyz`)).body, { status: 'ready' });
  t.equal(healthcheck(opsPort), 0, 'healthy again');

  // PostgreSQL down.
  await stack.pg.stop();
  const pgDown = await http<OpsReadiness>(`${ops}/readyz`);
  t.equal(pgDown.status, 503);
  t.match(pgDown.body, {
    error: { code: 'dependency_unavailable', message: 'not ready: postgres unavailable' },
    checks: { postgres: { ok: false, reason: /^(connection refused|connection reset|PostgreSQL error 57P0\d|check failed \(see the log\))$/ }, redis: { ok: true } },
  });
  t.notMatch(pgDown.text, /127\.0\.0\.1|ECONNREFUSED|Connection terminated/);
  await assertPublicSaysOnlyNotReady(t, api);
  const logged = await api.waitForLog((line) => line.msg === 'readiness: postgres unavailable');
  t.match(logged, { level: 'warn', dependency: 'postgres', err: { message: String } }, 'logged with its error');

  await stack.pg.start();
  await waitFor(async () => (await http(`${ops}/readyz`)).status === 200, { timeoutMs: 20_000, what: 'the ops /readyz to be ready again' });
  t.equal(healthcheck(opsPort), 0);
});

interface Exit {
  code: number | null;
  /** stdout and stderr. */
  stdout: string;
}

/** Starts the API with `env` and waits for it to exit by itself (killed after 20 s). */
async function runUntilExit(env: Record<string, string>): Promise<Exit> {
  const [command, args] = nodeCommand(API_MAIN);
  const child = spawn(command, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  return { code, stdout };
}

t.test('OPS_PORT taken or equal to PORT: the API does not start', async (t) => {
  const stack = await startStack(t, { apis: 0, workers: 0 });
  const blocker = createServer();
  blocker.listen(0);
  await once(blocker, 'listening');
  t.teardown(() => blocker.close());
  const taken = (blocker.address() as { port: number }).port;

  const busy = await runUntilExit({ ...stack.env, INSTANCE_ID: 'api-busy', PORT: String(await freePort()), OPS_PORT: String(taken) });
  t.equal(busy.code, 1, 'exit code 1');
  const fatal = busy.stdout.split('\n').filter((line) => line.includes('cannot listen on OPS_PORT'));
  t.equal(fatal.length, 1, 'one line says why');
  t.match(JSON.parse(fatal[0] ?? '{}') as unknown, { level: 'fatal', opsPort: taken, err: { code: 'EADDRINUSE' } });
  t.notMatch(busy.stdout, /api listening/, 'the public port never listened');

  const port = String(await freePort());
  const same = await runUntilExit({ ...stack.env, INSTANCE_ID: 'api-same', PORT: port, OPS_PORT: port });
  t.equal(same.code, 78, 'a configuration error (EX_CONFIG)');
  t.match(same.stdout, new RegExp(`OPS_PORT must differ from PORT \\(both are ${port}\\)`));
});
