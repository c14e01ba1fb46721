/**
 * EntryEvents (the SSE hub behind GET /api/events) on a real HTTP server, with a fake queue
 * subscription: coalescing, the per-message cap, no work without clients, the heartbeat, and
 * ending every stream at shutdown.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@inflow/shared';
import { openEventStream, waitFor, type EventStream } from '@inflow/test-support';
import t from 'tap';
import { EntryEvents, type EntryUpdate, type StatusChange } from '../src/events/entry-events.ts';

const logger = createLogger({ service: 'test', instanceId: 'test', level: 'silent' });

interface Harness {
  events: EntryEvents;
  server: Server;
  url: string;
  emit: (id: string, change: StatusChange) => void;
  subscribed: () => number;
  described: ReadonlyMap<string, StatusChange>[];
}

async function harness(t: { teardown: (fn: () => unknown) => void }, options: { maxPerFlush?: number; heartbeatMs?: number } = {}): Promise<Harness> {
  let onChange: ((id: string, change: StatusChange) => void) | undefined;
  let subscriptions = 0;
  const described: ReadonlyMap<string, StatusChange>[] = [];
  const events = new EntryEvents({
    instanceId: 'api-test',
    logger,
    subscribe: (listener) => {
      subscriptions += 1;
      onChange = listener;
      return Promise.resolve({ close: () => Promise.resolve() });
    },
    describe: (changes) => {
      described.push(new Map(changes));
      return Promise.resolve([...changes].map(([id, change]): EntryUpdate => ({ id, author: `author of ${id}`, ...change })));
    },
    flushIntervalMs: 50,
    maxPerFlush: options.maxPerFlush ?? 100,
    heartbeatMs: options.heartbeatMs ?? 60_000,
  });
  const server = createServer((req, res) => {
    void events.connect(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(async () => {
    await events.close();
    server.closeAllConnections();
    server.close();
  });
  return {
    events,
    server,
    url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}/api/events`,
    emit: (id, change) => {
      onChange?.(id, change);
    },
    subscribed: () => subscriptions,
    described,
  };
}

/** Waits for a condition rather than a fixed time, so a loaded machine cannot fail the test. */
const until = (condition: () => boolean, what: string) => waitFor(condition, { timeoutMs: 30_000, what, intervalMs: 5 });

const entriesMessages = (client: EventStream) => client.dataOf<{ entries?: EntryUpdate[]; dropped?: number }>('entries');

t.test('coalesces changes per entry and flushes them together', async (t) => {
  const h = await harness(t);
  t.equal(h.subscribed(), 0, 'no subscription before the first client');
  const client = await openEventStream(h.url);
  t.teardown(client.close);
  t.equal(client.response.headers.get('content-type'), 'text/event-stream; charset=utf-8');
  await until(() => h.subscribed() === 1 && client.text().includes('event: hello'), 'the subscription and the hello');
  t.equal(h.subscribed(), 1, 'subscribed with the first client');
  t.match(client.text(), /^retry: \d+\nevent: hello\ndata: \{"instanceId":"api-test"\}\n\n/);

  h.emit('a', { status: 'queued' });
  h.emit('a', { status: 'processing' });
  h.emit('b', { status: 'queued' });
  h.emit('a', { status: 'persisted' });
  h.emit('a', { status: 'queued' }); // late and out of order: persisted stays
  await until(() => entriesMessages(client).length > 0, 'the first entries message');
  // A marker noted after that message: it is sent with the next flush, so anything else still
  // pending from the interval would come before it or with it.
  h.emit('marker', { status: 'queued' });
  await until(() => entriesMessages(client).some((m) => m.entries?.some((entry) => entry.id === 'marker') === true), 'the marker');
  const entries = entriesMessages(client);
  t.equal(entries.length, 2, 'one message for the whole interval, then the marker');
  t.same(entries[0], {
    entries: [
      { id: 'a', author: 'author of a', status: 'persisted' },
      { id: 'b', author: 'author of b', status: 'queued' },
    ],
    dropped: 0,
  });
  t.same(entries[1], { entries: [{ id: 'marker', author: 'author of marker', status: 'queued' }], dropped: 0 }, 'nothing of the interval sent again');

  const second = await openEventStream(h.url);
  t.teardown(second.close);
  await until(() => h.events.clients === 2, 'the second client');
  t.equal(h.subscribed(), 1, 'one subscription per process, whatever the clients');
  t.equal(h.events.clients, 2);
});

t.test('caps a message and counts what did not fit', async (t) => {
  const h = await harness(t, { maxPerFlush: 10 });
  const client = await openEventStream(h.url);
  t.teardown(client.close);
  await until(() => h.events.clients === 1, 'the client');
  for (let i = 0; i < 25; i += 1) h.emit(`id-${String(i)}`, { status: 'queued' });
  h.emit('id-3', { status: 'processing' }); // already pending: updated, not dropped
  await until(() => entriesMessages(client).length > 0, 'the entries message');
  const [message] = entriesMessages(client);
  t.equal(message?.entries?.length, 10, 'ten entries');
  t.equal(message?.dropped, 15, 'fifteen dropped');
  t.equal(message?.entries?.find((entry) => entry.id === 'id-3')?.status, 'processing');
});

t.test('does nothing per event while no client listens', async (t) => {
  const h = await harness(t);
  const client = await openEventStream(h.url);
  await until(() => h.events.clients === 1, 'the client');
  client.close();
  await client.ended;
  await until(() => h.events.clients === 0, 'the client to go');
  t.equal(h.events.clients, 0, 'the client is gone');
  for (let i = 0; i < 1000; i += 1) h.emit(`id-${String(i)}`, { status: 'queued' });
  t.equal(h.described.length, 0, 'no batch was read');
  // A new client, then a marker: had the events above been kept, they would be read with it
  // (or before it), so the first batch read must hold the marker alone.
  const next = await openEventStream(h.url);
  t.teardown(next.close);
  await until(() => h.events.clients === 1, 'the next client');
  h.emit('marker', { status: 'queued' });
  await until(() => entriesMessages(next).length > 0, 'the marker message');
  t.same(h.described, [new Map([['marker', { status: 'queued' }]])], 'no batch was read for the events without a client');
  t.same(entriesMessages(next)[0], { entries: [{ id: 'marker', author: 'author of marker', status: 'queued' }], dropped: 0 });
});

t.test('sends a heartbeat comment', async (t) => {
  const h = await harness(t, { heartbeatMs: 40 });
  const client = await openEventStream(h.url);
  t.teardown(client.close);
  await until(() => /\n: heartbeat\n\n/.test(client.text()), 'a heartbeat');
  t.match(client.text(), /\n: heartbeat\n\n/);
});

t.test('endStreams ends every stream and refuses new ones', async (t) => {
  const h = await harness(t);
  const clients = await Promise.all([openEventStream(h.url), openEventStream(h.url)]);
  await until(() => h.events.clients === 2, 'both clients');
  t.equal(h.events.clients, 2);
  t.equal(h.events.closed, false);
  h.events.endStreams();
  await Promise.all(clients.map((client) => client.ended));
  t.pass('both streams ended');
  t.equal(h.events.clients, 0);
  t.equal(h.events.closed, true, 'no new streams while shutting down (events.routes.ts reads closed)');
});
