import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import {
  createDatabase,
  createLogger,
  createShutdown,
  handleShutdownSignals,
  loadApiConfig,
  loadConfigOrExit,
  createProducerRedis,
} from '@inflow/shared';
import { createApp } from './app.ts';
import { EntriesRepository } from './entries/entries.repository.ts';
import { EntryQueue } from './entries/entries.queue.ts';
import { EntryEvents } from './events/entry-events.ts';
import { describeChanges, subscribeToQueueEvents } from './events/queue-events.ts';

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
  events,
  // dist/public, from src/main.ts (node --watch) as from dist/main.js.
  publicDir: fileURLToPath(new URL('../dist/public', import.meta.url)),
});

const server = app.listen(config.port);
// nginx keeps idle upstream connections open for 60 s (keepalive_timeout in nginx.conf). Node
// must keep them longer, or nginx reuses a socket Node just closed and answers 502.
// https://github.com/nodejs/node/issues/27363
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
await once(server, 'listening');
logger.info({ port: config.port, version }, 'api listening');

// The responses not yet sent. server.close() only closes the connections idle at that moment: a
// keep-alive connection (nginx's upstream pool) busy with a request would stay open after its
// response, for keepAliveTimeout, and hold the shutdown past its deadline.
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
          server.close((error) => {
            if (error) reject(error);
            else resolve();
          });
          server.closeIdleConnections();
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
