import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger, createShutdown, handleShutdownSignals, loadApiConfig, loadConfigOrExit, withTimeout } from '@inflow/shared';
import { createApp } from './app.ts';
import { createDependencies } from './dependencies.ts';
import { startHttpServer } from './http/server.ts';
import { createOpsApp, startOpsServer } from './ops/ops-server.ts';

// How long main waits for Redis and PostgreSQL before it listens anyway.
const STARTUP_WAIT_MS = 15_000;

const config = loadConfigOrExit(() => loadApiConfig(process.env), 'api');
const logger = createLogger({ service: 'api', instanceId: config.instanceId, level: config.logLevel });
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

// The one set of dependencies, for the public app and for the ops server alike.
const deps = createDependencies(config, { logger, version });
const { database, redis, queue, events, drainState } = deps;
// dist/public, from src/main.ts (node --watch) as from dist/main.js.
const app = createApp({ ...deps, publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)) });

// The ops port first: while main waits for Redis and PostgreSQL below, its /readyz already says
// which one it waits for.
const ops = await startOpsServer({ app: createOpsApp(deps), port: config.opsPort, instanceId: config.instanceId }).catch(
  (error: unknown): Promise<never> => {
    // EADDRINUSE and the like: a replica without its health check would never turn healthy.
    logger.fatal({ err: error, opsPort: config.opsPort }, 'cannot listen on OPS_PORT');
    // Exit once the line is out (or after 2 s, should stdout never drain); nothing else runs.
    logger.flush(() => process.exit(1));
    setTimeout(() => process.exit(1), 2_000);
    return new Promise<never>(() => undefined);
  },
);

// Listen only once Redis and PostgreSQL answer: nginx sends a replica traffic the moment it
// accepts connections (a restarted one included), and until Redis is connected every POST would
// be a 503. Bounded, so that a replica started while a dependency is down still comes up and
// reports it through /readyz and its 503s.
const startupDeadline = Date.now() + STARTUP_WAIT_MS;
for (;;) {
  const ready = await Promise.all([withTimeout(redis.ping(), 1_000, 'Redis did not answer'), database.ping(1_000)]).then(
    () => true,
    (error: unknown) => {
      if (Date.now() > startupDeadline) logger.warn({ err: error }, 'dependencies not ready; listening anyway');
      return false;
    },
  );
  if (ready || Date.now() > startupDeadline) break;
  await sleep(200);
}

const http = await startHttpServer({
  app,
  port: config.port,
  instanceId: config.instanceId,
  drainState,
  // Event streams never end by themselves: end them, or the drain waits for ever. The browsers
  // reconnect through nginx to another replica and reconcile.
  onDrain: () => {
    events.endStreams();
  },
});
logger.info({ port: config.port, opsPort: config.opsPort, version }, 'api listening');

const shutdown = createShutdown(
  [
    // Stop taking connections; requests already in flight finish, keep-alive peers are told to
    // close, and nginx sends new requests to the other replicas (http/server.ts).
    { name: 'drain http', run: () => http.drain() },
    { name: 'close queue events', run: () => events.close() },
    { name: 'close queue', run: () => queue.close() },
    { name: 'close redis', run: async () => {
        await redis.quit();
      },
    },
    { name: 'close database', run: () => database.close() },
    // Last: until here the container health check and Prometheus can still see the shutdown.
    { name: 'close ops server', run: () => ops.close() },
  ],
  { logger, timeoutMs: config.shutdownTimeoutMs },
);
handleShutdownSignals(shutdown, logger);
