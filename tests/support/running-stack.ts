/**
 * The running compose stack, driven asynchronously (the chaos suite and the benchmark generate
 * load in the same process, and a synchronous `docker-compose stop` would freeze it): compose and
 * docker commands, container state, the queue (GET /api/stats through nginx) and the rows (psql
 * in the postgres container).
 */
import { execFile, spawnSync } from 'node:child_process';
import { BASE_URL, composeEnv, containerId, PROJECT, SERVICES } from './compose.ts';
import { REPO_ROOT } from './services.ts';
import { waitFor } from './wait.ts';

/**
 * Runs a command without blocking the event loop: the load runs in this process, and a
 * synchronous `docker-compose stop` would freeze it for the seconds the stop takes.
 */
export function exec(
  command: string,
  args: readonly string[],
  options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const settings = { cwd: REPO_ROOT, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' as const, env: options.env ?? process.env };
    execFile(command, args, settings, (error, stdout, stderr) => {
      const code = (error as { code?: unknown } | null)?.code;
      resolve({ status: error === null ? 0 : typeof code === 'number' ? code : -1, stdout, stderr });
    });
  });
}

async function checked(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const result = await exec(command, args, env === undefined ? {} : { env });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr}`);
  return result.stdout;
}

const composeCommand: string[] =
  spawnSync('docker', ['compose', 'version'], { encoding: 'utf8' }).status === 0 ? ['docker', 'compose'] : ['docker-compose'];

/** A compose subcommand on the test project, asynchronously; throws when it fails. */
export function compose(args: readonly string[]): Promise<string> {
  const [command = 'docker-compose', ...base] = composeCommand;
  return checked(command, [...base, '-p', PROJECT, ...args], composeEnv());
}

export const docker = (args: readonly string[]): Promise<string> => checked('docker', args);

export const DB_USER = process.env['DB_USER'] ?? 'inflow';
export const DB_NAME = process.env['DB_NAME'] ?? 'inflow';

/** Runs SQL in the postgres container (docker exec: quicker than compose's); rows as arrays of fields. */
export async function psql(sql: string): Promise<string[][]> {
  const stdout = await docker(['exec', idOf('postgres'), 'psql', '-U', DB_USER, '-d', DB_NAME, '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-c', sql]);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}

/** A SQL string literal. */
export const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** GET /api/stats through nginx; undefined while it does not answer 200. */
export async function queueCounts(): Promise<QueueCounts | undefined> {
  try {
    const response = await fetch(`${BASE_URL}/api/stats`, { signal: AbortSignal.timeout(5_000) });
    if (response.status !== 200) return undefined;
    return ((await response.json()) as { queue: QueueCounts }).queue;
  } catch {
    return undefined;
  }
}

/** The rows of one author: id and message. */
export async function rowsOf(author: string): Promise<{ id: string; message: string }[]> {
  return (await psql(`SELECT id, message FROM entries WHERE author = ${literal(author)}`)).map(([id = '', message = '']) => ({ id, message }));
}

export async function countRows(author?: string): Promise<number> {
  const where = author === undefined ? '' : ` WHERE author = ${literal(author)}`;
  return Number((await psql(`SELECT count(*) FROM entries${where}`))[0]?.[0]);
}

/** Ids that occur in more than one row (the primary key makes this impossible; checked anyway). */
export async function duplicateIds(): Promise<number> {
  return Number((await psql('SELECT count(*) FROM (SELECT id FROM entries GROUP BY id HAVING count(*) > 1) AS d'))[0]?.[0]);
}

/** Waits until the queue is empty (nothing waiting, active or delayed) and `author` has `rows` rows. */
export async function waitDrained(author: string, rows: number, timeoutMs = 180_000): Promise<QueueCounts> {
  return waitFor(
    async () => {
      const counts = await queueCounts();
      if (counts === undefined || counts.waiting + counts.active + counts.delayed > 0) return undefined;
      return (await countRows(author)) >= rows ? counts : undefined;
    },
    { timeoutMs, what: `the queue to drain and ${rows} rows of ${author}`, intervalMs: 1_000 },
  );
}

export interface ContainerInfo {
  status: string;
  health: string | undefined;
  restartCount: number;
  exitCode: number;
  pid: number;
  startedAt: string;
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

/** Forgets the container ids (after `down`, compose makes new containers). */
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


export async function composeStop(service: string): Promise<void> {
  await compose(['stop', '-t', '10', service]);
}

export async function composeStart(service: string): Promise<void> {
  await compose(['start', service]);
}

/** Waits until the container runs and its health check passes; returns the milliseconds waited. */
export async function waitHealthyService(service: string, timeoutMs = 120_000): Promise<number> {
  const startedAt = Date.now();
  await waitFor(
    async () => {
      const state = await containerInfo(service).catch(() => undefined);
      return state?.status === 'running' && state.health === 'healthy';
    },
    { timeoutMs, what: `${service} to be healthy`, intervalMs: 500 },
  );
  return Date.now() - startedAt;
}
