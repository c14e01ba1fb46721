/**
 * Issue 15: one client holding event streams open must not take a replica's every connection.
 * GET /api/events serves at most EVENTS_MAX_STREAMS at once (maxClients); the next is answered
 * 503 too_many_streams, which nginx retries on another replica, and a freed slot is reused.
 */
import { openEventStream, waitFor, type EventStream, type Teardown } from '@inflow/test-support';
import t from 'tap';
import { pauseRedis, startRealApp, startServers } from './utils/real-app.ts';

// One PostgreSQL and Redis for the file; each test its own app, for its own EVENTS_MAX_STREAMS.
const servers = await startServers(t);

/** GET /api/events: resolves once the headers arrived; closed by the test's teardown. */
async function open(t: Teardown, url: string): Promise<EventStream> {
  const stream = await openEventStream(`${url}/api/events`);
  t.teardown(stream.close);
  return stream;
}

/** The error body of a refused stream (it ends at once). */
async function errorOf(stream: EventStream): Promise<unknown> {
  await stream.ended;
  return JSON.parse(stream.text()) as unknown;
}

/** The real app with a cap of `maxClients` streams; `h.events` is its EntryEvents. */
async function harness(t: Teardown, maxClients: number) {
  const app = await startRealApp(t, { servers, env: { EVENTS_MAX_STREAMS: String(maxClients) } });
  return { ...app, events: app.deps.events };
}

const until = (condition: () => boolean, what: string) => waitFor(condition, { timeoutMs: 10_000, what, intervalMs: 10 });

t.test('the stream after the last allowed one: 503 too_many_streams; a freed slot is reused', async (t) => {
  const h = await harness(t, 3);
  const streams = [await open(t, h.url), await open(t, h.url), await open(t, h.url)];
  t.same(streams.map((s) => s.response.status), [200, 200, 200]);
  t.equal(h.events.clients, 3);
  t.ok(h.events.full);

  const refused = await open(t, h.url);
  t.equal(refused.response.status, 503);
  t.same(await errorOf(refused), {
    error: { code: 'too_many_streams', message: 'this instance serves as many event streams as it can; reconnect in a few seconds' },
  });
  t.equal(refused.response.headers.get('retry-after'), '5');
  t.equal(refused.response.headers.get('x-instance-id'), 'api-test');
  t.equal(h.events.clients, 3, 'the refused one holds nothing');

  streams[0]?.close();
  await until(() => h.events.clients === 2, 'the first stream to go');
  const again = await open(t, h.url);
  t.equal(again.response.status, 200, 'its slot is free again');
});

t.test('a burst while the first subscription is slow cannot pass the cap', async (t) => {
  // Every stream waits for the queue subscription before it counts as a client; without the
  // count of streams still connecting, all of the burst would pass the check.
  const h = await harness(t, 4);
  // The subscription's first read waits while Redis holds every command: the burst arrives
  // while the first stream is still connecting.
  await pauseRedis(h, 300);
  const burst = await Promise.all(Array.from({ length: 12 }, () => open(t, h.url)));
  const statuses = burst.map((s) => s.response.status).sort();
  t.same(statuses, [200, 200, 200, 200, 503, 503, 503, 503, 503, 503, 503, 503], 'four streams, eight refusals');
  const refusals = await Promise.all(burst.filter((s) => s.response.status === 503).map(errorOf));
  t.ok(refusals.every((body) => (body as { error: { code: string } }).error.code === 'too_many_streams'));
  await until(() => h.events.clients === 4, 'the four clients');
});

t.test('while draining: 503 shutting_down, not too_many_streams', async (t) => {
  const h = await harness(t, 1);
  h.deps.drainState.draining = true;
  const refused = await open(t, h.url);
  t.equal(refused.response.status, 503);
  t.match(await errorOf(refused), { error: { code: 'shutting_down' } });
  h.deps.drainState.draining = false;
  h.events.endStreams();
  const closed = await open(t, h.url);
  t.match(await errorOf(closed), { error: { code: 'shutting_down' } }, 'nor once the streams were ended');
});
