/**
 * Lists and replays the entries that failed for good: accepted (202), never persisted, and kept
 * in the queue's failed set with their reason. Run it where the worker runs, with the worker's
 * environment:
 *
 *   docker compose exec worker node apps/worker/dist/replay.js --list
 *   docker compose exec worker node apps/worker/dist/replay.js --all
 *   docker compose exec worker node apps/worker/dist/replay.js <entry id> [<entry id> …]
 *
 * A replay moves the job back to the wait list with its attempts reset; the worker then persists
 * it like any other. It is idempotent: the job id is the entry id, and the entries primary key
 * keeps a row single however often an entry is replayed. Exit code 0 when every job asked for
 * was replayed (or listed), 1 when one was not in the failed set, 78 on a configuration error.
 */
import { parseArgs } from 'node:util';
import { createWorkerRedis, ENTRIES_QUEUE, loadConfigOrExit, loadWorkerConfig } from '@inflow/shared';
import { Queue, type Job } from 'bullmq';

const { values, positionals } = parseArgs({
  options: { list: { type: 'boolean', default: false }, all: { type: 'boolean', default: false } },
  allowPositionals: true,
});
if (values.list === values.all && positionals.length === 0) {
  process.stderr.write('usage: replay.js --list | --all | <entry id> [<entry id> …]\n');
  process.exit(64);
}

const config = loadConfigOrExit(() => loadWorkerConfig(process.env), 'replay');
const redis = createWorkerRedis(config.redis);
const queue = new Queue(ENTRIES_QUEUE, { connection: redis });
const print = (record: Record<string, unknown>) => process.stdout.write(`${JSON.stringify(record)}\n`);
const describe = (job: Job) => ({
  id: job.id,
  failedReason: job.failedReason,
  attemptsMade: job.attemptsMade,
  failedAt: job.finishedOn === undefined ? null : new Date(job.finishedOn).toISOString(),
});

async function failedJobs(): Promise<Job[]> {
  const jobs: Job[] = [];
  const page = 500;
  for (let start = 0; ; start += page) {
    const batch = await queue.getFailed(start, start + page - 1);
    jobs.push(...batch);
    if (batch.length < page) return jobs;
  }
}

async function replay(job: Job): Promise<void> {
  // Read before the retry, which clears it.
  const { failedReason } = job;
  await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
  print({ replayed: job.id, failedReason });
}

async function main(): Promise<number> {
  if (values.list) {
    const jobs = await failedJobs();
    for (const job of jobs) print(describe(job));
    process.stderr.write(`${jobs.length} failed entries\n`);
    return 0;
  }
  if (values.all) {
    // Replayed in pages from the top: each replay leaves the failed set, so page 0 refills.
    let count = 0;
    for (let batch = await queue.getFailed(0, 499); batch.length > 0; batch = await queue.getFailed(0, 499)) {
      for (const job of batch) await replay(job);
      count += batch.length;
    }
    process.stderr.write(`${count} failed entries replayed\n`);
    return 0;
  }
  let missing = 0;
  for (const id of positionals) {
    const job = await queue.getJob(id);
    if (job === undefined || (await job.getState()) !== 'failed') {
      print({ notReplayed: id, reason: job === undefined ? 'no such job' : `the job is ${await job.getState()}, not failed` });
      missing += 1;
      continue;
    }
    await replay(job);
  }
  return missing === 0 ? 0 : 1;
}

try {
  process.exitCode = await main();
} finally {
  await queue.close();
  await redis.quit();
}
