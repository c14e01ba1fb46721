import { Kysely, PostgresDialect, type Generated, type Insertable, type Selectable } from 'kysely';
import pg from 'pg';
import { API_POOL_MIN, type DatabaseConfig } from './config.ts';
import type { Logger } from './logger.ts';
import { withTimeout } from './timeout.ts';

/** The entries table as init.sql creates it. */
export interface EntryTable {
  id: string;
  author: string;
  message: string;
  accepted_by: string;
  persisted_by: string;
  created_at: Date;
  persisted_at: Generated<Date>;
}

export type EntryRow = Selectable<EntryTable>;
export type NewEntryRow = Insertable<EntryTable>;

export interface Database {
  entries: EntryTable;
}

export interface DatabaseHandle {
  db: Kysely<Database>;
  /** Runs `select 1`; rejects when PostgreSQL does not answer in time. */
  ping(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A pg pool with the settings every pool of ours needs. The error handlers matter: without them
 * an idle client whose server went away (a PostgreSQL restart) crashes the process.
 * https://github.com/brianc/node-postgres/issues/1611
 */
function openPool(config: DatabaseConfig, logger: Logger, max: number, session: SessionOptions): pg.Pool {
  const pool = new pg.Pool({
    host: config.host,
    port: config.port,
    database: config.name,
    user: config.user,
    password: config.password,
    max,
    // The pg default of 0 waits forever for a connection.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 15_000,
    // The client's own deadline for an answer: statement_timeout needs a server that runs, and a
    // server that stopped answering (paused, or behind a dead link) must fail the query too.
    query_timeout: 20_000,
    // Which process a session belongs to, in pg_stat_activity and the server's logs.
    application_name: session.applicationName ?? 'inflow',
    // A server that vanished without closing (its machine lost) is found by TCP keep-alive on
    // an idle connection, instead of when a query times out on it
    // (deploy/swarm/README.md#dead-peers-why-the-apps-recover-by-themselves).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  });
  pool.on('error', (error) => {
    logger.warn({ err: error }, 'idle PostgreSQL connection lost');
  });
  // The pool listens for errors on idle clients only. A client checked out (Kysely holds one for
  // each query) whose server goes away (a PostgreSQL restart: "terminating connection due to
  // administrator command" fails the query, then the socket closes) emits 'error' with no
  // listener, which crashed the process. So every client gets a listener for its whole life;
  // the pool drops the broken client when it is released.
  pool.on('connect', (client) => {
    client.on('error', (error) => {
      logger.warn({ err: error }, 'PostgreSQL connection lost');
    });
  });
  return pool;
}

const kysely = (pool: pg.Pool) => new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });

/**
 * `select 1` on the pool, with a deadline. Checks that arrive together (the public and the ops
 * /readyz, the health check, the ready gauge) share one query, so a burst of them never queues
 * for connections.
 */
function pinger(pool: pg.Pool): (timeoutMs?: number) => Promise<void> {
  let answering: Promise<unknown> | undefined;
  return async (timeoutMs = 2_000) => {
    answering ??= pool.query('select 1').finally(() => {
      answering = undefined;
    });
    await withTimeout(answering, timeoutMs, 'PostgreSQL did not answer');
  };
}

export interface SessionOptions {
  /** PostgreSQL's application_name for every session: which program and instance it is. Default `inflow`. */
  applicationName?: string;
}

/** A Kysely instance over one pg pool of DB_POOL_MAX connections, for every query and the ping alike (the worker's). */
export function createDatabase(config: DatabaseConfig, logger: Logger, session: SessionOptions = {}): DatabaseHandle {
  const pool = openPool(config, logger, config.poolMax, session);
  const db = kysely(pool);
  return {
    db,
    ping: pinger(pool),
    async close() {
      // Kysely's destroy ends the pool.
      await db.destroy();
    },
  };
}

/**
 * How the API shares its DB_POOL_MAX connections (docs/api.md#capacity-of-a-replica):
 * one for readiness, about half the rest for list reads, and the rest for small reads (an entry
 * by id, the idempotency check, the event stream's rows). So a page read that waits for a
 * connection never holds up a small read or the readiness check.
 */
export interface PoolShares {
  readonly readiness: number;
  readonly list: number;
  readonly small: number;
}

export function apiPoolShares(poolMax: number): PoolShares {
  if (!Number.isSafeInteger(poolMax) || poolMax < API_POOL_MIN) throw new RangeError(`an API pool needs at least ${API_POOL_MIN} connections (got ${poolMax})`);
  // Small reads get the larger half: they are many and short, and each waits for its own answer.
  const list = Math.floor((poolMax - 1) / 2);
  return Object.freeze({ readiness: 1, list, small: poolMax - 1 - list });
}

export interface ApiDatabaseHandle extends DatabaseHandle {
  /** Small reads: by primary key, a few rows at most. */
  db: Kysely<Database>;
  /** List reads (pages of up to 200 rows) only: their own share, so they wait for each other, not for others. */
  listDb: Kysely<Database>;
  /** `select 1` on readiness's own connection: a busy share never fails readiness. */
  ping(timeoutMs?: number): Promise<void>;
  readonly shares: PoolShares;
}

/** The API's database: one pool per share of DB_POOL_MAX (apiPoolShares), each with openPool's settings. */
export function createApiDatabase(config: DatabaseConfig, logger: Logger, session: SessionOptions = {}): ApiDatabaseHandle {
  const shares = apiPoolShares(config.poolMax);
  const small = kysely(openPool(config, logger, shares.small, session));
  const list = kysely(openPool(config, logger, shares.list, session));
  const readiness = openPool(config, logger, shares.readiness, session);
  return {
    db: small,
    listDb: list,
    ping: pinger(readiness),
    shares,
    async close() {
      // Every pool is ended even when one fails to; Kysely's destroy ends its pool.
      const results = await Promise.allSettled([small.destroy(), list.destroy(), readiness.end()]);
      const failed = results.find((result) => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },
  };
}
