/**
 * A whole inflow stack for one test file: its own PostgreSQL and Redis, and the API and worker
 * processes the test asks for, all torn down with the test.
 */
import type { EntryRow } from '@inflow/shared';
import { startApi, startWorker, type AppProcess } from './processes.ts';
import type { Teardown } from './containers.ts';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from './services.ts';

export interface Stack {
  pg: PostgresServer;
  redis: RedisServer;
  /** The REDIS_* and DB_* variables (plus any extra given to startStack). */
  env: Record<string, string>;
  apis: AppProcess[];
  workers: AppProcess[];
  /** Starts another API process; INSTANCE_ID defaults to api-<n>. */
  addApi(env?: Record<string, string>, options?: { waitReady?: boolean }): Promise<AppProcess>;
  /** Starts another worker process; INSTANCE_ID defaults to worker-<n>. */
  addWorker(env?: Record<string, string>, options?: { waitReady?: boolean }): Promise<AppProcess>;
  /** Rows in the entries table. */
  countRows(): Promise<number>;
  /** Every row of the entries table (oldest first). */
  rows(): Promise<EntryRow[]>;
}

export async function startStack(
  t: Teardown,
  options: { apis?: number; workers?: number; env?: Record<string, string> } = {},
): Promise<Stack> {
  const [pg, redis] = await Promise.all([startPostgres(t), startRedis(t)]);
  const env = { ...pg.env, ...redis.env, ...options.env };
  const apis: AppProcess[] = [];
  const workers: AppProcess[] = [];
  let apiCount = 0;
  let workerCount = 0;

  const stack: Stack = {
    pg,
    redis,
    env,
    apis,
    workers,
    addApi: async (extra = {}, startOptions = {}) => {
      apiCount += 1;
      const api = await startApi(t, { ...env, INSTANCE_ID: `api-${apiCount}`, ...extra }, startOptions);
      apis.push(api);
      return api;
    },
    addWorker: async (extra = {}, startOptions = {}) => {
      workerCount += 1;
      const worker = await startWorker(t, { ...env, INSTANCE_ID: `worker-${workerCount}`, ...extra }, startOptions);
      workers.push(worker);
      return worker;
    },
    countRows: async () => Number((await pg.query<{ n: string }>('SELECT count(*) AS n FROM entries')).rows[0]?.n),
    rows: async () =>
      (
        await pg.query<EntryRow>(
          'SELECT id, author, message, accepted_by, persisted_by, created_at, persisted_at FROM entries ORDER BY created_at, id',
        )
      ).rows,
  };
  // Started one after the other: on a small machine, parallel Node start-ups only slow each other.
  for (let i = 0; i < (options.apis ?? 1); i += 1) await stack.addApi();
  for (let i = 0; i < (options.workers ?? 1); i += 1) await stack.addWorker();
  return stack;
}
