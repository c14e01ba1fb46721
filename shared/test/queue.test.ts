import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { v7 as uuidv7 } from 'uuid';
import { newEntrySchema } from '../src/entry.ts';
import { createProducerRedis, DEFAULT_ENTRY_RETRY, entryJobOptions, entryJobSchema, redisOptions, type EntryJob } from '../src/queue.ts';

/** A job exactly as EntriesService.accept builds it from a client's body (with uuid's v7, as the API). */
function jobFromBody(body: unknown, acceptedBy = 'api-1'): EntryJob {
  const entry = newEntrySchema.parse(body);
  return { id: uuidv7(), author: entry.author, message: entry.message, acceptedBy, acceptedAt: new Date().toISOString() };
}

t.test('entryJobSchema accepts what the API makes, unchanged', async (t) => {
  const bodies = [
    { author: 'ada', message: 'hello' },
    { author: '  ada  ', message: 'line 1\r\nline 2\n' },
    { author: '\u{1F600}'.repeat(80), message: 'm'.repeat(2000) },
    { author: 'שלום', message: 'مرحبا\n\u{1F468}\u200D\u{1F469}\u200D\u{1F467}' },
  ];
  for (const body of bodies) {
    const job = jobFromBody(body);
    // Through JSON, as BullMQ stores it.
    const stored: unknown = JSON.parse(JSON.stringify(job));
    const parsed = entryJobSchema.safeParse(stored);
    t.ok(parsed.success, `accepts ${JSON.stringify(body).slice(0, 40)}`);
    if (parsed.success) t.same(parsed.data, job, 'and re-validating changes nothing');
  }
  t.ok(entryJobSchema.safeParse({ ...jobFromBody({ author: 'a', message: 'b' }), acceptedBy: 'x'.repeat(64) }).success, 'acceptedBy of 64 characters');
  t.ok(entryJobSchema.safeParse({ ...jobFromBody({ author: 'a', message: 'b' }), acceptedAt: '2025-01-02T03:04:05.678+02:00' }).success, 'an offset time');
});

t.test('entryJobSchema rejects bad payloads', async (t) => {
  const good = jobFromBody({ author: 'ada', message: 'hello' });
  const bad: readonly (readonly [string, unknown])[] = [
    ['null', null],
    ['a string', 'persist me'],
    ['an array', [good]],
    ['empty object', {}],
    ['unknown field', { ...good, priority: 1 }],
    ['missing id', { ...good, id: undefined }],
    ['id not a UUID', { ...good, id: 'entry-1' }],
    ['id a number', { ...good, id: 7 }],
    ['missing author', { ...good, author: undefined }],
    ['author too long', { ...good, author: 'a'.repeat(81) }],
    ['author with a control character', { ...good, author: 'a\u0007' }],
    ['blank author', { ...good, author: '   ' }],
    ['message too long', { ...good, message: 'm'.repeat(2001) }],
    ['message with NUL', { ...good, message: 'a\u0000b' }],
    ['message with a lone surrogate', { ...good, message: 'a\ud800' }],
    ['empty acceptedBy', { ...good, acceptedBy: '' }],
    ['acceptedBy too long', { ...good, acceptedBy: 'x'.repeat(65) }],
    ['acceptedBy a number', { ...good, acceptedBy: 1 }],
    ['acceptedAt not a time', { ...good, acceptedAt: 'yesterday' }],
    ['acceptedAt a date only', { ...good, acceptedAt: '2025-01-02' }],
    ['acceptedAt epoch millis', { ...good, acceptedAt: Date.now() }],
    ['acceptedAt without zone', { ...good, acceptedAt: '2025-01-02T03:04:05' }],
  ];
  for (const [what, payload] of bad) t.notOk(entryJobSchema.safeParse(payload).success, what);
});

