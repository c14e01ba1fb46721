/**
 * The HTTP contract of one API process for everything but writing, against real PostgreSQL and
 * Redis: reading entries (pages, one by id), unknown routes and methods, HEAD, instance and
 * health, the ops port (detailed readiness, /metrics), request ids, and the worker's health
 * server. Writing entries is api-write.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  assertError,
  freePort,
  http,
  postEntry,
  rawRequest,
  REPO_ROOT,
  seenResponseProblems,
  sortedKeys,
  startStack,
  UUID,
  waitForEntryStatus,
  type EntryPage,
  type EntryView,
} from '@inflow/test-support';

t.setTimeout(120_000);

// Its own ops port: OPS_PORT's default (8081) would collide between test files run at once.
const opsPort = await freePort();
const stack = await startStack(t, { apis: 1, workers: 1, env: { OPS_PORT: String(opsPort) } });
const api = stack.apis[0];
if (api === undefined) throw new Error('no API');
const base = api.url;
const ops = `http://127.0.0.1:${String(opsPort)}`;

// Enough that the last test sees every kind of answer above.
const MIN_CHECKED = 50;

t.test('GET /api/entries: newest first, paged', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i += 1) {
    const result = await postEntry(base, { author: 'pager', message: `page entry ${i}` });
    ids.push(result.body.id);
  }
  for (const id of ids) await waitForEntryStatus(base, id, 'persisted');

  const all = await http<EntryPage>(`${base}/api/entries`);
  t.equal(all.status, 200);
  t.same(sortedKeys(all.body), ['entries', 'next']);
  t.equal(all.body.next, null, 'fewer than 50 rows: no next page');
  const total = await stack.countRows();
  t.equal(all.body.entries.length, total, 'default limit covers them');
  for (const entry of all.body.entries) {
    t.same(sortedKeys(entry), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy']);
  }
  const created = all.body.entries.map((entry) => Date.parse(entry.createdAt));
  t.same(created, [...created].sort((a, b) => b - a), 'newest first');
  t.same(
    all.body.entries.filter((entry) => entry.author === 'pager').map((entry) => entry.id),
    [...ids].reverse(),
    'the seven in reverse order of acceptance',
  );

  const pageOne = await http<EntryPage>(`${base}/api/entries?limit=3`);
  t.equal(pageOne.body.entries.length, 3);
  t.type(pageOne.body.next, 'string');
  const pageTwo = await http<EntryPage>(`${base}/api/entries?limit=3&before=${pageOne.body.next ?? ''}`);
  t.equal(pageTwo.status, 200);
  t.same(
    [...pageOne.body.entries, ...pageTwo.body.entries].map((entry) => entry.id),
    all.body.entries.slice(0, 6).map((entry) => entry.id),
    'page two continues page one',
  );
  const exact = await http<EntryPage>(`${base}/api/entries?limit=${total}`);
  t.equal(exact.body.next, null, 'no next page when the page holds the last row');
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=200`)).status, 200);
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=1`)).body.entries.length, 1);
  t.equal((await http<EntryPage>(`${base}/api/entries?limit=007`)).body.entries.length, 7, 'leading zeros are a number');

  for (const limit of ['0', '201', '-1', 'abc', '1.5', '', '1e2', ' 5', '99999']) {
    assertError(t, await http(`${base}/api/entries?limit=${encodeURIComponent(limit)}`), 400, 'invalid_field', 'limit');
  }
  assertError(t, await http(`${base}/api/entries?limit=1&limit=2`), 400, 'invalid_field', 'limit');
  const notOurs = Buffer.from(`2025-01-01T00:00:00.000Z|${randomUUID()}|x`).toString('base64url');
  const badTime = Buffer.from(`2025-13-01T00:00:00.000Z|${randomUUID()}`).toString('base64url');
  const badId = Buffer.from(`2025-01-01T00:00:00.000Z|not-a-uuid`).toString('base64url');
  for (const before of ['garbage!', '', 'x'.repeat(201), notOurs, badTime, badId, "' OR 1=1 --"]) {
    assertError(t, await http(`${base}/api/entries?before=${encodeURIComponent(before)}`), 400, 'invalid_field', 'before');
  }
  assertError(t, await http(`${base}/api/entries?before=a&before=b`), 400, 'invalid_field', 'before');
  // Unknown query parameters are ignored.
  t.equal((await http(`${base}/api/entries?foo=bar`)).status, 200);
});

t.test('GET /api/entries/:id', async (t) => {
  for (const id of ['not-a-uuid', '123', `${randomUUID()}x`, 'null', randomUUID().replaceAll('-', '')]) {
    assertError(t, await http(`${base}/api/entries/${encodeURIComponent(id)}`), 400, 'invalid_field', 'id');
  }
  // Broken percent-encoding is a malformed id too, not a server error.
  const broken = await rawRequest(`${base}/api/entries/%E0%A4%A`);
  assertError(t, { ...broken, body: JSON.parse(broken.text) }, 400, 'bad_request', 'path');
  t.equal(broken.headers['x-instance-id'], 'api-1');
  const unknown = randomUUID();
  assertError(t, await http(`${base}/api/entries/${unknown}`), 404, 'not_found');
  const upper = await postEntry(base, { author: 'case', message: 'upper-case id' });
  await waitForEntryStatus(base, upper.body.id, 'persisted');
  const byUpper = await http<EntryView>(`${base}/api/entries/${upper.body.id.toUpperCase()}`);
  t.equal(byUpper.status, 200, 'ids are case-insensitive, as UUIDs are');
  t.equal(byUpper.body.id, upper.body.id);
});

t.test('unknown routes 404, wrong methods 405 with Allow', async (t) => {
  for (const [method, path] of [
    ['GET', '/api'],
    ['GET', '/api/entriesx'],
    ['POST', '/api/other'],
    ['GET', `/api/entries/${randomUUID()}/extra`],
    ['DELETE', '/nothing'],
  ] as const) {
    assertError(t, await http(`${base}${path}`, { method }), 404, 'not_found');
  }
  const cases: readonly (readonly [string, string, string])[] = [
    ['DELETE', '/api/entries', 'GET, POST, HEAD'],
    ['PUT', '/api/entries', 'GET, POST, HEAD'],
    ['PATCH', '/api/entries', 'GET, POST, HEAD'],
    ['POST', `/api/entries/${randomUUID()}`, 'GET, HEAD'],
    ['DELETE', `/api/entries/${randomUUID()}`, 'GET, HEAD'],
    ['POST', '/api/instance', 'GET, HEAD'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['PUT', '/readyz', 'GET, HEAD'],
  ];
  for (const [method, path, allow] of cases) {
    const result = await http(`${base}${path}`, { method, headers: { 'content-type': 'application/json' }, body: '{}' });
    assertError(t, result, 405, 'method_not_allowed');
    t.equal(result.headers.get('allow'), allow, `${method} ${path}: Allow ${allow}`);
  }
});

t.test('HEAD works wherever GET does', async (t) => {
  const entry = await postEntry(base, { author: 'head', message: 'for HEAD' });
  await waitForEntryStatus(base, entry.body.id, 'persisted');
  for (const path of ['/api/entries', '/api/entries?limit=2', `/api/entries/${entry.body.id}`, '/api/instance', '/healthz', '/readyz']) {
    const get = await http(`${base}${path}`);
    const head = await http(`${base}${path}`, { method: 'HEAD' });
    t.equal(head.status, 200, `HEAD ${path}`);
    t.equal(head.text, '', 'no body');
    t.equal(head.headers.get('content-type'), get.headers.get('content-type'));
    t.equal(head.headers.get('x-instance-id'), 'api-1');
  }
  t.equal((await http(`${base}/api/entries/${randomUUID()}`, { method: 'HEAD' })).status, 404);
  t.equal((await http(`${base}/api/entries/nope`, { method: 'HEAD' })).status, 400);
});

t.test('instance, liveness and readiness', async (t) => {
  // Issue 15: the instance id and version only; the host name (a container id) and the start
  // time are internals, on the ops port.
  const instance = await http<Record<string, string>>(`${base}/api/instance`);
  t.equal(instance.status, 200);
  t.same(instance.body, { instanceId: 'api-1', version: '1.0.0' });

  const health = await http(`${base}/healthz`);
  t.equal(health.status, 200);
  t.match(health.body, { status: 'ok', instanceId: 'api-1' });

  // Public readiness: ready or not, nothing about the dependencies.
  const ready = await http(`${base}/readyz`);
  t.equal(ready.status, 200);
  t.same(ready.body, { status: 'ready' });
  t.equal(ready.headers.get('x-instance-id'), 'api-1');
});

t.test('the ops port: detailed readiness and /metrics, which the public port does not serve', async (t) => {
  const ready = await http<{ status: string; instanceId: string; checks: Record<string, { ok: boolean; ms: number }> }>(`${ops}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, { status: 'ready', instanceId: 'api-1', checks: { redis: { ok: true, ms: Number }, postgres: { ok: true, ms: Number } } });
  t.equal(ready.headers.get('x-instance-id'), 'api-1');
  const health = await http(`${ops}/healthz`);
  t.match(health.body, { status: 'ok', instanceId: 'api-1', hostname: hostname(), version: '1.0.0', startedAt: String });

  await http(`${base}/api/entries?limit=1`);
  const metrics = await http(`${ops}/metrics`);
  t.equal(metrics.status, 200);
  t.match(metrics.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  t.match(metrics.text, /inflow_http_requests_total\{method="GET",route="\/api\/entries",status="200",service="api",instance="api-1"\} \d+/);
  t.match(metrics.text, /inflow_queue_jobs\{state="waiting",service="api",instance="api-1"\} \d+/);
  t.match(metrics.text, /inflow_queue_oldest_waiting_age_seconds\{service="api",instance="api-1"\} \d+(\.\d+)?/);
  t.match(metrics.text, /inflow_api_ready\{service="api",instance="api-1"\} 1/);
  t.notMatch(metrics.text, /route="\/metrics"/, 'scrapes are not counted as API requests');

  // Issue 15: /metrics was public under other spellings (Express ignores case and a trailing slash).
  for (const path of ['/metrics', '/metrics/', '/Metrics', '/METRICS', '/metrics?format=text', '/%6detrics', '//metrics']) {
    const result = await http(`${base}${path}`);
    t.equal(result.status, 404, `public ${path}: 404`);
    t.notMatch(result.text, /inflow_|nodejs_|process_/, `public ${path}: no metrics`);
  }
  const wrong = await http(`${ops}/readyz`, { method: 'DELETE' });
  t.equal(wrong.status, 405);
  t.equal(wrong.headers.get('allow'), 'GET, HEAD');
  t.equal((await http(`${ops}/api/entries`)).status, 404, 'the public routes are not on the ops port');

  // The compose health check: deploy/node/healthcheck.sh PATH PORT, against the ops port.
  const probe = (...args: string[]) => spawnSync('bash', [join(REPO_ROOT, 'deploy/node/healthcheck.sh'), ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '' } });
  t.equal(probe('/readyz', String(opsPort)).status, 0, 'healthcheck.sh /readyz OPS_PORT: healthy');
  t.equal(probe('/nope', String(opsPort)).status, 1, 'a 404 is unhealthy');
  t.equal(probe('/readyz', 'x1').status, 2, 'a port that is not a number is refused');
});

t.test('request ids', async (t) => {
  const given = await http(`${base}/healthz`, { headers: { 'x-request-id': 'trace-abc.123:4' } });
  t.equal(given.headers.get('x-request-id'), 'trace-abc.123:4', 'a given id is echoed');
  const generated = await http(`${base}/healthz`);
  const other = await http(`${base}/healthz`);
  t.match(generated.headers.get('x-request-id'), UUID, 'an id is generated');
  t.not(generated.headers.get('x-request-id'), other.headers.get('x-request-id'), 'one per request');
  for (const bad of ['has space', 'x'.repeat(129), 'quote"d', '<script>']) {
    const result = await http(`${base}/healthz`, { headers: { 'x-request-id': bad } });
    t.match(result.headers.get('x-request-id'), UUID, `an unsafe id (${bad.slice(0, 10)}) is replaced`);
  }
  const onError = await http(`${base}/api/entries/nope`, { headers: { 'x-request-id': 'err-1' } });
  t.equal(onError.status, 400);
  t.equal(onError.headers.get('x-request-id'), 'err-1', 'echoed on errors too');
});

t.test('the worker health server', async (t) => {
  const worker = stack.workers[0];
  if (worker === undefined) throw new Error('no worker');
  const health = await http(`${worker.url}/healthz`);
  t.equal(health.status, 200);
  t.match(health.body, { status: 'ok', instanceId: 'worker-1' });
  t.equal(health.headers.get('x-instance-id'), 'worker-1');
  const ready = await http(`${worker.url}/readyz`);
  t.equal(ready.status, 200);
  t.match(ready.body, { status: 'ready', checks: { redis: { ok: true }, postgres: { ok: true }, consumer: { ok: true } } });
  const missing = await http(`${worker.url}/nope`);
  t.equal(missing.status, 404);
  t.match(missing.body, { error: { code: 'not_found' } });
  const wrong = await http(`${worker.url}/healthz`, { method: 'POST' });
  t.equal(wrong.status, 405);
  t.match(wrong.body, { error: { code: 'method_not_allowed' } });
  t.equal(wrong.headers.get('x-instance-id'), 'worker-1');
  t.equal((await http(`${worker.url}/healthz`, { method: 'HEAD' })).status, 200);
});

// Last: every response the tests above received from the API.
t.test('every API response carried X-Instance-Id and X-Request-Id; no error leaked internals', async (t) => {
  const { checked, problems } = seenResponseProblems(base, 'api-1');
  t.ok(checked > MIN_CHECKED, `${checked} responses checked`);
  for (const problem of problems) t.fail(problem);
  t.pass('checked');
});
