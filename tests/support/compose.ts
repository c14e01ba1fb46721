/**
 * Drives the real docker-compose.yml for end-to-end tests: `docker compose` (v2) when present,
 * else `docker-compose` (1.29). Images come from the environment (NODE_IMAGE, POSTGRES_IMAGE, …),
 * as for any user; .ci/run exports the offline stand-ins on a host with no registry.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './services.ts';
import { waitFor } from './wait.ts';

// INFLOW_PORT moves the stack (compose publishes nginx there) and the tests with it.
export const BASE_URL = process.env['INFLOW_URL'] ?? `http://127.0.0.1:${process.env['INFLOW_PORT'] ?? '9999'}`;
// Its own project name, so a test run never touches (or deletes the volumes of) a user's stack.
export const PROJECT = process.env['INFLOW_E2E_PROJECT'] ?? 'inflow-e2e';

let composeCommand: string[] | undefined;

function compose(): string[] {
  if (composeCommand) return composeCommand;
  const v2 = spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' });
  composeCommand = v2.status === 0 ? ['docker', 'compose'] : ['docker-compose'];
  return composeCommand;
}

/**
 * The environment for compose and for scripts that call compose: the test project's name, and
 * image names of its own (INFLOW_IMAGE_PREFIX), so that stacks built from different checkouts
 * at once never run each other's images.
 */
export function composeEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...base, COMPOSE_PROJECT_NAME: PROJECT, INFLOW_IMAGE_PREFIX: base['INFLOW_IMAGE_PREFIX'] ?? PROJECT };
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a compose subcommand in the repository; throws with its output when it fails. `env`
 * replaces the environment compose sees (to test how it interpolates variables).
 */
export function runCompose(
  args: readonly string[],
  options: { check?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const [command, ...base] = compose();
  const result = spawnSync(command ?? 'docker-compose', [...base, '-p', PROJECT, ...args], {
    cwd: REPO_ROOT,
    env: composeEnv(options.env ?? process.env),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: options.timeoutMs ?? 15 * 60_000,
  });
  const run = { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  if (options.check !== false && run.status !== 0) {
    // The tail says why; the whole build log would bury it.
    const tail = (text: string) => text.slice(-2_000);
    throw new Error(`${compose().join(' ')} ${args.join(' ')} failed (${run.status}):\n${tail(run.stderr)}\n${tail(run.stdout)}`);
  }
  return run;
}

export function docker(args: readonly string[]): RunResult {
  const result = spawnSync('docker', args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} failed:\n${result.stderr}`);
  return { status: 0, stdout: result.stdout, stderr: result.stderr };
}

export const SERVICES = ['postgres', 'redis', 'web1', 'web2', 'web3', 'worker', 'nginx'] as const;

/** The container id of a service. */
export function containerId(service: string): string {
  const id = runCompose(['ps', '-q', service]).stdout.trim();
  if (id === '') throw new Error(`no container for ${service}`);
  return id;
}

export interface ContainerState {
  status: string;
  health: string | undefined;
  restartCount: number;
}

export function inspectState(service: string): ContainerState {
  const [info] = JSON.parse(docker(['inspect', containerId(service)]).stdout) as [
    { State: { Status: string; Health?: { Status: string } }; RestartCount: number },
  ];
  return { status: info.State.Status, health: info.State.Health?.Status, restartCount: info.RestartCount };
}

/** Waits until every service's container is running and healthy. */
export async function waitHealthy(services: readonly string[] = SERVICES, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    () => services.every((service) => {
      try {
        const state = inspectState(service);
        return state.status === 'running' && state.health === 'healthy';
      } catch {
        return false;
      }
    }),
    { timeoutMs, what: `healthy ${services.join(', ')}`, intervalMs: 1_000 },
  );
}

/** Builds and starts the stack, waiting for health (compose 1.29 has no --wait). */
export async function up(): Promise<void> {
  const first = runCompose(['up', '-d', '--build'], { check: false });
  if (first.status !== 0) {
    // Compose 1.29 gives up at once when a dependency is not healthy yet (a slow first probe on
    // a loaded machine); the containers keep starting. Wait for them, then create the rest.
    await waitHealthy(SERVICES.filter((service) => service !== 'nginx'));
    runCompose(['up', '-d']);
  }
  await waitHealthy();
}

/**
 * Saves every service's logs to test-results/ (CI uploads that folder), then removes the stack;
 * with the `monitoring` profile named, so that a Prometheus started by a test goes too.
 */
export function down(): void {
  const logs = runCompose(['--profile', 'monitoring', 'logs', '--no-color', '--timestamps'], { check: false });
  if (logs.stdout !== '') {
    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'test-results', `compose-${PROJECT}.log`), logs.stdout);
  }
  runCompose(['--profile', 'monitoring', 'down', '-v', '--remove-orphans'], { check: false });
}

/** The JSON lines a service wrote to stdout. */
export function serviceLogLines(service: string): Record<string, unknown>[] {
  const { stdout } = runCompose(['logs', '--no-color', '--no-log-prefix', service], { check: false });
  return stdout
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('{'))
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}
