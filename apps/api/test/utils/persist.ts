/**
 * The worker's part, for the in-process tests where no worker runs: writes an entry's row from
 * its job, as the worker's INSERT does, so a test can see what the API answers once it exists.
 */
import type { RealDependencies } from './real-app.ts';

export async function persist(app: Pick<RealDependencies, 'deps' | 'postgres'>, id: string, persistedBy = 'worker-test'): Promise<void> {
  const job = (await app.deps.queue.findMany([id])).get(id);
  if (job === undefined) throw new Error(`no job for ${id}`);
  await app.postgres.query('INSERT INTO entries (id, author, message, accepted_by, persisted_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
    id,
    job.author,
    job.message,
    job.acceptedBy,
    persistedBy,
    job.createdAt,
  ]);
}
