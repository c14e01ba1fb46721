/**
 * The HTTP contract of one API process (its public port and its ops port) and the worker's
 * health server, against real PostgreSQL and Redis: every endpoint, status code and malformed
 * input the issues list.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import t from 'tap';
import {
  freePort,
  http,
  postEntry,
  rawRequest,
  REPO_ROOT,
  seenResponses,
  startStack,
  UUID,
  UUID_V7,
  waitForEntryStatus,
  type EntryPage,
  type EntryView,
  type ErrorBody,
} from '@inflow/test-support';

t.setTimeout(120_000);

// Its own ops port: OPS_PORT's default (8081) would collide between test files run at once.
const opsPort = await freePort();
const stack = await startStack(t, { apis: 1, workers: 0, env: { OPS_PORT: String(opsPort) } });
const api = stack.apis[0];
if (api === undefined) throw new Error('no API');
const base = api.url;
const ops = `http://127.0.0.1:${String(opsPort)}`;

const KEYS = (value: unknown) => Object.keys(value as object).sort();

/** Asserts the one error shape: {"error": {"code", "message", "field"?}} and nothing else. */
function assertError(t: Tap, result: { status: number; body: unknown; text: string }, status: number, code: string, field?: string) {
  t.equal(result.status, status, `status ${status} (${result.text.slice(0, 200)})`);
  const body = result.body as ErrorBody;
  t.same(KEYS(body), ['error'], 'only "error" at the top');
  t.same(KEYS(body.error), field === undefined ? ['code', 'message'] : ['code', 'field', 'message'], 'error keys');
  t.equal(body.error.code, code);
  t.type(body.error.message, 'string');
  t.ok(body.error.message.length > 0, 'a message');
  if (field !== undefined) t.equal(body.error.field, field, `names the field ${field}`);
}
type Tap = Parameters<Parameters<typeof t.test>[0]>[0];

