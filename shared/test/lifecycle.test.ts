import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import t from 'tap';
import { createShutdown, loadConfigOrExit } from '../src/lifecycle.ts';
import { createLogger } from '../src/logger.ts';
import { TimeoutError, withTimeout } from '../src/timeout.ts';

const logger = createLogger({ service: 'test', instanceId: 'test-1', level: 'silent', sync: true });

t.test('shutdown runs every step once, in order, then exits 0', async (t) => {
  const ran: string[] = [];
  const exits: number[] = [];
  const shutdown = createShutdown(
    [
      { name: 'a', run: () => void ran.push('a') },
      { name: 'b', run: async () => { await sleep(5); ran.push('b'); } },
      { name: 'c', run: () => void ran.push('c') },
    ],
    { logger, timeoutMs: 1_000, exit: (code) => exits.push(code) },
  );
  t.equal(shutdown.started, false);
  const first = shutdown('SIGTERM');
  t.equal(shutdown.started, true);
  const second = shutdown('SIGINT');
  t.equal(first, second, 'a second call returns the same promise');
  await first;
  t.same(ran, ['a', 'b', 'c']);
  t.same(exits, [0]);
});

t.test('a failing step does not stop the others; the exit code says so', async (t) => {
  const ran: string[] = [];
  const exits: number[] = [];
  const shutdown = createShutdown(
    [
      { name: 'a', run: () => { throw new Error('boom'); } },
      { name: 'b', run: () => Promise.reject(new Error('bang')) },
      { name: 'c', run: () => void ran.push('c') },
    ],
    { logger, timeoutMs: 1_000, exit: (code) => exits.push(code) },
  );
  await shutdown('test');
  t.same(ran, ['c']);
  t.same(exits, [1]);
});

t.test('a hanging step hits the deadline: exit 1', async (t) => {
  const exits: number[] = [];
  const exited = new Promise<void>((resolve) => {
    const shutdown = createShutdown([{ name: 'hang', run: () => new Promise<void>(() => undefined) }], {
      logger,
      timeoutMs: 50,
      exit: (code) => {
        exits.push(code);
        resolve();
      },
    });
    void shutdown('test');
  });
  // The deadline's timer is unref'd (it must not keep a process alive by itself): hold the
  // event loop open until it fires.
  const hold = setInterval(() => undefined, 1_000);
  await exited;
  clearInterval(hold);
  t.same(exits, [1]);
});

t.test('withTimeout', async (t) => {
  t.equal(await withTimeout(Promise.resolve(5), 100, 'slow'), 5);
  await t.rejects(withTimeout(sleep(200), 20, 'the thing did not answer'), new TimeoutError('the thing did not answer', 20));
  await t.rejects(withTimeout(sleep(200), 20, 'slow'), { name: 'TimeoutError', ms: 20, message: 'slow within 20 ms' });
  await t.rejects(withTimeout(Promise.reject(new Error('own')), 100, 'slow'), { message: 'own' });
});

t.test('loadConfigOrExit: one JSON line naming the variable, exit 78', async (t) => {
  // In a child process, since it exits.
  const script = `
    import { loadConfigOrExit } from ${JSON.stringify(new URL('../src/lifecycle.ts', import.meta.url).href)};
    import { loadApiConfig } from ${JSON.stringify(new URL('../src/config.ts', import.meta.url).href)};
    loadConfigOrExit(() => loadApiConfig({ REDIS_HOST: 'r', DB_HOST: 'p', DB_NAME: 'n', DB_USER: 'u' }), 'api');
  `;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  t.equal(child.status, 78);
  t.equal(child.stdout, '');
  const lines = child.stderr.trimEnd().split('\n');
  t.equal(lines.length, 1, child.stderr);
  t.match(JSON.parse(lines[0] ?? '{}'), { level: 'fatal', service: 'api', variable: 'DB_PASS', msg: /^invalid configuration: DB_PASS is required/ });
  t.notMatch(child.stderr, /\n\s+at /, 'no stack trace');

});

t.test('loadConfigOrExit: anything other than a ConfigError is thrown on, not turned into an exit', async (t) => {
  const bug = new TypeError('a bug in the loader');
  t.throws(() => loadConfigOrExit(() => { throw bug; }, 'api'), bug);
  t.equal(loadConfigOrExit(() => 'loaded', 'api'), 'loaded', 'and a good configuration is returned');
});
