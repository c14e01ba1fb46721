import { Kysely, PostgresDialect, type Generated, type Insertable, type Selectable } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from './config.ts';
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
 * A Kysely instance over a pg pool. The pool's error handler matters: without it an idle client
 * whose server went away (a PostgreSQL restart) crashes the process.
 * https://github.com/brianc/node-postgres/issues/1611
 */
export function createDatabase(config: DatabaseConfig, logger: Logger): DatabaseHandle {
  const pool = new pg.Pool({
    host: config.host,
    port: config.port,
    database: config.name,
    user: config.user,
    password: config.password,
    max: config.poolMax,
    // The pg default of 0 waits forever for a connection.
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    statement_timeout: 15_000,
    // The client's own deadline for an answer: statement_timeout needs a server that runs, and a
    // server that stopped answering (paused, or behind a dead link) must fail the query too.
    query_timeout: 20_000,
    application_name: 'inflow',
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

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });

  return {
    db,
    async ping(timeoutMs = 2_000) {
      await withTimeout(pool.query('select 1'), timeoutMs, 'PostgreSQL did not answer');
    },
    async close() {
      // Kysely's destroy ends the pool.
      await db.destroy();
    },
  };
}
