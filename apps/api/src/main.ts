import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { once } from 'node:events';
import { Server as NetServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  createDatabase,
  createLogger,
  createShutdown,
  handleShutdownSignals,
  loadApiConfig,
  loadConfigOrExit,
  createMetricsRegistry,
  createProducerRedis,
  withTimeout,
} from '@inflow/shared';
import { createApp } from './app.ts';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntryQueue } from './entries/entries.queue.ts';
import { EntryEvents } from './events/entry-events.ts';
import { describeChanges, subscribeToQueueEvents } from './events/queue-events.ts';
import { clientErrorHandler } from './http/client-error.ts';

// How long main waits for Redis and PostgreSQL before it listens anyway.
const STARTUP_WAIT_MS = 15_000;
// How long a draining API keeps its idle keep-alive connections (see the "drain http" step).
const DRAIN_IDLE_MS = 2_000;

const config = loadConfigOrExit(() => loadApiConfig(process.env), 'api');
const logger = createLogger({ service: 'api', instanceId: config.instanceId, level: config.logLevel });
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

const database = createDatabase(config.db, logger.child({ module: 'db' }));
const redisLogger = logger.child({ module: 'redis' });
const redis = createProducerRedis(config.redis);
// ioredis reconnects by itself; the errors are logged, and /readyz and the 503s report them.
redis.on('error', (error) => {
  redisLogger.warn({ err: error }, 'Redis connection error');
});
const queue = new EntryQueue(redis, (error) => {
  redisLogger.warn({ err: error }, 'queue error');
});
const liveness = { draining: false };
const eventsLogger = logger.child({ module: 'events' });
// One QueueEvents per process, made when the first page connects (see entry-events.ts).
const events = new EntryEvents({
  instanceId: config.instanceId,
  logger: eventsLogger,
  subscribe: (onChange) => subscribeToQueueEvents({ redis: config.redis, producer: redis, logger: eventsLogger, onChange }),
  describe: describeChanges({ repository: new EntriesRepository(database.db), producer: redis, logger: eventsLogger }),
});

const app = createApp({
  instance: { instanceId: config.instanceId, hostname: hostname(), version, startedAt: new Date().toISOString() },
  trustProxyHops: config.trustProxyHops,
  logger,
  queue,
  redis,
  database,
  liveness,
  metrics: createMetricsRegistry({ service: 'api', instanceId: config.instanceId }),
  events,
  // dist/public, from src/main.ts (node --watch) as from dist/main.js.
  publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)),
});

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

const server = app.listen(config.port);
server.on('clientError', clientErrorHandler(config.instanceId));
// nginx keeps idle upstream connections open for 60 s (keepalive_timeout in nginx.conf). Node
// must keep them longer, or nginx reuses a socket Node just closed and answers 502.
// https://github.com/nodejs/node/issues/27363
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
await once(server, 'listening');
logger.info({ port: config.port, version }, 'api listening');

// The responses not yet sent. closeIdleConnections() only closes the connections idle at that
// moment: a keep-alive connection (nginx's upstream pool) busy with a request would stay open
// after its response, for keepAliveTimeout, and hold the shutdown past its deadline.
const unsent = new Set<ServerResponse>();
server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
  if (liveness.draining) res.shouldKeepAlive = false;
  unsent.add(res);
  // 'close', not 'finish': an event stream the client left never finishes.
  res.once('close', () => unsent.delete(res));
});

const shutdown = createShutdown(
  [
    {
      // Stop taking connections; requests already in flight finish, keep-alive peers are told
      // to close (see app.ts), and nginx sends new requests to the other replicas.
      name: 'drain http',
      run: () =>
        new Promise<void>((resolve, reject) => {
          liveness.draining = true;
          // Requests in flight answer with "Connection: close", so their connections end with them.
          for (const res of unsent) if (!res.headersSent) res.shouldKeepAlive = false;
          // Stop listening: a new connection is refused, and nginx tries the next replica (safe
          // for a POST too: nothing was sent). net's close, not http's: http's also closes the
          // idle keep-alive connections at once, and one that nginx picks from its pool at that
          // very moment takes a request with it; nginx does not replay a POST it sent, so the
          // client would get a 502. Idle connections stay open for DRAIN_IDLE_MS instead: nginx
          // either uses one (its answer says "Connection: close", so it ends race-free) or, once
          // the refused connections have taken this replica out of rotation, leaves it alone.
          const idleTimer = setTimeout(() => {
            server.closeIdleConnections();
          }, DRAIN_IDLE_MS);
          NetServer.prototype.close.call(server, (error?: Error) => {
            clearTimeout(idleTimer);
            if (error) reject(error);
            else resolve();
          });
          // Event streams never end by themselves: end them, or server.close() waits for ever.
          // The browsers reconnect through nginx to another replica and reconcile.
          events.endStreams();
        }),
    },
    { name: 'close queue events', run: () => events.close() },
    { name: 'close queue', run: () => queue.close() },
    { name: 'close redis', run: async () => {
        await redis.quit();
      },
    },
    { name: 'close database', run: () => database.close() },
  ],
  { logger, timeoutMs: config.shutdownTimeoutMs },
);
handleShutdownSignals(shutdown, logger);
