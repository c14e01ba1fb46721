/**
 * ReplicaAcks: when a write is confirmed, and how many WAITs concurrent writes share. The
 * coalescing is tested over a channel whose WAITs the test answers by hand; the last test runs
 * the real EntryQueue against a real Redis to check that BullMQ writes on the connection WAIT
 * is sent on.
 */
import { randomUUID } from 'node:crypto';
import { postEntry, startRedis, waitFor } from '@inflow/test-support';
import { createProducerRedis } from '@inflow/shared';
import { Redis } from 'ioredis';
import t from 'tap';
import { EntryQueue } from '../src/entries/entries.queue.ts';
import { ReplicaAckError, ReplicaAcks, type AckChannel } from '../src/entries/replica-acks.ts';
import { startRealApp } from './utils/real-app.ts';

/** A channel whose WAITs stay pending until the test answers them; it counts them. */
function manualChannel() {
  const waits: { numReplicas: number; timeoutMs: number; answer: (acks: number) => void; fail: (error: Error) => void }[] = [];
  let generation = 0;
  const channel: AckChannel = {
    waitForReplicas: (numReplicas, timeoutMs) =>
      new Promise<number>((answer, fail) => {
        waits.push({ numReplicas, timeoutMs, answer, fail });
      }),
    connectionGeneration: () => generation,
  };
  return {
    channel,
    waits,
    reconnect: () => {
      generation += 1;
    },
  };
}

/** Lets every pending promise callback run (the channel answers synchronously). */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A write that completes when the test says so; records that it ran. */
function manualWrite<T>(value: T) {
  let done: (value: T) => void = () => undefined;
  const state = { started: false };
  const write = () => {
    state.started = true;
    return new Promise<T>((resolve) => {
      done = resolve;
    });
  };
  return { write, state, complete: () => { done(value); } };
}

/** The promise's outcome so far: 'pending', or what it resolved or rejected with. */
function track<T>(promise: Promise<T>) {
  const outcome: { status: 'pending' | 'resolved' | 'rejected'; value?: T; error?: unknown } = { status: 'pending' };
  promise.then(
    (value) => Object.assign(outcome, { status: 'resolved', value }),
    (error: unknown) => Object.assign(outcome, { status: 'rejected', error }),
  );
  return outcome;
}

t.test('a write is confirmed by a WAIT sent after it completed, with the configured replicas and timeout', async (t) => {
  const { channel, waits } = manualChannel();
  const acks = new ReplicaAcks(channel, { replicas: 2, timeoutMs: 750 });
  const write = manualWrite('job-1');
  const result = track(acks.confirmed(write.write));
  await settle();
  t.ok(write.state.started, 'the write runs first');
  t.equal(waits.length, 0, 'no WAIT before the write completed');
  write.complete();
  await settle();
  t.equal(waits.length, 1, 'then one WAIT');
  t.match(waits[0], { numReplicas: 2, timeoutMs: 750 });
  t.equal(result.status, 'pending', 'pending until the replicas answer');
  waits[0]?.answer(2);
  await settle();
  t.same(result, { status: 'resolved', value: 'job-1' }, "resolved with the write's result");
});

t.test('fewer replicas than asked for: a ReplicaAckError that says how many', async (t) => {
  const { channel, waits } = manualChannel();
  const acks = new ReplicaAcks(channel, { replicas: 2, timeoutMs: 1000 });
  const result = track(acks.confirmed(async () => 'x'));
  await settle();
  waits[0]?.answer(1);
  await settle();
  t.equal(result.status, 'rejected');
  t.type(result.error, ReplicaAckError);
  t.equal((result.error as Error).message, '1 of 2 Redis replicas confirmed the write within 1000 ms');
});

