/**
 * What a PostgreSQL error means for the caller, decided in one place for the API and the worker.
 * The question is whom the error is about: the entry, or the database.
 *
 * - `unavailable`: the database cannot be reached or cannot work right now (down, starting,
 *   shutting down, out of connections, a lost connection, a timeout). Nothing is wrong with the
 *   request, and the fault usually ends by itself.
 * - `misconfigured`: the database answers but refuses to serve the program as it is configured
 *   (a password it does not accept, a read-only standby after a failover, a missing database,
 *   table or privilege). Nothing is wrong with the request either; a person has to act, and the
 *   program must say so (readiness, metric, alert) rather than wait silently.
 * - `refused`: the database looked at the row and said no (a constraint, a value it cannot
 *   store). Trying again cannot help: the worker fails the entry for good.
 * - `unknown`: anything else (most likely a bug). The worker spends one of its bounded attempts
 *   on it, so one poison entry cannot stop the queue.
 *
 * `unavailable` and `misconfigured` are the database's errors: the API answers 503
 * database_unavailable and the worker holds every entry back without spending an attempt
 * (apps/worker/src/entries/database-gate.ts) until the database takes writes again.
 *
 * SQLSTATE codes and classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 * Why each class is where it is:
 * - 08 connection exception, 57P01/57P02/57P03/57P05 (admin or crash shutdown, starting up or
 *   in recovery, idle session timeout), 57014 query canceled (our own statement_timeout: the
 *   database did not keep up): unavailable, the server is going or coming back.
 * - 53 insufficient resources (disk full, out of memory, too many connections) and 58 system
 *   error (I/O error, a missing file): unavailable. They concern the server, never one row,
 *   and the worker's alert fires while it waits (deploy/prometheus/alerts.yml).
 * - 40001 serialization failure, 40P01 deadlock, 55P03 lock not available: unavailable; waiting
 *   and trying again is the documented remedy.
 * - 28 invalid authorisation (28P01 a password refused, 28000 a role that may not log in or has
 *   no pg_hba.conf entry): misconfigured, "authentication".
 * - 25006 read-only SQL transaction (a hot standby, or default_transaction_read_only): the
 *   database that a failover left behind; misconfigured, "read_only".
 * - 3D000 invalid catalog name (no such database), 57P04 database dropped, 55000 object not in
 *   prerequisite state (what a database with ALLOW_CONNECTIONS false answers on connect):
 *   misconfigured, "database".
 * - 42P01 undefined table, 42703 undefined column, 3F000 invalid schema name: the schema is not
 *   the one the program was built for (a migration not applied); misconfigured, "schema".
 *   Our statements are fixed, so these cannot depend on an entry's values.
 * - 42501 insufficient privilege: misconfigured, "privilege".
 * - 22 data exception and 23 integrity constraint violation: refused (the row's fault).
 * - Everything else stays unknown on purpose, e.g. 54000 program limit exceeded (an index row
 *   too large is about the row; wraparound protection is about the database: the code cannot
 *   tell them apart), 55006 object in use (DDL only), 42601 syntax error (our bug), 42804
 *   datatype mismatch, 0A feature not supported.
 */
import { TimeoutError } from './timeout.ts';

export type DatabaseErrorKind = 'unavailable' | 'misconfigured' | 'refused' | 'unknown';

/** What a misconfigured database refuses, for the readiness reason, the metric and the alert. */
export const DATABASE_REFUSAL_CAUSES = ['authentication', 'read_only', 'database', 'schema', 'privilege'] as const;
export type DatabaseRefusalCause = (typeof DATABASE_REFUSAL_CAUSES)[number];

export interface DatabaseRefusal {
  cause: DatabaseRefusalCause;
  /** The five-character SQLSTATE. */
  sqlstate: string;
  /**
   * What the database refuses, in our words (never PostgreSQL's message, which names roles,
   * databases and tables): fit for a readiness answer.
   */
  description: string;
}

// By exact SQLSTATE first, then by class (its first two characters).
const REFUSAL_BY_CODE: Readonly<Record<string, readonly [DatabaseRefusalCause, string]>> = {
  '28P01': ['authentication', 'password authentication failed'],
  '28000': ['authentication', 'the role may not log in (invalid authorization)'],
  '25006': ['read_only', 'the database is read-only (a standby, or read-only by default)'],
  '3D000': ['database', 'the database does not exist'],
  '57P04': ['database', 'the database was dropped'],
  '55000': ['database', 'the database is not in a state to take this (e.g. it takes no connections)'],
  '42P01': ['schema', 'the entries table does not exist'],
  '42703': ['schema', 'a column of the entries table does not exist'],
  '3F000': ['schema', 'the schema does not exist'],
  '42501': ['privilege', 'permission denied on the entries table'],
};
const REFUSAL_BY_CLASS: Readonly<Record<string, readonly [DatabaseRefusalCause, string]>> = {
  '28': ['authentication', 'the login is refused (invalid authorization)'],
};

// 08 connection exception, 53 insufficient resources, 57P01-03/05 operator intervention,
// 58 system error, 40001/40P01 serialization failure and deadlock, 55P03 lock not available,
// 57014 query canceled (see the header for why).
const UNAVAILABLE_SQLSTATE = /^(08|53|58|57P0[1235]$|57014$|40001$|40P01$|55P03$)/;
// 22 data exception (a value the column cannot hold), 23 integrity constraint violation.
const REFUSED_SQLSTATE = /^(22|23)/;
const SQLSTATE = /^[0-9A-Z]{5}$/;
// Errors of node-postgres and Node itself that carry no SQLSTATE: a socket error code (ECONNREFUSED,
// ECONNRESET, ETIMEDOUT, ENOTFOUND, EPIPE, EAI_AGAIN…) or one of pg's own messages.
const SOCKET_CODE = /^E[A-Z_]+$/;
const UNAVAILABLE_MESSAGE =
  /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Query read timeout|canceling statement due to statement timeout|Client has encountered a connection error/i;

function codeOf(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** What a misconfigured database refuses, or undefined when `error` is not such a refusal. */
export function describeDatabaseRefusal(error: unknown): DatabaseRefusal | undefined {
  const code = codeOf(error);
  if (code === undefined || !SQLSTATE.test(code)) return undefined;
  const known = REFUSAL_BY_CODE[code] ?? REFUSAL_BY_CLASS[code.slice(0, 2)];
  return known === undefined ? undefined : { cause: known[0], sqlstate: code, description: known[1] };
}

export function classifyDatabaseError(error: unknown): DatabaseErrorKind {
  if (!(error instanceof Error)) return 'unknown';
  // Our own deadline around a database call (withTimeout): PostgreSQL did not answer in time.
  if (error instanceof TimeoutError) return 'unavailable';
  const code = codeOf(error);
  if (code !== undefined) {
    if (UNAVAILABLE_SQLSTATE.test(code) || SOCKET_CODE.test(code)) return 'unavailable';
    if (describeDatabaseRefusal(error) !== undefined) return 'misconfigured';
    if (REFUSED_SQLSTATE.test(code)) return 'refused';
  }
  return UNAVAILABLE_MESSAGE.test(error.message) ? 'unavailable' : 'unknown';
}

/**
 * True when the error is the database's, not the request's (`unavailable` or `misconfigured`):
 * the database cannot serve right now, whatever is asked of it.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const kind = classifyDatabaseError(error);
  return kind === 'unavailable' || kind === 'misconfigured';
}
