/**
 * Real PostgreSQL and Redis servers for tests, started from the host's binaries (Debian's
 * postgresql and redis-server packages) on free loopback ports, in temporary directories that
 * are removed afterwards. Each test file gets its own, so a test may stop or restart them.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** Something a test must clean up; tap's `t.teardown` takes these. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** PostgreSQL refuses to run as root: drop to the `postgres` user that Debian's package made. */
function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) {
    throw new Error('running as root needs a "postgres" user to run PostgreSQL (apt-get install postgresql)');
  }
  return { uid: Number(uid), gid: Number(gid) };
}

function postgresBinDir(): string {
  const fromEnv = process.env['PG_BIN_DIR'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((name) => /^\d+$/.test(name)) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (newest === undefined) {
    throw new Error('PostgreSQL server binaries not found: install postgresql or set PG_BIN_DIR');
  }
  return join(root, newest, 'bin');
}

function tracked(child: ChildProcess): ChildProcess {
  // A crashed test must not leave servers behind.
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.removeListener('exit', kill));
  return child;
}

async function stopChild(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  await exited;
}

export interface PostgresServer {
  readonly port: number;
  /** The DB_* variables of the apps for this server. */
  readonly env: Record<string, string>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startPostgres(t: Teardown): Promise<PostgresServer> {
  const bin = postgresBinDir();
  const owner = runAs();
  const dir = mkdtempSync(join(tmpdir(), 'inflow-pg-'));
  const data = join(dir, 'data');
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const user = 'inflow';
  const database = 'inflow';
  const password = 'inflow-test-password';

  const initdb = spawnSync(join(bin, 'initdb'), ['-D', data, '-U', user, '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions'], {
    ...owner,
    encoding: 'utf8',
  });
  if (initdb.status !== 0) throw new Error(`initdb failed: ${initdb.stderr}`);

  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    const log: string[] = [];
    child = tracked(
      spawn(
        join(bin, 'postgres'),
        ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=200'],
        { ...owner, stdio: ['ignore', 'ignore', 'pipe'] },
      ),
    );
    child.stderr?.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    await waitFor(
      async () => {
        if (child?.exitCode !== null) throw new Error(`postgres exited: ${log.join('')}`);
        const client = new pg.Client({ host: '127.0.0.1', port, user, database: 'postgres' });
        try {
          await client.connect();
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      { timeoutMs: 30_000, what: 'PostgreSQL to accept connections' },
    );
  };
  await start();

  const admin = new pg.Client({ host: '127.0.0.1', port, user, database: 'postgres' });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${database}`);
  await admin.end();

  const pool = new pg.Pool({ host: '127.0.0.1', port, user, database, max: 4 });
  pool.on('error', () => undefined);
  await pool.query(readFileSync(join(REPO_ROOT, 'init.sql'), 'utf8'));

  const server: PostgresServer = {
    port,
    env: {
      DB_HOST: '127.0.0.1',
      DB_PORT: String(port),
      DB_NAME: database,
      DB_USER: user,
      DB_PASS: password,
    },
    query: (text, values) => pool.query(text, values),
    stop: () => stopChild(child, 'SIGINT'),
    start,
  };
  t.teardown(async () => {
    await pool.end().catch(() => undefined);
    await stopChild(child, 'SIGINT');
    rmSync(dir, { recursive: true, force: true });
  });
  return server;
}

export interface RedisServer {
  readonly port: number;
  /** The REDIS_* variables of the apps for this server. */
  readonly env: Record<string, string>;
  /** A client for the test's own checks. */
  readonly client: Redis;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(t: Teardown, options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = tracked(
      spawn(
        'redis-server',
        [
          '--port', String(port),
          '--bind', '127.0.0.1',
          '--dir', dir,
          '--save', '',
          '--appendonly', options.appendOnly === true ? 'yes' : 'no',
          '--appendfsync', 'always',
          '--maxmemory-policy', 'noeviction',
        ],
        { stdio: 'ignore' },
      ),
    );
    await waitFor(
      async () => {
        if (child?.exitCode !== null) throw new Error('redis-server exited');
        const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          await probe.ping();
          return true;
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      { timeoutMs: 10_000, what: 'Redis to answer' },
    );
  };
  await start();
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null });
  client.on('error', () => undefined);

  t.teardown(async () => {
    client.disconnect();
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    port,
    env: { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(port) },
    client,
    stop: () => stopChild(child),
    start,
  };
}