t.test('a WAIT that fails is a ReplicaAckError caused by its error; a write that fails is its own error', async (t) => {
  const { channel, waits } = manualChannel();
  const acks = new ReplicaAcks(channel, { replicas: 1, timeoutMs: 1000 });
  const result = track(acks.confirmed(async () => 'x'));
  await settle();
  waits[0]?.fail(new Error('Connection is closed.'));
  await settle();
  t.match(result, { status: 'rejected', error: { name: 'ReplicaAckError', message: 'Redis WAIT failed: Connection is closed.', cause: { message: 'Connection is closed.' } } });
  // And the next write is not stuck behind the failed WAIT.
  const next = track(acks.confirmed(async () => 'y'));
  await settle();
  t.equal(waits.length, 2, 'a new WAIT for the next write');
  waits[1]?.answer(1);
  await settle();
  t.same(next, { status: 'resolved', value: 'y' });
  const refused = track(
    acks.confirmed(async () => {
      throw new Error('NOREPLICAS Not enough good replicas to write.');
    }),
  );
  await settle();
  t.match(refused, { status: 'rejected', error: { name: 'Error', message: /^NOREPLICAS/ } }, 'the write failed: not made, its own error');
  t.equal(waits.length, 2, 'and no WAIT for it');
});

t.test('a write whose connection was replaced before its WAIT answered is not confirmed', async (t) => {
  const { channel, waits, reconnect } = manualChannel();
  const acks = new ReplicaAcks(channel, { replicas: 1, timeoutMs: 1000 });
  const write = manualWrite('x');
  const result = track(acks.confirmed(write.write));
  await settle();
  // The write went out on the old connection; the client reconnected (a failover) before it
  // was answered, so the WAIT that follows runs on a connection that never had it.
  reconnect();
  write.complete();
  await settle();
  waits[0]?.answer(1);
  await settle();
  t.equal(result.status, 'rejected');
  t.match(result.error, { name: 'ReplicaAckError', message: /replaced/ });
});

t.test('concurrent writes share WAITs: one in flight, the arrivals meanwhile all wait for the next one', async (t) => {
  const { channel, waits } = manualChannel();
  const acks = new ReplicaAcks(channel, { replicas: 1, timeoutMs: 1000 });
  const first = track(acks.confirmed(async () => 1));
  await settle();
  t.equal(waits.length, 1, 'the first write starts a WAIT');

  // Five writes complete while it is in flight: it may have been sent before them.
  const later = [2, 3, 4, 5, 6].map((n) => track(acks.confirmed(async () => n)));
  await settle();
  t.equal(waits.length, 1, 'no WAIT of their own yet');
  waits[0]?.answer(1);
  await settle();
  t.equal(first.status, 'resolved', 'the first is confirmed by its WAIT');
  t.ok(later.every((outcome) => outcome.status === 'pending'), 'the later ones are not: that WAIT may predate them');
  t.equal(waits.length, 2, 'one next WAIT for all five');

  // One more arrives while the shared WAIT is in flight: it waits for a third.
  const last = track(acks.confirmed(async () => 7));
  await settle();
  t.equal(waits.length, 2);
  waits[1]?.answer(1);
  await settle();
  t.same(
    later.map((outcome) => outcome.value),
    [2, 3, 4, 5, 6],
    'the five are confirmed together',
  );
  t.equal(last.status, 'pending', 'the last one waits for its own WAIT');
  t.equal(waits.length, 3);
  waits[2]?.answer(0);
  await settle();
  t.match(last, { status: 'rejected', error: { name: 'ReplicaAckError' } }, 'and gets what that one says');
  t.equal(waits.length, 3, 'three WAITs for seven writes');
});

t.test('the options are checked when it is made', async (t) => {
  const { channel } = manualChannel();
  t.throws(() => new ReplicaAcks(channel, { replicas: 0, timeoutMs: 1000 }), RangeError);
  t.throws(() => new ReplicaAcks(channel, { replicas: 1, timeoutMs: 0 }), RangeError);
  t.throws(() => new ReplicaAcks(channel, { replicas: 1.5, timeoutMs: 10 }), RangeError);
});

