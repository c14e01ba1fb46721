/**
 * The logs, as the real processes write them to stdout: one JSON line per request with method,
 * path, status, duration, request id and instance id; one line per committed INSERT naming each
 * entry it wrote (id, acceptedBy, queueLatencyMs) and persistedBy; the instance id on every line.
 */
import t from 'tap';
import { http, persistedEntry, postEntry, startStack, waitForEntryStatus, UUID, type LogLine } from '@inflow/test-support';

t.setTimeout(90_000);

// LOG_LEVEL=info, as in production: probes are logged at debug and must not show up.
const stack = await startStack(t, { apis: 0, workers: 0 });
const api = await stack.addApi({ LOG_LEVEL: 'info' });
const worker = await stack.addWorker({ LOG_LEVEL: 'info' });

const requestLines = (id: string) => api.logs.filter((line) => (line['req'] as { id?: string } | undefined)?.id === id);

/**
 * A request sent after everything before it was answered, and its log line: the API writes its
 * lines in order, so once this one is in, any line about an earlier request is in too.
 */
async function apiMarker(id: string): Promise<void> {
  await http(`${api.url}/api/instance`, { headers: { 'X-Request-ID': id } });
  await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === id);
}

t.test('one line per request, with method, path, status, duration, request id and instance id', async (t) => {
  const accepted = await postEntry(api.url, { author: 'logger', message: 'a private message body' }, { 'X-Request-ID': 'log-post-1' });
  t.equal(accepted.status, 202);
  const line = await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === 'log-post-1');
  t.match(line, {
    level: 'info',
    service: 'api',
    instance: 'api-1',
    req: { id: 'log-post-1', method: 'POST', path: '/api/entries' },
    res: { status: 202 },
    durationMs: Number,
    msg: 'POST /api/entries 202',
  });
  t.ok(!Number.isNaN(Date.parse(String(line['time']))), 'an ISO time');
  t.ok((line['durationMs'] as number) >= 0);
  await apiMarker('log-post-1-after');
  t.equal(requestLines('log-post-1').length, 1, 'exactly one line for the request');
  t.notMatch(JSON.stringify(line), /a private message body|logger/, 'the body is not logged');

  // The query string is not part of the path; a 4xx is a warning.
  await http(`${api.url}/api/entries?limit=oops`, { headers: { 'X-Request-ID': 'log-get-400' } });
  const bad = await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === 'log-get-400');
  t.match(bad, { level: 'warn', req: { method: 'GET', path: '/api/entries' }, res: { status: 400 }, instance: 'api-1' });
  t.notMatch(JSON.stringify(bad), /oops/, 'no query string in the line');

  // Without X-Request-ID, the generated id is logged and returned.
  const generated = await http(`${api.url}/api/entries?limit=1`);
  const id = generated.headers.get('x-request-id') ?? '';
  t.match(id, UUID);
  const line2 = await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === id);
  t.match(line2, { req: { method: 'GET', path: '/api/entries' }, res: { status: 200 } });

  // Unknown routes and wrong methods are logged too.
  await http(`${api.url}/nowhere`, { headers: { 'X-Request-ID': 'log-404' } });
  t.match(await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === 'log-404'), { res: { status: 404 }, req: { path: '/nowhere' } });
  await http(`${api.url}/api/entries`, { method: 'DELETE', headers: { 'X-Request-ID': 'log-405' } });
  t.match(await api.waitForLog((l) => (l['req'] as { id?: string } | undefined)?.id === 'log-405'), { res: { status: 405 }, req: { method: 'DELETE' } });

  // Probes are debug-level: absent at LOG_LEVEL=info.
  await http(`${api.url}/healthz`, { headers: { 'X-Request-ID': 'log-probe' } });
  await http(`${api.url}/readyz`, { headers: { 'X-Request-ID': 'log-probe' } });
  await apiMarker('log-probe-after');
  t.equal(requestLines('log-probe').length, 0, 'health probes are not logged at info');
  await waitForEntryStatus(api.url, accepted.body.id, 'persisted');
});

t.test('the worker logs every persisted entry, in the line of the INSERT that wrote it', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i += 1) ids.push((await postEntry(api.url, { author: 'logger', message: `persist me ${i}` })).body.id);
  for (const id of ids) {
    const line = await worker.waitForLog((l) => persistedEntry(l, id) !== undefined);
    t.match(line, { level: 'info', service: 'worker', instance: 'worker-1', persistedBy: 'worker-1', msg: 'entries persisted', count: Number });
    const entry = persistedEntry(line, id);
    t.match(entry, { id, acceptedBy: 'api-1', queueLatencyMs: Number });
    t.ok((entry?.queueLatencyMs ?? -1) >= 0 && (entry?.queueLatencyMs ?? Infinity) < 60_000, `a plausible latency (${String(entry?.queueLatencyMs)} ms)`);
  }
  // A marker entry, accepted after those five were persisted: the worker writes its lines in
  // order, so once the marker's line is in, any further line about the five would be in too.
  const marker = await postEntry(api.url, { author: 'logger', message: 'marker' });
  await worker.waitForLog((l) => persistedEntry(l, marker.body.id) !== undefined);
  for (const id of ids) {
    // What `grep <entry id>` over the worker's log finds: exactly one line.
    t.equal(worker.logs.filter((l) => JSON.stringify(l).includes(id)).length, 1, `exactly one line names ${id}`);
  }
});

t.test('every line is JSON and carries the instance id', async (t) => {
  // A clean shutdown adds its own lines; they must follow the rule too. (SIGINT, as Ctrl-C.)
  api.signal('SIGINT');
  worker.signal('SIGTERM');
  t.equal(await api.closed, 0);
  t.equal(await worker.closed, 0);
  const check = (name: string, instance: string, logs: readonly LogLine[]) => {
    t.ok(logs.length > 5, `${name}: ${logs.length} lines`);
    const unparsed = logs.filter((line) => line['unparsed'] === true);
    t.same(unparsed, [], `${name}: every stdout line is JSON`);
    const without = logs.filter((line) => line['instance'] !== instance);
    t.same(without, [], `${name}: every line has instance ${instance}`);
    t.ok(logs.every((line) => typeof line.level === 'string' && typeof line['time'] === 'string' && typeof line.msg === 'string'), `${name}: level, time and msg on every line`);
    t.ok(logs.some((line) => line.msg === 'shutdown complete'), `${name}: the last words are logged`);
  };
  check('api', 'api-1', api.logs);
  check('worker', 'worker-1', worker.logs);
});
