/**
 * The queue ceilings, measured from inside the compose network with the worker's own environment
 * and the production job options: how fast one process adds entry jobs to Redis (`inFlight` adds
 * at a time, as concurrent API requests do), then how fast a BullMQ Worker with the worker's
 * concurrency drains them when its processor does nothing. A queue of its own, removed after.
 * Prints one JSON line.
 *
 *   node bench/queue-ceiling.ts <jobs> <inFlight>
 */
import { randomUUID } from 'node:crypto';
import { createWorkerRedis, entryJobOptions, loadWorkerConfig, PERSIST_ENTRY_JOB } from '@inflow/shared';
import { Queue, Worker } from 'bullmq';

const jobs = Number(process.argv[2] ?? 20_000);
const inFlight = Number(process.argv[3] ?? 64);
const config = loadWorkerConfig(process.env);
const queueName = `bench-ceiling-${randomUUID().slice(0, 8)}`;
const connection = createWorkerRedis(config.redis);
const queue = new Queue(queueName, { connection });

const payload = (i: number) => ({
  id: randomUUID(),
  author: 'bench-ceiling',
  message: `queue ceiling job ${i}`,
  acceptedBy: 'bench',
  acceptedAt: new Date().toISOString(),
});

// Adds: `inFlight` loops, each adding one job after the other, like API requests in flight.
const addStartedAt = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (next < jobs) {
      const data = payload(next);
      next += 1;
      await queue.add(PERSIST_ENTRY_JOB, data, entryJobOptions(data.id));
    }
  }),
);
const addSeconds = (performance.now() - addStartedAt) / 1000;

// Drain: a do-nothing processor with the worker's concurrency and the same removeOnComplete,
// timed from its first completed job to its last, as the worker's drain is from its rows' commit
// times: neither counts the start-up.
let completed = 0;
let firstCompletedAt = 0;
const drained = Promise.withResolvers<undefined>();
const worker = new Worker(queueName, async () => {}, { connection: createWorkerRedis(config.redis), concurrency: config.concurrency });
worker.on('completed', () => {
  completed += 1;
  if (completed === 1) firstCompletedAt = performance.now();
  if (completed === jobs) drained.resolve(undefined);
});
await drained.promise;
const drainSeconds = Math.max((performance.now() - firstCompletedAt) / 1000, 0.001);

await worker.close();
await queue.obliterate({ force: true });
await queue.close();
await connection.quit();
process.stdout.write(
  `${JSON.stringify({ jobs, inFlight, concurrency: config.concurrency, addsPerSecond: jobs / addSeconds, addSeconds, drainedPerSecond: (jobs - 1) / drainSeconds, drainSeconds })}\n`,
);
process.exit(0);