t.test('EntryQueue: BullMQ adds the job on the producer connection, the one WAIT is sent on', async (t) => {
  const redis = await startRedis(t);
  const config = { mode: 'single', host: '127.0.0.1', port: redis.port } as const;
  const producer = createProducerRedis(config);
  const observer = new Redis({ host: '127.0.0.1', port: redis.port });
  t.teardown(() => {
    producer.disconnect();
    observer.disconnect();
  });
  const queue = new EntryQueue(producer, () => undefined);
  t.teardown(() => queue.close());
  await new Promise<void>((resolve) => producer.once('ready', () => { resolve(); }));
  const generation = queue.connectionGeneration();

  // MONITOR: every command Redis runs from now on, with the address of the connection it came on.
  const monitor = await observer.monitor();
  const seen: { command: string; source: string }[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    seen.push({ command: (args[0] ?? '').toLowerCase(), source });
  });
  await queue.enqueue({ id: randomUUID(), author: 'ada', message: 'on which connection?', acceptedBy: 'api-test', acceptedAt: new Date().toISOString() });
  const marker = `marker-${randomUUID()}`;
  await producer.echo(marker);
  await waitFor(() => seen.some(({ command }) => command === 'echo'), { timeoutMs: 5_000, what: 'MONITOR to show the marker' });
  monitor.disconnect();
  const producerAddress = seen.find(({ command }) => command === 'echo')?.source;
  t.ok(
    seen.some(({ command }) => command === 'evalsha' || command === 'eval'),
    "BullMQ's add script ran",
  );
  // Commands a script runs show "lua" as their source: they ran on the caller's connection.
  t.same(
    [...new Set(seen.map(({ source }) => source).filter((source) => source !== 'lua'))],
    [producerAddress],
    'every command of the add came on the producer connection: the one WAIT is sent on',
  );
  t.equal(await queue.waitForReplicas(1, 50), 0, 'WAIT answers on that connection: no replica here');
  t.equal(queue.connectionGeneration(), generation, 'the same connection throughout');
});

t.test('the API with REDIS_REPLICA_ACKS and no replica: 503 queue_unavailable, and a retry with the key finds the same entry', async (t) => {
  const app = await startRealApp(t, { env: { REDIS_REPLICA_ACKS: '1', REDIS_REPLICA_ACK_TIMEOUT_MS: '50' } });
  const body = { author: 'ada', message: 'held by one Redis only' };
  const first = await postEntry(app.url, body, { 'idempotency-key': 'replica-ack-1' });
  t.equal(first.status, 503);
  t.match(first.body, { error: { code: 'queue_unavailable' } });
  t.equal(first.headers.get('retry-after'), '1');
  // Not confirmed, but written: the job is in the primary.
  t.match(await app.deps.queue.counts(), { waiting: 1 }, 'the job is in Redis all the same');

  // The retry's enqueue writes nothing (the job exists); what it waits for must still cover the
  // first request's job: a write of its own on that connection after the enqueue, then the WAIT.
  const observer = new Redis({ host: '127.0.0.1', port: app.redis.port });
  t.teardown(() => {
    observer.disconnect();
  });
  const monitor = await observer.monitor();
  const seen: { command: string; source: string }[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    seen.push({ command: (args[0] ?? '').toLowerCase(), source });
  });
  const retry = await postEntry(app.url, body, { 'idempotency-key': 'replica-ack-1' });
  t.equal(retry.status, 503, 'the retry is not confirmed either (still no replica)');
  await waitFor(() => seen.some(({ command }) => command === 'wait'), { timeoutMs: 5_000, what: "MONITOR to show the retry's WAIT" });
  monitor.disconnect();
  const waitSource = seen.find(({ command }) => command === 'wait')?.source;
  const onThatConnection = seen.filter(({ source }) => source === waitSource).map(({ command }) => command);
  const added = onThatConnection.findIndex((command) => command === 'evalsha' || command === 'eval');
  t.ok(added >= 0, "the retry ran BullMQ's add on the connection of its WAIT");
  t.same(onThatConnection.slice(added + 1), ['expire', 'wait'], 'then renewed the key, then sent the WAIT');
  t.match(await app.deps.queue.counts(), { waiting: 1 }, 'and finds the same entry: the key stayed claimed, no second job');
  t.ok(
    app.logs.some((line) => JSON.stringify(line).includes('0 of 1 Redis replicas confirmed the write within 50 ms')),
    'the log says why',
  );
});
