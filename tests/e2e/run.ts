/**
 * The end-to-end run: builds and starts the compose stack once, runs the e2e files against it one
 * after the other (tap --jobs=1: several files restart or reconfigure services, and the fuzz
 * file counts the rows it caused), then saves every service's log to test-results/ and removes
 * the stack, whatever the outcome. A file that needs more (Prometheus, an nginx with other
 * variables) starts it on top of this stack and leaves the stack as it found it.
 *
 *   node e2e/run.ts [tap arguments, e.g. e2e/fuzz.test.ts]     (npm run test:e2e from the root)
 *
 * INFLOW_PORT (9999) and INFLOW_E2E_PROJECT (inflow-e2e) place the stack; the files reach it
 * through INFLOW_URL, which this sets. INFLOW_URL set already: the files run against that stack
 * as it is (INFLOW_E2E_PROJECT must then name its compose project), nothing is started or removed.
 */
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { BASE_URL, down, PROJECT, up } from '@inflow/test-support';

const OWN_STACK = process.env['INFLOW_URL'] === undefined;

const given = process.argv.slice(2);
const files = given.some((arg) => !arg.startsWith('-'))
  ? given
  : [...given, ...readdirSync(import.meta.dirname).filter((name) => name.endsWith('.test.ts')).sort().map((name) => `e2e/${name}`)];

function tap(args: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn('tap', ['--jobs=1', '--timeout=1800', ...args], {
      stdio: 'inherit',
      env: { ...process.env, INFLOW_URL: BASE_URL, INFLOW_E2E_PROJECT: PROJECT },
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      resolve(code ?? (signal === null ? 1 : 128));
    });
  });
}

if (OWN_STACK) down();
try {
  if (OWN_STACK) await up();
  process.exitCode = await tap(files);
} finally {
  if (OWN_STACK) down();
}
