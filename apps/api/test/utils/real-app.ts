/**
 * The API's real dependencies (createDependencies, as main.ts makes them) against a PostgreSQL
 * and a Redis of the test's own (startPostgres, startRedis), served in this process on a free
 * port. Routes, the service and the error middleware run as in production; only listening and
 * signals are main.ts's and are not here.
 */
import { once } from 'node:events';
import { loadApiConfig } from '@inflow/shared';
import { startPostgres, startRedis, waitFor, type PostgresServer, type RedisServer, type Teardown } from '@inflow/test-support';
import { createApp } from '../../src/app.ts';
import { createDependencies, type ApiDependencies } from '../../src/dependencies.ts';
import { captureLogger, type LogLine } from './capture-logger.ts';
import { listen } from './listen.ts';

/** One PostgreSQL and one Redis, for every app of a test file. */
export interface Servers {
  postgres: PostgresServer;
  redis: RedisServer;
}

export interface RealDependencies extends Servers {
  deps: ApiDependencies;
  /** Every log line the dependencies wrote so far, parsed. */
  logs: LogLine[];
}

export interface RealApp extends RealDependencies {
  url: string;
}

export async function startServers(t: Teardown): Promise<Servers> {
  const [postgres, redis] = await Promise.all([startPostgres(t), startRedis(t)]);
  return { postgres, redis };
}

/**
 * createDependencies over `servers` (started here when not given), connected: as main.ts waits
 * before it listens, since the producer has no offline queue and a request made while it still
 * connects would be a 503. `env` adds to the configuration (EVENTS_MAX_STREAMS…).
 */
export async function startDependencies(t: Teardown, options: { servers?: Servers; env?: Record<string, string> } = {}): Promise<RealDependencies> {
  const { postgres, redis } = options.servers ?? (await startServers(t));
  const config = loadApiConfig({ ...postgres.env, ...redis.env, INSTANCE_ID: 'api-test', ...options.env });
  const logs: LogLine[] = [];
  const deps = createDependencies(config, { logger: captureLogger(logs), version: '9.8.7' });
  // Registered after the servers' own teardowns, so these run first (tap runs them in reverse).
  t.teardown(async () => {
    await deps.events.close();
    await deps.queue.close();
    deps.redis.disconnect();
    await deps.database.close();
  });
  await dependenciesReady(deps);
  return { deps, postgres, redis, logs };
}

/** Resolves once Redis is connected and PostgreSQL answers: after a test stopped and restarted them. */
export async function dependenciesReady(deps: ApiDependencies): Promise<void> {
  if (deps.redis.status !== 'ready') await once(deps.redis, 'ready');
  await waitFor(() => deps.database.ping().then(() => true, () => false), { timeoutMs: 30_000, what: 'PostgreSQL to answer the app' });
}

/** startDependencies, and createApp over them listening on a free port. */
export async function startRealApp(t: Teardown, options: { servers?: Servers; env?: Record<string, string> } = {}): Promise<RealApp> {
  const real = await startDependencies(t, options);
  const { url } = await listen(t, createApp(real.deps));
  return { ...real, url };
}

const errorCode = (error: unknown): unknown => (error as { code?: unknown }).code;

/**
 * Stops the test's PostgreSQL; resolves once the app's pool is refused a connection, i.e. the
 * clients it held were dropped and a check now sees what a client of a down database sees.
 */
export async function stopPostgres(real: RealDependencies): Promise<void> {
  await real.postgres.stop();
  await waitFor(() => real.deps.database.ping().then(() => false, (error: unknown) => errorCode(error) === 'ECONNREFUSED'), {
    timeoutMs: 10_000,
    what: "the app's PostgreSQL connections to be refused",
  });
}

/** Stops the test's Redis; resolves once the app's client knows it and waits to reconnect. */
export async function stopRedis(real: RealDependencies): Promise<void> {
  await real.redis.stop();
  await waitFor(() => real.deps.redis.status === 'reconnecting', { timeoutMs: 10_000, what: "the app's Redis client to be reconnecting" });
}

/** Starts the servers a test stopped again, and waits until the app uses them. */
export async function restartServers(real: RealDependencies, which: { postgres?: boolean; redis?: boolean }): Promise<void> {
  await Promise.all([which.postgres === true ? real.postgres.start() : undefined, which.redis === true ? real.redis.start() : undefined]);
  await dependenciesReady(real.deps);
}

/**
 * Redis holds every client's commands for `ms` (CLIENT PAUSE … ALL): connected but silent, as a
 * blocked or overloaded Redis is. The test's own client is held too.
 */
export async function pauseRedis(real: RealDependencies, ms: number): Promise<void> {
  await real.redis.client.call('CLIENT', 'PAUSE', String(ms), 'ALL');
}
