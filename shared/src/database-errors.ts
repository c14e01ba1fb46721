/**
 * What a PostgreSQL error means for the caller, decided in one place for the API and the worker.
 *
 * - `unavailable`: the database cannot be reached or cannot work right now (down, starting,
 *   shutting down, out of connections, a lost connection, a timeout). Nothing is wrong with the
 *   request: the API answers 503, the worker waits for the database and tries again.
 * - `refused`: the database looked at the row and said no (a constraint, a value it cannot
 *   store). Trying again cannot help: the worker fails the entry for good.
 * - `unknown`: anything else (most likely a bug). The worker spends one attempt on it.
 *
 * SQLSTATE classes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
import { TimeoutError } from './timeout.ts';

export type DatabaseErrorKind = 'unavailable' | 'refused' | 'unknown';

// 08 connection exception, 53 insufficient resources (too many connections, disk full),
// 57P operator intervention (admin shutdown, crash shutdown, cannot connect now: starting up),
// 40001/40P01 serialization failure and deadlock (retrying is the documented remedy),
// 58 system error (I/O error), 55P03 lock not available.
const UNAVAILABLE_SQLSTATE = /^(08|53|57P|58|40001$|40P01$|55P03$)/;
// 22 data exception (a value the column cannot hold), 23 integrity constraint violation.
const REFUSED_SQLSTATE = /^(22|23)/;
// Errors of node-postgres and Node itself that carry no SQLSTATE: a socket error code (ECONNREFUSED,
// ECONNRESET, ETIMEDOUT, ENOTFOUND, EPIPE, EAI_AGAIN…) or one of pg's own messages.
const SOCKET_CODE = /^E[A-Z_]+$/;
const UNAVAILABLE_MESSAGE =
  /timeout exceeded when trying to connect|Connection terminated|connect ECONNREFUSED|Query read timeout|canceling statement due to statement timeout|Client has encountered a connection error/i;

export function classifyDatabaseError(error: unknown): DatabaseErrorKind {
  if (!(error instanceof Error)) return 'unknown';
  // Our own deadline around a database call (withTimeout): PostgreSQL did not answer in time.
  if (error instanceof TimeoutError) return 'unavailable';
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    // 57014 is query_canceled: our own statement_timeout, i.e. the database did not keep up.
    if (code === '57014' || UNAVAILABLE_SQLSTATE.test(code) || SOCKET_CODE.test(code)) return 'unavailable';
    if (REFUSED_SQLSTATE.test(code)) return 'refused';
  }
  return UNAVAILABLE_MESSAGE.test(error.message) ? 'unavailable' : 'unknown';
}

/** True when the error says PostgreSQL is out of reach for now (see classifyDatabaseError). */
export function isDatabaseUnavailable(error: unknown): boolean {
  return classifyDatabaseError(error) === 'unavailable';
}