t.test('POST /api/entries accepts an entry: 202 {id, status, acceptedBy}', async (t) => {
  const result = await postEntry(base, { author: '  Ada Lovelace ', message: 'Hello\r\nworld' });
  t.equal(result.status, 202);
  t.same(KEYS(result.body), ['acceptedBy', 'id', 'status']);
  t.match(result.body, { status: 'queued', acceptedBy: 'api-1' });
  t.match(result.body.id, UUID_V7, 'a UUID v7');
  t.equal(result.headers.get('location'), `/api/entries/${result.body.id}`);
  t.match(result.headers.get('content-type'), /^application\/json; charset=utf-8$/);

  // No worker yet: the entry is in the queue, and GET says so from there.
  const queued = await http<EntryView>(`${base}/api/entries/${result.body.id}`);
  t.equal(queued.status, 200);
  t.match(queued.body, {
    status: 'queued',
    id: result.body.id,
    author: 'Ada Lovelace',
    message: 'Hello\nworld',
    acceptedBy: 'api-1',
    persistedBy: null,
    persistedAt: null,
    attemptsMade: 0,
  });
  t.notOk('failedReason' in queued.body, 'no failedReason unless failed');
  t.ok(!Number.isNaN(Date.parse(queued.body.createdAt)), 'createdAt is a time');

  // Ids are unique and increase with time (v7).
  const second = await postEntry(base, { author: 'b', message: 'second' });
  t.not(second.body.id, result.body.id);
  t.ok(second.body.id > result.body.id, 'v7 ids sort by acceptance');

  // Now a worker persists both.
  await stack.addWorker();
  const persisted = await waitForEntryStatus(base, result.body.id, 'persisted');
  t.same(KEYS(persisted), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy', 'status']);
  t.match(persisted, { id: result.body.id, author: 'Ada Lovelace', message: 'Hello\nworld', acceptedBy: 'api-1', persistedBy: 'worker-1' });
  t.equal(persisted.createdAt, queued.body.createdAt, 'createdAt is the acceptance time, kept through the queue');
  t.ok(Date.parse(persisted.persistedAt ?? '') >= Date.parse(persisted.createdAt), 'persisted after accepted');
  await waitForEntryStatus(base, second.body.id, 'persisted');

  // Completed jobs do not stay in Redis.
  await t.resolveMatch(stack.redis.client.exists(`bull:entries:${result.body.id}`), 0, 'the completed job is removed from Redis');
  await t.resolveMatch(stack.redis.client.zcard('bull:entries:completed'), 0, 'no completed set kept');
});

t.test('GET /api/entries/:id says "processing" while the worker writes the entry', async (t) => {
  // A table lock holds the worker's INSERT, so the job stays active long enough to be seen.
  const blocker = new pg.Client({ host: '127.0.0.1', port: stack.pg.port, user: 'inflow', database: 'inflow' });
  await blocker.connect();
  t.teardown(() => blocker.end().catch(() => undefined));
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE entries IN SHARE ROW EXCLUSIVE MODE');
  const accepted = await postEntry(base, { author: 'slow', message: 'held by a lock' });
  const processing = await waitForEntryStatus(base, accepted.body.id, 'processing');
  t.match(processing, { status: 'processing', id: accepted.body.id, author: 'slow', acceptedBy: 'api-1', persistedBy: null, persistedAt: null });
  await blocker.query('COMMIT');
  t.match(await waitForEntryStatus(base, accepted.body.id, 'persisted'), { persistedBy: 'worker-1' });
});

t.test('POST body limits: 16 KiB', async (t) => {
  const small = JSON.stringify({ author: 'pad', message: 'exactly 16 KiB with whitespace' });
  const exact = small.slice(0, -1) + ' '.repeat(16 * 1024 - Buffer.byteLength(small)) + '}';
  t.equal(Buffer.byteLength(exact), 16 * 1024);
  const atLimit = await postEntry(base, exact);
  t.equal(atLimit.status, 202, 'a body of exactly 16384 bytes is read');

  const over = exact.slice(0, -1) + ' }';
  t.equal(Buffer.byteLength(over), 16 * 1024 + 1);
  assertError(t, await postEntry(base, over), 413, 'payload_too_large', 'body');

  const huge = JSON.stringify({ author: 'x', message: 'y'.repeat(200_000) });
  assertError(t, await postEntry(base, huge), 413, 'payload_too_large', 'body');

  // A multi-byte message of 2000 characters fits in the byte limit.
  const emoji = await postEntry(base, { author: '\u{1F600}'.repeat(80), message: '\u{1F600}'.repeat(2000) });
  t.equal(emoji.status, 202, '2000 four-byte characters are accepted');
});

t.test('POST content types: 415 unless JSON', async (t) => {
  const body = JSON.stringify({ author: 'a', message: 'b' });
  // fetch sends a string as text/plain;charset=UTF-8.
  assertError(t, await http(`${base}/api/entries`, { method: 'POST', body }), 415, 'unsupported_media_type', 'Content-Type');
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) {
    const result = await http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': type }, body });
    assertError(t, result, 415, 'unsupported_media_type', 'Content-Type');
  }
  // No Content-Type at all, with a body and without.
  const none = await rawRequest(`${base}/api/entries`, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body) }, body });
  assertError(t, { ...none, body: JSON.parse(none.text) }, 415, 'unsupported_media_type', 'Content-Type');
  const empty = await rawRequest(`${base}/api/entries`, { method: 'POST', headers: { 'content-length': 0 } });
  assertError(t, { ...empty, body: JSON.parse(empty.text) }, 415, 'unsupported_media_type', 'Content-Type');
  // A JSON body in another charset is refused; UTF-8 spelled out is fine; the type is case-insensitive.
  const latin1 = await http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json; charset=latin1' }, body });
  assertError(t, latin1, 415, 'unsupported_media_type', 'Content-Type');
  t.equal((await postEntry(base, body, { 'content-type': 'application/json; charset=utf-8' })).status, 202);
  t.equal((await postEntry(base, body, { 'content-type': 'Application/JSON' })).status, 202);
  t.equal((await postEntry(base, body, { 'content-type': 'application/json; charset=UTF-8' })).status, 202, 'the charset is case-insensitive');
  // Issue 15: exactly one charset. utf-16 was decoded and accepted (202) while latin1 was refused.
  for (const charset of ['utf-16', 'UTF-16', 'utf-16be', 'utf-32', 'utf8', 'ascii']) {
    const other = await http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': `application/json; charset=${charset}` }, body });
    assertError(t, other, 415, 'unsupported_media_type', 'Content-Type');
    t.match((other.body as ErrorBody).error.message, /UTF-8/, `charset=${charset}: the message says which one`);
  }
  const utf16 = await http(`${base}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-16le' },
    body: Buffer.from(JSON.stringify({ author: 'utf16', message: 'in UTF-16' }), 'utf16le'),
  });
  assertError(t, utf16, 415, 'unsupported_media_type', 'Content-Type');
  // A non-JSON upload over the size limit is refused for its type, before it is read.
  assertError(t, await http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) }), 415, 'unsupported_media_type', 'Content-Type');
});

t.test('POST bodies that are not an entry: 400 naming the field', async (t) => {
  for (const text of ['{', '{"author": "a", "message": }', "{'author': 'a'}", 'author=a&message=b', 'null', '"text"', '42', 'true']) {
    assertError(t, await postEntry(base, text), 400, 'invalid_json', 'body');
  }
  assertError(t, await postEntry(base, '[]'), 400, 'invalid_field', 'body');
  assertError(t, await postEntry(base, [{ author: 'a', message: 'b' }]), 400, 'invalid_field', 'body');

  const empty = await postEntry<ErrorBody>(base, '');
  t.equal(empty.status, 400, 'an empty JSON body is refused');
  t.equal(empty.body.error.code, 'invalid_field');

  const cases: readonly (readonly [unknown, string, RegExp])[] = [
    [{ message: 'm' }, 'author', /author is required/],
    [{ author: 'a' }, 'message', /message is required/],
    [{}, 'author', /author is required/],
    [{ author: 1, message: 'm' }, 'author', /author must be a string/],
    [{ author: 'a', message: ['m'] }, 'message', /message must be a string/],
    [{ author: null, message: 'm' }, 'author', /author must be a string/],
    [{ author: '   ', message: 'm' }, 'author', /1 to 80 characters/],
    [{ author: 'a'.repeat(81), message: 'm' }, 'author', /1 to 80 characters.*got 81/],
    [{ author: 'a', message: 'm'.repeat(2001) }, 'message', /1 to 2000 characters.*got 2001/],
    [{ author: 'a', message: '\n\n' }, 'message', /1 to 2000 characters/],
    [{ author: 'a\u0007b', message: 'm' }, 'author', /control characters/],
    [{ author: 'a\nb', message: 'm' }, 'author', /control characters/],
    [{ author: 'a', message: 'tab\there' }, 'message', /control characters other than newline/],
    [{ author: 'a', message: 'nul\u0000here' }, 'message', /control characters/],
    [{ author: 'a', message: 'del\u007f' + 'x' }, 'message', /control characters/],
    [{ author: 'a', message: 'm', extra: true }, 'extra', /unknown field "extra"/],
    [{ author: 'a', message: 'm', id: randomUUID() }, 'id', /unknown field "id"/],
  ];
  for (const [body, field, message] of cases) {
    const result = await postEntry<ErrorBody>(base, body);
    assertError(t, result, 400, 'invalid_field', field);
    t.match(result.body.error.message, message, `${JSON.stringify(body).slice(0, 50)}: ${result.body.error.message}`);
  }
  // Issue 15: invisible formatting characters (bidi controls, zero-width ones) in author.
  for (const char of ['\u202e', '\u2067', '\u200f', '\u061c', '\u200b', '\u200d', '\u2060']) {
    const result = await postEntry<ErrorBody>(base, { author: `ev${char}il`, message: 'm' });
    assertError(t, result, 400, 'invalid_field', 'author');
    t.match(result.body.error.message, /invisible formatting characters .*\(found U\+[0-9A-F]{4}\)$/);
  }
  // Issue 15: invalid UTF-8 was stored as U+FFFD; it is refused, naming the body.
  for (const bytes of [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe9]]) {
    const raw = Buffer.concat([Buffer.from('{"author":"bytes","message":"a'), Buffer.from(bytes), Buffer.from('b"}')]);
    const result = await http<ErrorBody>(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: raw });
    assertError(t, result, 400, 'invalid_json', 'body');
    t.match(result.body.error.message, /not valid UTF-8/);
  }
  // A lone surrogate, escaped in JSON (it cannot be sent as UTF-8).
  const lone = await postEntry<ErrorBody>(base, '{"author":"a","message":"x\\ud800y"}');
  assertError(t, lone, 400, 'invalid_field', 'message');
  t.match(lone.body.error.message, /invalid Unicode/);
  // The same rule as the database: RTL text and emoji are fine.
  t.equal((await postEntry(base, { author: 'שלום', message: 'مرحبا \u{1F44B}' })).status, 202);
});

t.test('Idempotency-Key', async (t) => {
  const body = { author: 'retry', message: 'sent twice' };
  const key = `key-${randomUUID()}`;
  const first = await postEntry(base, body, { 'idempotency-key': key });
  t.equal(first.status, 202);
  t.equal(first.headers.get('idempotent-replayed'), null);
  const again = await postEntry(base, { author: ' retry ', message: 'sent twice\n' }, { 'idempotency-key': key });
  t.equal(again.status, 202, 'the same entry after trimming is the same request');
  t.equal(again.body.id, first.body.id, 'the same id');
  t.equal(again.headers.get('idempotent-replayed'), 'true');

  const reused = await postEntry<ErrorBody>(base, { author: 'retry', message: 'something else' }, { 'idempotency-key': key });
  assertError(t, reused, 422, 'idempotency_key_reused', 'Idempotency-Key');

  for (const bad of ['x'.repeat(129), 'has space', 'tab\tkey', '', 'caf\u00e9']) {
    const result = await rawRequest(`${base}/api/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': bad },
      body: JSON.stringify(body),
    });
    assertError(t, { ...result, body: JSON.parse(result.text) }, 400, 'invalid_field', 'Idempotency-Key');
  }
  const longest = await postEntry(base, body, { 'idempotency-key': '~'.repeat(128) });
  t.equal(longest.status, 202, '128 visible characters');
  t.not(longest.body.id, first.body.id, 'another key, another entry');
  await waitForEntryStatus(base, first.body.id, 'persisted');
  await waitForEntryStatus(base, longest.body.id, 'persisted');
  const replayAfterPersist = await postEntry(base, body, { 'idempotency-key': key });
  t.equal(replayAfterPersist.body.id, first.body.id, 'still the same id once persisted');
  const rows = (await stack.rows()).filter((row) => row.author === 'retry');
  t.same(rows.map((row) => row.id).sort(), [first.body.id, longest.body.id].sort(), 'one row per key');
});

