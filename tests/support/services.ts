/**
 * Real PostgreSQL and Redis servers for tests: one container each per call, from the stack's own
 * images (POSTGRES_IMAGE, REDIS_IMAGE, as docker-compose.yml), removed when the test ends. Each
 * test file gets its own, so a test may stop, restart or pause them; they keep their address
 * (127.0.0.1 and a fixed port) across a restart. How they are started and cleaned up:
 * containers.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { Redis } from 'ioredis';
import type { DatabaseConfig } from '@inflow/shared';
import { startServiceContainer, type ServiceContainer, type Teardown } from './containers.ts';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;

/** The defaults of docker-compose.yml. */
const POSTGRES_IMAGE = process.env['POSTGRES_IMAGE'] ?? 'postgres:15-bookworm';
const REDIS_IMAGE = process.env['REDIS_IMAGE'] ?? 'redis:7-bookworm';

/** What a test does to a server: the faults, on its container (containers.ts says how each is done). */
export type ServerControl = Omit<ServiceContainer, 'id'>;

function control(container: ServiceContainer): ServerControl {
  return {
    port: container.port,
    stop: () => container.stop(),
    start: () => container.start(),
    restart: () => container.restart(),
    pause: () => container.pause(),
    unpause: () => container.unpause(),
  };
}

export interface PostgresServer extends ServerControl {
  /** The DB_* variables of the apps for this server. */
  readonly env: Record<string, string>;
  /** The same server as the apps' own configuration reads it, for createDatabase. */
  databaseConfig(overrides?: Partial<DatabaseConfig>): DatabaseConfig;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const PG_USER = 'inflow';
const PG_DATABASE = 'inflow';

/** True once PostgreSQL accepts a session through the published port (not during init: socket only). */
async function postgresAnswers(port: number): Promise<boolean> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: PG_USER, database: PG_DATABASE, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function startPostgres(t: Teardown): Promise<PostgresServer> {
  const container = await startServiceContainer(t, {
    image: POSTGRES_IMAGE,
    imageVariable: 'POSTGRES_IMAGE',
    containerPort: 5432,
    volumes: ['/var/lib/postgresql/data'],
    env: {
      POSTGRES_USER: PG_USER,
      POSTGRES_DB: PG_DATABASE,
      POSTGRES_PASSWORD: 'inflow-test-password',
      // Any password is accepted, as with the host servers before: the tests' own clients give none.
      POSTGRES_HOST_AUTH_METHOD: 'trust',
      POSTGRES_INITDB_ARGS: '--no-sync',
    },
    // fsync=off: a test server's data need not survive a host crash, and it is much faster.
    command: ['postgres', '-c', 'fsync=off', '-c', 'max_connections=200'],
    // As the stack applies it: by the image's entrypoint, on the first start only.
    files: [{ content: readFileSync(join(REPO_ROOT, 'init.sql'), 'utf8'), target: '/docker-entrypoint-initdb.d/001-init.sql' }],
    ready: postgresAnswers,
    what: 'PostgreSQL to accept connections',
  });

  const pool = new pg.Pool({ host: '127.0.0.1', port: container.port, user: PG_USER, database: PG_DATABASE, max: 4 });
  pool.on('error', () => undefined);
  // Registered after the container's teardown, so it runs first (tap runs them in reverse).
  t.teardown(() => pool.end().catch(() => undefined));
  return {
    ...control(container),
    env: {
      DB_HOST: '127.0.0.1',
      DB_PORT: String(container.port),
      DB_NAME: PG_DATABASE,
      DB_USER: PG_USER,
      DB_PASS: 'inflow-test-password',
    },
    databaseConfig: (overrides = {}) => ({
      host: '127.0.0.1',
      port: container.port,
      name: PG_DATABASE,
      user: PG_USER,
      password: 'inflow-test-password',
      poolMax: 1,
      ...overrides,
    }),
    query: (text, values) => pool.query(text, values),
  };
}

export interface RedisServer extends ServerControl {
  /** The REDIS_* variables of the apps for this server. */
  readonly env: Record<string, string>;
  /** A client for the test's own checks. */
  readonly client: Redis;
}

async function redisAnswers(port: number): Promise<boolean> {
  const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 5_000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    // Refused with LOADING until the data set is loaded (the append-only file, after a restart).
    await probe.ping();
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

export async function startRedis(t: Teardown, options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  const container = await startServiceContainer(t, {
    image: REDIS_IMAGE,
    imageVariable: 'REDIS_IMAGE',
    containerPort: 6379,
    volumes: ['/data'],
    // As docker-compose.yml, minus maxmemory (tests set it with CONFIG SET) and with the
    // append-only file only when asked: without it, a stop loses every key, as a crash would.
    command: [
      'redis-server',
      '--save', '',
      '--appendonly', options.appendOnly === true ? 'yes' : 'no',
      '--appendfsync', 'always',
      '--maxmemory-policy', 'noeviction',
    ],
    ready: redisAnswers,
    what: 'Redis to answer PING',
  });
  const client = new Redis({ host: '127.0.0.1', port: container.port, maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  t.teardown(() => {
    client.disconnect();
  });
  return {
    ...control(container),
    env: { REDIS_HOST: '127.0.0.1', REDIS_PORT: String(container.port) },
    client,
  };
}
