/**
 * The HTTP contract of one API process for writing entries, against real PostgreSQL and Redis:
 * POST /api/entries with every status code and malformed input the issues list (body limits,
 * content types and encodings, fields, Idempotency-Key). Reading, routing, health and the ops
 * port are api-read.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import pg from 'pg';
import t from 'tap';
import {
  assertError,
  freePort,
  http,
  postEntry,
  rawRequest,
  seenResponseProblems,
  sortedKeys,
  startStack,
  UUID_V7,
  waitForEntryStatus,
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

// Enough that the last test sees every kind of answer above.
const MIN_CHECKED = 50;

t.test('POST /api/entries accepts an entry: 202 {id, status, acceptedBy}', async (t) => {
  const result = await postEntry(base, { author: '  Ada Lovelace ', message: 'Hello\r\nworld' });
  t.equal(result.status, 202);
  t.same(sortedKeys(result.body), ['acceptedBy', 'id', 'status']);
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
  t.same(sortedKeys(persisted), ['acceptedBy', 'author', 'createdAt', 'id', 'message', 'persistedAt', 'persistedBy', 'status']);
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

// Last: every response the tests above received from the API.
t.test('every API response carried X-Instance-Id and X-Request-Id; no error leaked internals', async (t) => {
  const { checked, problems } = seenResponseProblems(base, 'api-1');
  t.ok(checked > MIN_CHECKED, `${checked} responses checked`);
  for (const problem of problems) t.fail(problem);
  t.pass('checked');
});
