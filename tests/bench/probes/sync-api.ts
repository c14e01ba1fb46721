/**
 * The synchronous peer, a bench probe and not a second product: the API's own app (createApp from
 * @inflow/api's build, in the app image, with a replica's environment) in which POST
 * /api/entries writes the row into PostgreSQL itself, one INSERT per request committed before the
 * answer, where the real API adds a job to the queue. Everything else is the API's: validation,
 * the Redis capacity check, the error mapping, the response (202 with the same body, so that one
 * load script and one reconciliation serve both designs; here the row exists when it is sent).
 * A database error is the 503 the API gives when it cannot enqueue. Run as web1, web2 and web3
 * behind an nginx with the project's nginx.conf (containers.ts).
 *
 *   node bench/sync-api.ts
 */
import { createServer } from 'node:http';
import { createApp, createDependencies } from '@inflow/api';
import { createDatabase, createLogger, loadApiConfig, type EntryJob } from '@inflow/shared';

const config = loadApiConfig(process.env);
const logger = createLogger({ service: 'bench-sync-api', instanceId: config.instanceId, level: config.logLevel });
const deps = createDependencies(config, { logger, version: 'bench-sync' });
// The writes get a pool of DB_POOL_MAX of their own, as the worker has: the API's pool is shared
// out to its reads (docs/api.md#capacity-of-a-replica), and the peer must not write through less.
const writes = createDatabase(config.db, logger);
const { db } = writes;

// The one difference from the API: where the service enqueues the job, the row is written.
deps.queue.enqueue = async (entry: EntryJob): Promise<void> => {
  await db
    .insertInto('entries')
    .values({
      id: entry.id,
      author: entry.author,
      message: entry.message,
      accepted_by: entry.acceptedBy,
      persisted_by: entry.acceptedBy,
      created_at: new Date(entry.acceptedAt),
    })
    .onConflict((oc) => oc.column('id').doNothing())
    .execute();
};

const server = createServer(createApp(deps));
// As in the API: above nginx's upstream keepalive_timeout (60 s).
server.keepAliveTimeout = 65_000;
server.listen(config.port);
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  void Promise.allSettled([writes.close(), deps.database.close(), deps.queue.close(), deps.redis.quit()]);
});
