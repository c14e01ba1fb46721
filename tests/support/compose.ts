/**
 * Drives the real docker-compose.yml for the end-to-end, chaos and benchmark suites: `docker
 * compose` (v2) when present, else `docker-compose` (1.29). Images come from the environment
 * (NODE_IMAGE, POSTGRES_IMAGE, …), as for any user; .ci/run exports the offline stand-ins on a
 * host with no registry.
 *
 * Commands run asynchronously: the chaos suite and the benchmark generate load in this process,
 * and a synchronous `docker-compose stop` would freeze it for the seconds the stop takes.
 * `runCompose`, `containerId` and `down` block on purpose: they look a container up before a
 * load starts, or remove the stack when nothing else runs any more.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './services.ts';
import { waitFor } from './wait.ts';

// INFLOW_PORT moves the stack (compose publishes nginx there) and the tests with it.
export const BASE_URL = process.env['INFLOW_URL'] ?? `http://127.0.0.1:${process.env['INFLOW_PORT'] ?? '9999'}`;
// Its own project name, so a test run never touches (or deletes the volumes of) a user's stack.
export const PROJECT = process.env['INFLOW_E2E_PROJECT'] ?? 'inflow-e2e';

export const SERVICES = ['postgres', 'redis', 'web1', 'web2', 'web3', 'worker', 'nginx'] as const;

const COMPOSE: readonly string[] =
  spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0 ? ['docker', 'compose'] : ['docker-compose'];

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

// The tail says why a command failed; a whole build log would bury it.
const failure = (command: readonly string[], result: RunResult): Error =>
  new Error(`${command.join(' ')} failed (${result.status}):\n${result.stderr.slice(-2_000)}\n${result.stdout.slice(-2_000)}`);

/** Runs a command in the repository without blocking the event loop; never throws. */
export function exec(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const settings = { cwd: REPO_ROOT, timeout: options.timeoutMs ?? 120_000, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' as const, env: options.env ?? process.env };
    execFile(command, args, settings, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: error === null ? 0 : typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

async function checked(command: readonly string[], env?: NodeJS.ProcessEnv, timeoutMs?: number): Promise<string> {
  const [program = '', ...args] = command;
  const result = await exec(program, args, { ...(env === undefined ? {} : { env }), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
  if (result.status !== 0) throw failure(command, result);
  return result.stdout;
}

/** A compose subcommand on the test project; its stdout, or it throws with the output. */
export function compose(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  return checked([...COMPOSE, '-p', PROJECT, ...args], composeEnv(options.env ?? process.env), options.timeoutMs);
}

/** A docker command; its stdout, or it throws with the output. */
export const docker = (args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> =>
  checked(['docker', ...args], options.env, options.timeoutMs);

/**
 * A compose subcommand on the test project, blocking; throws with its output when it fails
 * unless `check: false`. `env` replaces the environment compose sees (to test how it
 * interpolates variables).
 */
export function runCompose(
  args: readonly string[],
  options: { check?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): RunResult {
  const [program = 'docker-compose', ...base] = COMPOSE;
  const result = spawnSync(program, [...base, '-p', PROJECT, ...args], {
    cwd: REPO_ROOT,
    env: composeEnv(options.env ?? process.env),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    timeout: options.timeoutMs ?? 15 * 60_000,
  });
  const run = { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
  if (options.check !== false && run.status !== 0) throw failure([...COMPOSE, ...args], run);
  return run;
}

// --- Containers ------------------------------------------------------------------------------

/** The container id of a service, asked of compose now. */
export function containerId(service: string): string {
  const id = runCompose(['ps', '-q', service]).stdout.trim();
  if (id === '') throw new Error(`no container for ${service}`);
  return id;
}

const ids = new Map<string, string>();

/** The service's container id (cached: compose keeps the container across stop and start). */
export function idOf(service: string): string {
  let id = ids.get(service);
  if (id === undefined) {
    id = containerId(service);
    ids.set(service, id);
  }
  return id;
}

/** Forgets the container ids (after `down` or a recreate, compose makes new containers). */
export function forgetContainers(): void {
  ids.clear();
}

/**
 * Looks up every service's container id now, before a load starts: `compose ps` takes seconds on
 * a busy machine, and a fault must come on time.
 */
export function resolveContainers(): void {
  for (const service of SERVICES) idOf(service);
}

export interface ContainerInfo {
  status: string;
  health: string | undefined;
  restartCount: number;
  exitCode: number;
  pid: number;
  startedAt: string;
}

export async function containerInfo(service: string): Promise<ContainerInfo> {
  const [info] = JSON.parse(await docker(['inspect', idOf(service)])) as [
    { State: { Status: string; Health?: { Status: string }; ExitCode: number; Pid: number; StartedAt: string }; RestartCount: number },
  ];
  return {
    status: info.State.Status,
    health: info.State.Health?.Status,
    restartCount: info.RestartCount,
    exitCode: info.State.ExitCode,
    pid: info.State.Pid,
    startedAt: info.State.StartedAt,
  };
}

/** Waits until every service's container is running and healthy. */
export async function waitHealthy(services: readonly string[] = SERVICES, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    async () => {
      const states = await Promise.all(services.map((service) => containerInfo(service).catch(() => undefined)));
      return states.every((state) => state?.status === 'running' && state.health === 'healthy');
    },
    { timeoutMs, what: `healthy ${services.join(', ')}`, intervalMs: 500 },
  );
}

/** Waits until the service's container runs and its health check passes; returns the milliseconds waited. */
export async function waitHealthyService(service: string, timeoutMs = 120_000): Promise<number> {
  const startedAt = Date.now();
  await waitHealthy([service], timeoutMs);
  return Date.now() - startedAt;
}

export async function composeStop(service: string): Promise<void> {
  await compose(['stop', '-t', '10', service]);
}

export async function composeStart(service: string): Promise<void> {
  await compose(['start', service]);
}

// --- The whole stack -------------------------------------------------------------------------

/** Builds and starts the stack, waiting for health (compose 1.29 has no --wait). */
export async function up(): Promise<void> {
  forgetContainers();
  const built = await compose(['up', '-d', '--build'], { timeoutMs: 15 * 60_000 }).then(() => true, () => false);
  if (!built) {
    // Compose 1.29 gives up at once when a dependency is not healthy yet (a slow first probe on
    // a loaded machine); the containers keep starting. Wait for them, then create the rest.
    forgetContainers();
    await waitHealthy(SERVICES.filter((service) => service !== 'nginx'));
    await compose(['up', '-d']);
  }
  forgetContainers();
  await waitHealthy();
}

/** Saves every service's logs to test-results/compose-<project>.log (CI uploads that folder). */
export function saveLogs(): void {
  const logs = runCompose(['--profile', 'monitoring', 'logs', '--no-color', '--timestamps'], { check: false });
  if (logs.stdout === '') return;
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'test-results', `compose-${PROJECT}.log`), logs.stdout);
}

/**
 * Saves the logs, then removes the stack; with the `monitoring` profile named, so that a
 * Prometheus started by a test goes too.
 */
export function down(): void {
  saveLogs();
  runCompose(['--profile', 'monitoring', 'down', '-v', '--remove-orphans'], { check: false });
  forgetContainers();
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

/** Runs a command inside a service's container (docker exec); never throws. */
export function execIn(service: string, command: readonly string[], timeoutMs = 30_000): Promise<RunResult> {
  return exec('docker', ['exec', containerId(service), ...command], { timeoutMs });
}
