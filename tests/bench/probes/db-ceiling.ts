/**
 * The database ceiling, measured from inside the compose network with the worker's own
 * environment: multi-row INSERTs into the entries table, shaped like the worker's (same columns,
 * ON CONFLICT DO NOTHING, RETURNING), `batch` rows each, `loops` statements in flight, each its own
 * commit. The rows carry their own author and are deleted afterwards. Prints one JSON line.
 *
 *   node bench/db-ceiling.ts <rows> <batch> <loops>
 */
import { randomUUID } from 'node:crypto';
import { createDatabase, createLogger, loadWorkerConfig, type NewEntryRow } from '@inflow/shared';

const rows = Number(process.argv[2] ?? 20_000);
const batch = Number(process.argv[3] ?? 64);
const loops = Number(process.argv[4] ?? 2);
const config = loadWorkerConfig(process.env);
const logger = createLogger({ service: 'bench', instanceId: 'bench-db-ceiling', level: 'warn', sync: true });
const database = createDatabase(config.db, logger);
const author = `bench-ceiling-${randomUUID().slice(0, 8)}`;

const row = (i: number): NewEntryRow => ({
  id: randomUUID(),
  author,
  message: `database ceiling row ${i}`,
  accepted_by: 'bench',
  persisted_by: 'bench',
  created_at: new Date(),
});

let written = 0;
const startedAt = performance.now();
await Promise.all(
  Array.from({ length: loops }, async () => {
    while (written < rows) {
      const size = Math.min(batch, rows - written);
      written += size;
      const values = Array.from({ length: size }, (_, i) => row(written - size + i));
      await database.db
        .insertInto('entries')
        .values(values)
        .onConflict((oc) => oc.column('id').doNothing())
        .returning(['id', 'created_at', 'persisted_at'])
        .execute();
    }
  }),
);
const seconds = (performance.now() - startedAt) / 1000;
await database.db.deleteFrom('entries').where('author', '=', author).execute();
await database.close();
process.stdout.write(`${JSON.stringify({ rows, batch, loops, rowsPerSecond: rows / seconds, seconds })}\n`);
