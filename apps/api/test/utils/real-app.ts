/**
 * The API's real dependencies (createDependencies, as main.ts makes them) against a PostgreSQL
 * and a Redis of the test's own (startPostgres, startRedis), served in this process on a free
 * port. Routes, the service and the error middleware run as in production; only listening and
 * signals are main.ts's and are not here.
 */
import { once } from 'node:events';
import { loadApiConfig } from '@inflow/shared';
import { startPostgres, startRedis, type PostgresServer, type RedisServer, type Teardown } from '@inflow/test-support';
import { createApp } from '../../src/app.ts';
import { createDependencies, type ApiDependencies } from '../../src/dependencies.ts';
import { captureLogger, listen, type LogLine } from '../fixtures/app.ts';

export interface RealApp {
  url: string;
  deps: ApiDependencies;
  postgres: PostgresServer;
  redis: RedisServer;
  /** Every log line the app wrote so far, parsed. */
  logs: LogLine[];
}

export async function startRealApp(t: Teardown): Promise<RealApp> {
  const [postgres, redis] = await Promise.all([startPostgres(t), startRedis(t)]);
  const config = loadApiConfig({ ...postgres.env, ...redis.env, INSTANCE_ID: 'api-test' });
  const logs: LogLine[] = [];
  const deps = createDependencies(config, { logger: captureLogger(logs), version: '9.8.7' });
  // Registered after the servers' own teardowns, so these run first (tap runs them in reverse).
  t.teardown(async () => {
    await deps.events.close();
    await deps.queue.close();
    deps.redis.disconnect();
    await deps.database.close();
  });
  // As main.ts does before it listens: the producer has no offline queue, so a request made
  // while it still connects would be a 503.
  if (deps.redis.status !== 'ready') await once(deps.redis, 'ready');
  await deps.database.ping();
  const { url } = await listen(t, createApp(deps));
  return { url, deps, postgres, redis, logs };
}