t.test('unusual requests: client errors, never a 500', async (t) => {
  const body = JSON.stringify({ author: 'zip', message: 'compressed' });
  const post = async (headers: Record<string, string | number>, payload: Buffer | string) => {
    const result = await rawRequest(`${base}/api/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      body: payload,
    });
    t.equal(result.headers['x-instance-id'], 'api-1');
    return { ...result, body: JSON.parse(result.text) as unknown };
  };
  t.equal((await post({ 'content-encoding': 'gzip' }, gzipSync(body))).status, 202, 'a gzipped body is read');
  for (const encoding of ['gzip', 'deflate', 'br']) {
    const result = await post({ 'content-encoding': encoding }, 'not compressed at all');
    t.equal(result.status, 400, `${encoding} that does not decompress: 400 (${result.text})`);
  }
  // The limit applies to the decompressed body: a small zip of a large body is refused.
  assertError(t, await post({ 'content-encoding': 'gzip' }, gzipSync(' '.repeat(1_000_000) + body)), 413, 'payload_too_large', 'body');
  const unknownEncoding = await post({ 'content-encoding': 'compress' }, body);
  t.equal(unknownEncoding.status, 415, `an unknown Content-Encoding: 415 (${unknownEncoding.text})`);
  t.match(unknownEncoding.body, { error: { code: 'unsupported_media_type', field: 'Content-Encoding', message: /gzip, deflate, br/ } });
  const deep = await post({}, '['.repeat(5_000) + ']'.repeat(5_000));
  assertError(t, deep, 400, 'invalid_field', 'body');
  // Headers over Node's limit never reach Express; the answer still has the one error shape.
  const huge = await rawRequest(`${base}/healthz`, { headers: { 'x-padding': 'x'.repeat(20_000) } });
  t.equal(huge.status, 431);
  t.equal(huge.headers['x-instance-id'], 'api-1', 'X-Instance-Id even on a 431');
  t.same(JSON.parse(huge.text) as unknown, { error: { code: 'headers_too_large', message: 'the request headers are too large' } });
  const options = await http(`${base}/api/entries`, { method: 'OPTIONS' });
  assertError(t, options, 405, 'method_not_allowed');
  t.equal(options.headers.get('allow'), 'GET, POST, HEAD');
});

t.test('GET /api/entries: newest first, paged', async (t) => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i += 1) {
    const result = await postEntry(base, { author: 'pager', message: `page entry ${i}` });
    ids.push(result.body.id);
  }
  for (const id of ids) await waitForEntryStatus(base, id, 'persisted');

  const all = await http<EntryPage>(`${base}/api/entries`);
  t.equal(all.status, 200);
  t.same(KEYS(all.body), ['entries', 'next']);
  t.equal(all.body.next, null, 'fewer than 50 rows: no next page');
  const total = await stack.countRows();
  t.equal(all.body.entries.length, total, 'default limit covers them');
  for (const entry of all.body.entries) {
    t.same(KEYS(entry), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy']);
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
  const fromApi = seenResponses.filter((response) => response.url.startsWith(base));
  t.ok(fromApi.length > 100, `${fromApi.length} responses checked`);
  for (const response of fromApi) {
    const where = `${response.method} ${response.url.slice(base.length)} → ${response.status}`;
    if (response.headers.get('x-instance-id') !== 'api-1') t.fail(`${where}: X-Instance-Id ${response.headers.get('x-instance-id')}`);
    if (response.headers.get('x-request-id') === null) t.fail(`${where}: no X-Request-Id`);
    if (response.status >= 500) t.fail(`${where}: a server error`);
    if (response.status >= 400 && response.method !== 'HEAD') {
      if (/\bat .+:\d+:\d+|node_modules|\/dist\/|\/src\/|Error:/.test(response.text)) t.fail(`${where}: leaks internals: ${response.text}`);
      if (!response.headers.get('content-type')?.startsWith('application/json')) t.fail(`${where}: not JSON`);
    }
    // Issue 15: no public answer names the host, an address or a dependency's raw error.
    if (hostname().length >= 4 && response.text.includes(hostname())) t.fail(`${where}: names the host ${hostname()}`);
    if (/127\.0\.0\.1|ECONNREFUSED|ETIMEDOUT|"checks"|"ms"/.test(response.text)) t.fail(`${where}: leaks an address or readiness detail: ${response.text.slice(0, 200)}`);
  }
  t.pass('checked');
});
