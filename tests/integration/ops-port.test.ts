/**
 * Issue 15, through the real API process: main.ts serves the detailed readiness on the ops port
 * (OPS_PORT), which the compose health check (healthcheck.sh) probes; a taken ops port, or PORT
 * itself, stops the process at start. What each port answers while a dependency is down is
 * tested in-process: apps/api/test/public-answers.test.ts and ops-server.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { API_MAIN, freePort, http, nodeCommand, REPO_ROOT, startStack } from '@inflow/test-support';

t.setTimeout(120_000);

/** deploy/node/healthcheck.sh, as compose runs it: its exit code. */
const healthcheck = (port: number): number | null =>
  spawnSync('bash', [join(REPO_ROOT, 'deploy/node/healthcheck.sh'), '/readyz', String(port)], { env: { PATH: process.env['PATH'] ?? '' } }).status;

t.test('main.ts serves the ops port given as OPS_PORT beside PORT; the compose health check probes it', async (t) => {
  const opsPort = await freePort();
  const stack = await startStack(t, { apis: 1, workers: 0, env: { OPS_PORT: String(opsPort) } });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');
  t.match(await api.waitForLog((line) => line.msg === 'api listening'), { opsPort, port: api.port });
  const ops = await http(`http://127.0.0.1:${String(opsPort)}/readyz`);
  t.match(ops.body, { status: 'ready', instanceId: 'api-1', checks: { redis: { ok: true }, postgres: { ok: true } } }, 'the detailed readiness on OPS_PORT');
  t.same((await http(`${api.url}/readyz`)).body, { status: 'ready' }, 'the public one on PORT');
  t.equal(healthcheck(opsPort), 0, 'healthy');
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
