import {
  CheckFailure,
  checkReadiness,
  describeCheckFailure,
  withTimeout,
  type DatabaseHandle,
  type DependencyCheck,
  type Logger,
  type Readiness,
} from '@inflow/shared';
import type { Redis } from 'ioredis';

// A readiness probe must answer before the container health check's own timeout (5 s).
const CHECK_TIMEOUT_MS = 2_000;

/** What the API needs to serve: Redis (the queue) and PostgreSQL (the reads). */
export function dependencyChecks(deps: { redis: Redis; database: DatabaseHandle }): DependencyCheck[] {
  return [
    {
      name: 'redis',
      check: async () => {
        // The producer has no offline queue: while it is not connected, PING fails at once with
        // ioredis's own words. Say what is the matter instead.
        if (deps.redis.status !== 'ready') throw new CheckFailure(`not connected (${deps.redis.status})`);
        await withTimeout(deps.redis.ping(), CHECK_TIMEOUT_MS, 'Redis did not answer');
      },
    },
    { name: 'postgres', check: () => deps.database.ping(CHECK_TIMEOUT_MS) },
  ];
}

/**
 * Runs the checks; every failure is logged with its error, the only place the raw error goes
 * (it may name addresses and hosts). Callers decide how much of the result a response shows.
 */
export async function readiness(checks: readonly DependencyCheck[], logger: Logger): Promise<Readiness> {
  const result = await checkReadiness(checks);
  for (const name of result.failed) {
    const error = result.errors[name];
    // A CheckFailure is our own sentence (its stack says nothing); anything else is logged whole.
    const detail = error instanceof CheckFailure ? {} : { err: error };
    logger.warn({ dependency: name, ms: result.checks[name]?.ms, reason: describeCheckFailure(error), ...detail }, `readiness: ${name} unavailable`);
  }
  return result;
}
