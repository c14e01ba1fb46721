/**
 * A missing or malformed variable stops the real programs at start: exit code 78 (EX_CONFIG),
 * one line naming the variable, no stack trace. Nothing else needs to run for that.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import { API_MAIN, mapLimit, nodeCommand, WORKER_MAIN } from '@inflow/test-support';

const VALID: Readonly<Record<string, string>> = {
  REDIS_HOST: '127.0.0.1',
  REDIS_PORT: '6379',
  DB_HOST: '127.0.0.1',
  DB_PORT: '5432',
  DB_NAME: 'inflow',
  DB_USER: 'inflow',
  DB_PASS: 'secret',
};

interface Run {
  code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  ms: number;
}

function run(main: string, env: Record<string, string | undefined>): Promise<Run> {
  const startedAt = Date.now();
  const clean = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
  const [command, args] = nodeCommand(main);
  const child = spawn(command, args, { env: { PATH: process.env['PATH'] ?? '', ...clean }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A program that does not stop by itself is killed: its exit code is then not 78.
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: Date.now() - startedAt });
    });
  });
}

type Case = readonly [program: 'api' | 'worker', variable: string, value: string | undefined, problem: RegExp];
// Every variable's rules are unit-tested in shared/test/config.test.ts; here, a few per program
// show that the real start-up turns any ConfigError into the one line and exit code 78.
const CASES: readonly Case[] = [
  ['api', 'DB_PASS', undefined, /is required/],
  ['worker', 'DB_PASS', undefined, /is required/],
  ['api', 'REDIS_PORT', 'abc', /must be an integer from 1 to 65535 \(got "abc"\)/],
  ['worker', 'REDIS_PORT', '70000', /must be an integer from 1 to 65535 \(got "70000"\)/],
  ['api', 'TRUST_PROXY_HOPS', 'yes', /must be an integer from 0 to 10/],
  ['worker', 'HEALTH_PORT', '0', /must be an integer/],
  ['worker', 'LOG_LEVEL', 'loud', /must be one of/],
  ['api', 'INSTANCE_ID', 'api 1', /must be 1 to 63 letters/],
];

t.setTimeout(90_000);

t.test('a bad variable: exit 78 and one line naming it', async (t) => {
  const results = await mapLimit(CASES, 2, async ([program, variable, value]) =>
    run(program === 'api' ? API_MAIN : WORKER_MAIN, { ...VALID, [variable]: value }),
  );
  for (const [i, [program, variable, value, problem]] of CASES.entries()) {
    const result = results[i];
    if (result === undefined) continue;
    const what = `${program} with ${variable}=${value === undefined ? '(unset)' : JSON.stringify(value)}`;
    t.equal(result.code, 78, `${what}: exit code 78`);
    t.equal(result.stdout, '', `${what}: nothing on stdout`);
    const lines = result.stderr.split('\n').filter((line) => line !== '');
    t.equal(lines.length, 1, `${what}: exactly one line (${result.stderr})`);
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    t.match(line, { level: 'fatal', service: program, variable }, `${what}: names the variable`);
    t.match(line['msg'], new RegExp(`^invalid configuration: ${variable} ${problem.source}`), `${what}: says what is wrong`);
    t.notMatch(result.stderr, /\n\s+at |Error:|node:internal/, `${what}: no stack trace`);
    if (variable === 'DB_PASS' && value === undefined) t.notMatch(result.stderr, /secret/, `${what}: no secret echoed`);
  }
});

t.test('an empty environment names the first required variable', async (t) => {
  for (const main of [API_MAIN, WORKER_MAIN]) {
    const result = await run(main, {});
    t.equal(result.code, 78);
    t.equal(result.stderr.trimEnd().split('\n').length, 1);
    t.match(JSON.parse(result.stderr) as unknown, { variable: 'REDIS_HOST' });
  }
});
