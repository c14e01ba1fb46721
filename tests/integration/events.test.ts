/**
 * The page's server side through real API processes (real Redis and PostgreSQL): GET / and its
 * assets with their security headers, and the Server-Sent Events stream GET /api/events: its
 * headers, an event for an entry accepted by another replica, coalesced messages under a burst,
 * and the stream ending (and the process exiting 0, its drain not held up by the stream) on
 * SIGTERM.
 */
import { randomUUID } from 'node:crypto';
import { ENTRIES_QUEUE, entryJobOptions, PERSIST_ENTRY_JOB } from '@inflow/shared';
import { Queue } from 'bullmq';
import t from 'tap';
import { mapLimit, openEventStream, postEntry, rawRequest, startStack, waitFor, waitForQueueDrained, type EventStream } from '@inflow/test-support';

t.setTimeout(120_000);

interface EntryUpdate {
  id: string;
  status: string;
  failedReason?: string;
  author?: string | null;
  acceptedBy?: string | null;
  persistedBy?: string | null;
}

/** Every entry update the stream received so far, in order. */
const updates = (stream: EventStream): EntryUpdate[] => stream.dataOf<{ entries: EntryUpdate[] }>('entries').flatMap((data) => data.entries);

t.test('the page and its assets, with security headers', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 0 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  const page = await fetch(`${api.url}/`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.equal(page.headers.get('x-instance-id'), 'api-1');
  t.equal(page.headers.get('cache-control'), 'no-cache');
  t.match(page.headers.get('content-security-policy'), /default-src 'self'/);
  t.notMatch(page.headers.get('content-security-policy'), /unsafe-inline/);
  t.equal(page.headers.get('x-content-type-options'), 'nosniff');
  t.equal(page.headers.get('referrer-policy'), 'no-referrer');
  const html = await page.text();
  t.match(html, '<span class="instance-tag" id="served-by" data-instance="api-1">api-1</span>', 'the page names the instance that served it');
  t.notMatch(html, /<script>|<style>|style="|https?:\/\//, 'no inline script or style, nothing from another host');

  const etag = page.headers.get('etag');
  t.ok(etag, 'an ETag');
  // node:http, not fetch: fetch adds "Cache-Control: no-cache" to a conditional request.
  const revalidated = await rawRequest(`${api.url}/`, { headers: { 'if-none-match': etag ?? '' } });
  t.equal(revalidated.status, 304, 'a matching If-None-Match is answered 304');

  const head = await fetch(`${api.url}/`, { method: 'HEAD' });
  t.equal(head.status, 200, 'HEAD / works');
  t.equal(await head.text(), '');

  for (const [path, type] of [
    ['/main.js', /^(text|application)\/javascript/],
    ['/styles.css', /^text\/css/],
    ['/favicon.svg', /^image\/svg\+xml/],
  ] as const) {
    const asset = await fetch(`${api.url}${path}`);
    t.equal(asset.status, 200, path);
    t.match(asset.headers.get('content-type'), type, `${path} content type`);
    t.equal(asset.headers.get('cache-control'), 'no-cache', `${path} is revalidated`);
    t.equal(asset.headers.get('x-content-type-options'), 'nosniff');
  }

  const post = await fetch(`${api.url}/`, { method: 'POST' });
  t.equal(post.status, 405);
  t.match(await post.json(), { error: { code: 'method_not_allowed' } });
  const missing = await fetch(`${api.url}/nothing-here.js`);
  t.equal(missing.status, 404);
  t.match(await missing.json(), { error: { code: 'not_found' } });
});

t.test('GET /api/events streams entry updates from every replica, coalesced', async (t) => {
  const stack = await startStack(t, { apis: 2, workers: 1 });
  const [api1, api2] = stack.apis;
  if (api1 === undefined || api2 === undefined) throw new Error('no API');

  const stream = await openEventStream(`${api1.url}/api/events`);
  t.teardown(stream.close);
  t.equal(stream.response.status, 200);
  t.match(stream.response.headers.get('content-type'), /^text\/event-stream/);
  t.equal(stream.response.headers.get('x-instance-id'), 'api-1');
  t.equal(stream.response.headers.get('x-accel-buffering'), 'no');
  t.match(stream.response.headers.get('cache-control'), /no-cache/);
  await waitFor(() => stream.messages.find((m) => m.event === 'hello'), { timeoutMs: 5_000, what: 'hello' });
  t.same(stream.messages[0], { event: 'hello', data: { instanceId: 'api-1' } });

  // Accepted by the other replica: the stream of api-1 still reports it, up to persisted.
  const accepted = await postEntry(api2.url, { author: 'sse', message: 'through api-2' });
  t.equal(accepted.status, 202);
  const { id } = accepted.body;
  const persisted = await waitFor(() => updates(stream).find((u) => u.id === id && u.status === 'persisted'), {
    timeoutMs: 10_000,
    what: `a persisted event for ${id}`,
  });
  t.match(persisted, { id, status: 'persisted', author: 'sse', acceptedBy: 'api-2', persistedBy: 'worker-1' });

  // A job the worker cannot persist: the stream says failed, with the reason.
  const queue = new Queue(ENTRIES_QUEUE, { connection: { host: '127.0.0.1', port: stack.redis.port } });
  t.teardown(() => queue.close());
  const badId = randomUUID();
  await queue.add(PERSIST_ENTRY_JOB, { id: badId, author: 'x'.repeat(81) }, entryJobOptions(badId));
  const failed = await waitFor(() => updates(stream).find((u) => u.id === badId && u.status === 'failed'), {
    timeoutMs: 10_000,
    what: `a failed event for ${badId}`,
  });
  t.match(failed.failedReason, /invalid job payload/, 'failed, with the reason');

  // A burst: many entries, few messages, none over the cap.
  const before = stream.messages.length;
  const startedAt = Date.now();
  const burst = await mapLimit(Array.from({ length: 300 }, (_, i) => i), 16, (i) =>
    postEntry(i % 2 === 0 ? api1.url : api2.url, { author: 'burst', message: `entry ${i}` }),
  );
  t.ok(burst.every((result) => result.status === 202), 'the burst was accepted');
  const ids = new Set(burst.map((result) => result.body.id));
  await waitFor(async () => (await stack.countRows()) >= 301, { timeoutMs: 30_000, what: 'the burst to be persisted' });
  // Every burst job completed: all of their events are in the queue's event stream. A marker
  // entry accepted now has its events after all of them, and the stream is sent in that order,
  // so once the marker is reported persisted, every message about the burst has arrived. (A
  // marker whose events all came while a message was full is only counted as dropped, never
  // named: so when a message with drops has come since the last marker was sent, and every
  // marker's row is written, another marker is sent.)
  await waitForQueueDrained(stack.redis.client, { timeoutMs: 30_000 });
  const markers = new Set<string>();
  let markerSentAt = 0;
  const sendMarker = async () => {
    markerSentAt = stream.messages.length;
    const marker = await postEntry(api2.url, { author: 'marker', message: `after the burst ${markers.size}` });
    if (marker.status !== 202) throw new Error(`the marker POST answered ${marker.status}: ${marker.text}`);
    markers.add(marker.body.id);
  };
  await sendMarker();
  await waitFor(
    async () => {
      if (updates(stream).some((u) => markers.has(u.id) && u.status === 'persisted')) return true;
      const dropsSince = stream.messages.slice(markerSentAt).some((m) => m.event === 'entries' && (m.data as { dropped: number }).dropped > 0);
      const rows = await stack.pg.query('SELECT 1 FROM entries WHERE id = ANY($1)', [[...markers]]);
      if (dropsSince && (rows.rowCount ?? 0) === markers.size) await sendMarker();
      return false;
    },
    { timeoutMs: 30_000, what: 'a marker after the burst to be reported persisted', intervalMs: 100 },
  );
  const burstMessages = stream.messages.slice(before).filter((m) => m.event === 'entries');
  const elapsedMs = Date.now() - startedAt;
  const sizes = burstMessages.map((m) => (m.data as { entries: unknown[] }).entries.length);
  const dropped = burstMessages.reduce((sum, m) => sum + (m.data as { dropped: number }).dropped, 0);
  t.comment(`${ids.size} entries (${ids.size * 3} or more queue events) in ${elapsedMs} ms: ${burstMessages.length} messages, largest ${Math.max(...sizes)}, ${dropped} dropped`);
  t.ok(sizes.every((size) => size <= 100), 'no message holds more than 100 entries');
  t.ok(burstMessages.length <= Math.ceil(elapsedMs / 200) + 2, `about one message per 200 ms at most (${burstMessages.length})`);
  // Every burst entry's last event ("completed") was either sent, naming it persisted, or
  // counted as dropped in a message: none is left out.
  const reported = new Set(updates(stream).filter((u) => ids.has(u.id) && u.status === 'persisted').map((u) => u.id));
  t.ok(reported.size + dropped >= ids.size, `the burst was reported (${reported.size} of ${ids.size} entries named persisted, ${dropped} dropped)`);
});

t.test('the stream ends on SIGTERM and the API still exits 0, its drain not held up', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 0 });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');
  const streams = await Promise.all([openEventStream(`${api.url}/api/events`), openEventStream(`${api.url}/api/events`)]);
  for (const stream of streams) t.teardown(stream.close);
  await waitFor(() => streams.every((s) => s.messages.some((m) => m.event === 'hello')), { timeoutMs: 5_000, what: 'hello on both' });

  api.signal('SIGTERM');
  const endings = await Promise.all(streams.map((s) => s.ended));
  t.same(endings, ['ended', 'ended'], 'both streams ended');
  const code = await api.closed;
  t.equal(code, 0, 'exit code 0');
  // In the API's own log (ordered by its times: the last lines of a process may reach stdout out
  // of order): the signal, then the drain done (the open streams did not hold it up), then a
  // clean end, and never the deadline that cuts a held-up shutdown short.
  const timeOf = (msg: string, step?: string) =>
    Date.parse(String(api.logs.find((line) => line.msg === msg && (step === undefined || line['step'] === step))?.['time']));
  const signalled = timeOf('shutting down');
  const drained = timeOf('shutdown step done', 'drain http');
  const complete = timeOf('shutdown complete');
  t.ok(signalled <= drained && drained <= complete, 'signal, drain done, shutdown complete, in that order', { signalled, drained, complete });
  t.ok(api.logs.some((line) => line.msg === 'shutdown complete' && line['clean'] === true), 'a clean shutdown');
  t.notOk(api.logs.some((line) => line.msg === 'shutdown deadline passed, exiting now'), 'not cut short by the deadline');
});
