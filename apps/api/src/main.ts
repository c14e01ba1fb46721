import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { once } from 'node:events';
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
import { EntryQueue } from './entries/entries.queue.ts';

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

const app = createApp({
  instance: { instanceId: config.instanceId, hostname: hostname(), version, startedAt: new Date().toISOString() },
  trustProxyHops: config.trustProxyHops,
  logger,
  queue,
  redis,
  database,
  liveness,
});

const server = app.listen(config.port);
// nginx keeps idle upstream connections open for 60 s (keepalive_timeout in nginx.conf). Node
// must keep them longer, or nginx reuses a socket Node just closed and answers 502.
// https://github.com/nodejs/node/issues/27363
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;
await once(server, 'listening');
logger.info({ port: config.port, version }, 'api listening');

const shutdown = createShutdown(
  [
    {
      // Stop taking connections; requests already in flight finish, keep-alive peers are told
      // to close (see app.ts), and nginx sends new requests to the other replicas.
      name: 'drain http',
      run: () =>
        new Promise<void>((resolve, reject) => {
          liveness.draining = true;
          server.close((error) => (error ? reject(error) : resolve()));
          server.closeIdleConnections();
        }),
    },
    { name: 'close queue', run: () => queue.close() },
    { name: 'close redis', run: async () => void (await redis.quit()) },
    { name: 'close database', run: () => database.close() },
  ],
  { logger, timeoutMs: config.shutdownTimeoutMs },
);
handleShutdownSignals(shutdown, logger);
