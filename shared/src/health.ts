import { describeDatabaseRefusal } from './database-errors.ts';
import { TimeoutError } from './timeout.ts';

/** A dependency a process needs to do its work, and how to tell that it answers. */
export interface DependencyCheck {
  name: string;
  check: () => Promise<void>;
}

/** One check's outcome; `ms` is how long it took to succeed or to fail. */
export type CheckResult = { ok: true; ms: number } | { ok: false; ms: number; error: string };

export interface Readiness {
  ok: boolean;
  /** By dependency name. */
  checks: Record<string, CheckResult>;
  /** Names of the dependencies that failed, for a message a person can act on. */
  failed: string[];
  /**
   * The errors themselves, by dependency name, for the log. They may hold addresses and host
   * names (`connect ECONNREFUSED 172.28.0.3:5432`): never put them in a response body.
   */
  errors: Record<string, unknown>;
}

/** Runs every check at once; a failure keeps its reason. */
export async function checkReadiness(checks: readonly DependencyCheck[]): Promise<Readiness> {
  const errors: Record<string, unknown> = {};
  const results = await Promise.all(
    checks.map(async ({ name, check }): Promise<[string, CheckResult]> => {
      const startedAt = performance.now();
      const ms = () => Math.round(performance.now() - startedAt);
      try {
        await check();
        return [name, { ok: true, ms: ms() }];
      } catch (error) {
        errors[name] = error;
        return [name, { ok: false, ms: ms(), error: error instanceof Error ? error.message : String(error) }];
      }
    }),
  );
  const failed = results.filter(([, result]) => !result.ok).map(([name]) => name);
  return { ok: failed.length === 0, checks: Object.fromEntries(results), failed, errors };
}

// Socket error codes (libuv's, as Node reports them) in words.
const SOCKET_ERRORS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host name not found',
  EAI_AGAIN: 'host name lookup failed',
};

/**
 * A check's failure whose message is written for readers, not copied from the dependency: it may
 * be shown as the reason as it is.
 */
export class CheckFailure extends Error {
  constructor(reason: string, options?: { cause?: unknown }) {
    super(reason, options);
    this.name = 'CheckFailure';
  }
}

/**
 * Why a check failed, in words that hold no address, host name or raw text of the dependency:
 * fit for a readiness answer. The error itself belongs in the log. Reasons:
 * - a CheckFailure: its message, written for this;
 * - a socket error: its meaning (`connection refused`), from the code, not from the message;
 * - a TimeoutError (withTimeout gave up): `no answer within 2000 ms`;
 * - an SQLSTATE of a database that refuses to serve (database-errors.ts, describeDatabaseRefusal):
 *   `PostgreSQL refuses: password authentication failed (28P01)`;
 * - any other SQLSTATE (PostgreSQL's five-character code): `PostgreSQL error 57P03`;
 * - any other code: `error ERR_SOMETHING`; anything else: `check failed (see the log)`.
 */
export function describeCheckFailure(error: unknown): string {
  if (error instanceof CheckFailure) return error.message;
  if (!(error instanceof Error)) return 'check failed (see the log)';
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (/^E[A-Z_]+$/.test(code)) return SOCKET_ERRORS[code] ?? `error ${code}`;
    const refusal = describeDatabaseRefusal(error);
    if (refusal !== undefined) return `PostgreSQL refuses: ${refusal.description} (${refusal.sqlstate})`;
    if (/^[0-9A-Z]{5}$/.test(code)) return `PostgreSQL error ${code}`;
    if (/^[A-Z][A-Z0-9_]{1,40}$/.test(code)) return `error ${code}`;
  }
  if (error instanceof TimeoutError) return `no answer within ${error.ms} ms`;
  return 'check failed (see the log)';
}