t.test('entryJobOptions', async (t) => {
  const id = uuidv7();
  const options = entryJobOptions(id);
  t.equal(options.jobId, id, 'the entry id is the job id');
  t.equal(options.attempts, DEFAULT_ENTRY_RETRY.attempts, 'the default policy');
  t.match(options.backoff, { delay: DEFAULT_ENTRY_RETRY.delayMs });
  t.ok((options.attempts ?? 0) > 1, 'jobs are retried');
  t.equal(options.removeOnComplete, true, 'completed jobs leave Redis');
  t.match(options.backoff, { type: 'exponential', delay: Number });
  t.equal(options.removeOnFail, false, 'a job that failed for good is the only copy of its entry: never removed');
  t.match(entryJobOptions(id, { attempts: 3, delayMs: 100 }), { attempts: 3, backoff: { type: 'exponential', delay: 100 } }, 'the retry policy is the caller\'s');
  t.not(entryJobOptions(id), options, 'a fresh object per call: BullMQ may change what it is given');
  t.equal(entryJobOptions('x').jobId, 'x');
});

t.test('redisOptions: one set of options for every client, sentinels or one Redis', async (t) => {
  const single = { mode: 'single', host: 'redis', port: 6380 } as const;
  const sentinel = { mode: 'sentinel', sentinels: [{ host: 'sentinel1', port: 26379 }, { host: 'sentinel2', port: 26379 }], masterName: 'inflow' } as const;
  for (const use of ['producer', 'consumer'] as const) {
    const one = redisOptions(single, use);
    t.match(one, { host: 'redis', port: 6380, keepAlive: Number }, `${use}: one Redis, TCP keep-alive`);
    t.notOk('sentinels' in one, `${use}: no sentinels`);
    const many = redisOptions(sentinel, use);
    t.same(many.sentinels, sentinel.sentinels, `${use}: every sentinel`);
    t.match(many, { name: 'inflow', failoverDetector: true }, `${use}: the master name; failovers followed as the sentinels announce them`);
    t.notOk('host' in many, `${use}: no fixed host`);
    for (const options of [one, many]) {
      t.equal(options.reconnectOnError(new Error("READONLY You can't write against a read only replica.")), 2, `${use}: a demoted primary: reconnect (and resend)`);
      t.equal(options.reconnectOnError(new Error('NOREPLICAS Not enough good replicas to write.')), false, `${use}: other errors stay errors`);
    }
  }
  // The producer fails fast (→ 503); the consumers wait for Redis as long as it takes.
  t.match(redisOptions(sentinel, 'producer'), { enableOfflineQueue: false, maxRetriesPerRequest: 1 });
  t.match(redisOptions(sentinel, 'consumer'), { maxRetriesPerRequest: null });
  t.notOk('enableOfflineQueue' in redisOptions(sentinel, 'consumer'), 'consumers keep the offline queue');
});

t.test('a sentinel that takes the connection and never answers does not hold the client: it gives up on it and asks again', async (t) => {
  // A sentinel that hangs: it accepts and never writes (a paused process, a machine lost after
  // the handshake). Without a deadline on sentinel commands the client would wait on the first
  // connection forever; with one, it abandons it and keeps asking, so a sentinel that answers
  // (the next in the list, or this one once it is back) is reached.
  const held: Socket[] = [];
  const sentinel = createServer((socket) => {
    held.push(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => sentinel.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const socket of held) socket.destroy();
    sentinel.close();
  });
  const address = sentinel.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const client = createProducerRedis({ mode: 'sentinel', sentinels: [{ host: '127.0.0.1', port: address.port }], masterName: 'inflow' });
  client.on('error', () => undefined);
  t.teardown(() => {
    client.disconnect();
  });
  for (let waited = 0; held.length < 2; waited += 1) {
    if (waited > 600) throw new Error(`the client asked the hanging sentinel ${held.length} time(s) in a minute`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.pass(`the client asked the hanging sentinel again (${held.length} connections)`);
});
