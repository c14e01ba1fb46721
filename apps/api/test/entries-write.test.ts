/**
 * POST /api/entries, the HTTP contract of writing, in this process over the API's real
 * dependencies and a PostgreSQL and Redis of this file's own: the 202, body limits, content types
 * and the one charset (UTF-8), bodies that are not an entry, Idempotency-Key, and unusual
 * requests, each answered in the one error shape. No worker runs, so an accepted entry stays a
 * job; the worker's part is tests/integration/lifecycle.test.ts.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { assertError, http, postEntry, rawRequest, seenResponseProblems, sortedKeys, UUID_V7, type EntryView, type ErrorBody } from '@inflow/test-support';
import t from 'tap';
import { createApp } from '../src/app.ts';
import { startHttpServer } from '../src/http/server.ts';
import { persist } from './utils/persist.ts';
import { startDependencies } from './utils/real-app.ts';

// Served by the server main.ts starts (startHttpServer), not a bare one: its clientError handler
// answers what Node's parser refuses (431 below).
const app = await startDependencies(t);
const server = await startHttpServer({ app: createApp(app.deps), port: 0, instanceId: 'api-test', drainState: app.deps.drainState, onDrain: () => undefined });
t.teardown(() => {
  server.server.closeAllConnections();
  server.server.close();
});
const base = `http://127.0.0.1:${String((server.server.address() as AddressInfo).port)}`;

/** Jobs waiting in the real queue: no worker runs here, so an accepted entry stays one. */
const waiting = async () => (await app.deps.queue.counts()).waiting;

// Enough that the last test sees every kind of answer above.
const MIN_CHECKED = 50;

t.test('POST /api/entries accepts an entry: 202 {id, status, acceptedBy}', async (t) => {
  const result = await postEntry(base, { author: '  Ada Lovelace ', message: 'Hello\r\nworld' });
  t.equal(result.status, 202);
  t.same(sortedKeys(result.body), ['acceptedBy', 'id', 'status']);
  t.match(result.body, { status: 'queued', acceptedBy: 'api-test' });
  t.match(result.body.id, UUID_V7, 'a UUID v7');
  t.equal(result.headers.get('location'), `/api/entries/${result.body.id}`);
  t.match(result.headers.get('content-type'), /^application\/json; charset=utf-8$/);

  // The text as the rules normalise it: trimmed, "\n" line endings.
  const queued = await http<EntryView>(`${base}/api/entries/${result.body.id}`);
  t.match(queued.body, { status: 'queued', id: result.body.id, author: 'Ada Lovelace', message: 'Hello\nworld', acceptedBy: 'api-test' });
  t.notOk('failedReason' in queued.body, 'no failedReason unless failed');

  // Ids are unique and increase with time (v7).
  const second = await postEntry(base, { author: 'b', message: 'second' });
  t.not(second.body.id, result.body.id);
  t.ok(second.body.id > result.body.id, 'v7 ids sort by acceptance');
});

t.test('POST body limits: 16 KiB', async (t) => {
  const small = JSON.stringify({ author: 'pad', message: 'exactly 16 KiB with whitespace' });
  const exact = small.slice(0, -1) + ' '.repeat(16 * 1024 - Buffer.byteLength(small)) + '}';
  t.equal(Buffer.byteLength(exact), 16 * 1024);
  const atLimit = await postEntry(base, exact);
  t.equal(atLimit.status, 202, 'a body of exactly 16384 bytes is read');

  const over = exact.slice(0, -1) + ' }';
  t.equal(Buffer.byteLength(over), 16 * 1024 + 1);
  const refused = await postEntry(base, over);
  assertError(t, refused, 413, 'payload_too_large', 'body');
  t.equal((refused.body as unknown as ErrorBody).error.message, 'the body must be at most 16384 bytes');

  const huge = JSON.stringify({ author: 'x', message: 'y'.repeat(200_000) });
  assertError(t, await postEntry(base, huge), 413, 'payload_too_large', 'body');

  // A multi-byte message of 2000 characters fits in the byte limit.
  const emoji = await postEntry(base, { author: '\u{1F600}'.repeat(80), message: '\u{1F600}'.repeat(2000) });
  t.equal(emoji.status, 202, '2000 four-byte characters are accepted');
});

t.test('POST content types: 415 unless JSON in UTF-8', async (t) => {
  const before = await waiting();
  const body = JSON.stringify({ author: 'a', message: 'b' });
  const post = (contentType: string, payload: string | Uint8Array = body) => http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': contentType }, body: payload });
  const UNSUPPORTED = {
    error: {
      code: 'unsupported_media_type',
      message: 'the body must be JSON encoded as UTF-8 (Content-Type: application/json, with no charset or charset=utf-8)',
      field: 'Content-Type',
    },
  };

  // fetch sends a string as text/plain;charset=UTF-8.
  assertError(t, await http(`${base}/api/entries`, { method: 'POST', body }), 415, 'unsupported_media_type', 'Content-Type');
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'text/json']) {
    assertError(t, await post(type), 415, 'unsupported_media_type', 'Content-Type');
  }
  // No Content-Type at all, with a body and without.
  const none = await rawRequest(`${base}/api/entries`, { method: 'POST', headers: { 'content-length': Buffer.byteLength(body) }, body });
  assertError(t, { ...none, body: JSON.parse(none.text) }, 415, 'unsupported_media_type', 'Content-Type');
  const empty = await rawRequest(`${base}/api/entries`, { method: 'POST', headers: { 'content-length': 0 } });
  assertError(t, { ...empty, body: JSON.parse(empty.text) }, 415, 'unsupported_media_type', 'Content-Type');
  // A non-JSON upload over the size limit is refused for its type, before it is read.
  assertError(t, await post('text/plain', 'x'.repeat(100_000)), 415, 'unsupported_media_type', 'Content-Type');

  // Issue 15: exactly one charset. utf-16 was decoded and accepted (202) while latin1 was refused.
  const accepted = ['application/json', 'application/json; charset=utf-8', 'application/json; charset=UTF-8', 'application/json;charset="utf-8"', 'Application/JSON', 'Application/JSON; Charset=Utf-8', 'application/json; foo=bar'];
  for (const type of accepted) t.equal((await post(type)).status, 202, `${type}: accepted`);
  const refused = [
    'application/json; charset=utf-16',
    'application/json; charset=UTF-16',
    'application/json; charset=utf-16le',
    'application/json; charset=utf-16be',
    'application/json; charset=utf-32',
    'application/json; charset=utf-7',
    'application/json; charset=utf8',
    'application/json; charset=latin1',
    'application/json; charset=iso-8859-1',
    'application/json; charset=us-ascii',
    'application/json; charset=ascii',
    'application/json; charset=""',
    'application/json; charset=utf-8; charset=utf-16',
    'application/json; charset=utf-16; charset=utf-8',
  ];
  for (const type of refused) {
    const answer = await post(type);
    t.equal(answer.status, 415, `${type}: 415`);
    t.same(answer.body, UNSUPPORTED, `${type}: the message says which charset`);
  }
  // The case: UTF-16 text under a UTF-16 label was decoded and accepted.
  const utf16 = Buffer.from(JSON.stringify({ author: 'utf16', message: 'in UTF-16' }), 'utf16le');
  for (const type of ['application/json; charset=utf-16', 'application/json; charset=utf-16le']) {
    t.same((await post(type, utf16)).body, UNSUPPORTED, `a UTF-16 body labelled ${type}`);
  }
  t.equal((await waiting()) - before, accepted.length, 'only the accepted ones were enqueued');
});

t.test('POST bodies that are not an entry: 400 naming the field', async (t) => {
  const before = await waiting();
  for (const text of ['{', '{"author": "a", "message": }', "{'author': 'a'}", 'author=a&message=b', 'null', '"text"', '42', 'true']) {
    assertError(t, await postEntry(base, text), 400, 'invalid_json', 'body');
  }
  t.same((await postEntry(base, '{"author":')).body, { error: { code: 'invalid_json', message: 'the body is not valid JSON', field: 'body' } });
  assertError(t, await postEntry(base, '[]'), 400, 'invalid_field', 'body');
  assertError(t, await postEntry(base, [{ author: 'a', message: 'b' }]), 400, 'invalid_field', 'body');
  // Nested past what the parser takes.
  assertError(t, await postEntry(base, '['.repeat(5_000) + ']'.repeat(5_000)), 400, 'invalid_field', 'body');

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
  for (const char of ['\u202e', '\u202a', '\u2066', '\u2067', '\u200e', '\u200f', '\u061c', '\u200b', '\u200d', '\ufeff', '\u2060']) {
    const hex = (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    const result = await postEntry<ErrorBody>(base, { author: `ad${char}min`, message: 'hi' });
    assertError(t, result, 400, 'invalid_field', 'author');
    t.match(result.body.error.message, new RegExp(`invisible formatting characters .*\\(found U\\+${hex}\\)$`), `U+${hex}`);
  }

  // Issue 15: invalid UTF-8 was stored as U+FFFD; it is refused, naming the body.
  const invalid: readonly (readonly [string, number[]])[] = [
    ['a lone continuation byte', [0x80]],
    ['a truncated two-byte sequence', [0xc3]],
    ['a two-byte lead and an ASCII byte', [0xc3, 0x28]],
    ['an overlong "/"', [0xc0, 0xaf]],
    ['an encoded surrogate (CESU-8)', [0xed, 0xa0, 0x80]],
    ['a code point above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]],
    ['0xFF', [0xff]],
    ['Latin-1 "é"', [0xe9]],
  ];
  for (const [what, bytes] of invalid) {
    for (const where of ['author', 'message'] as const) {
      const prefix = Buffer.from(where === 'author' ? '{"author":"ad' : '{"author":"ada","message":"he');
      const suffix = Buffer.from(where === 'author' ? 'a","message":"m"}' : 'llo"}');
      const answer = await http(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.concat([prefix, Buffer.from(bytes), suffix]) });
      t.equal(answer.status, 400, `${what} in ${where}: 400`);
      t.same(answer.body, { error: { code: 'invalid_json', message: 'the body is not valid UTF-8 (JSON must be UTF-8)', field: 'body' } });
    }
  }
  // A lone surrogate, escaped in JSON (it cannot be sent as UTF-8).
  const lone = await postEntry<ErrorBody>(base, '{"author":"a","message":"x\\ud800y"}');
  assertError(t, lone, 400, 'invalid_field', 'message');
  t.match(lone.body.error.message, /invalid Unicode/);
  t.equal(await waiting(), before, 'nothing enqueued');

  // Valid multi-byte UTF-8 is read as written: RTL text, emoji, and bidi controls in a message.
  const ok = await postEntry(base, { author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9 مرحبا \u{1F44B} \u2067مرحبا\u2069 \u200f' });
  t.equal(ok.status, 202);
  const job = (await app.deps.queue.findMany([ok.body.id])).get(ok.body.id);
  t.match(job, { author: 'Zoë 李 \u{1F600}', message: 'caf\u00e9 مرحبا \u{1F44B} \u2067مرحبا\u2069 \u200f' }, 'the job holds what was written');
  t.notOk(`${job?.author ?? ''}${job?.message ?? ''}`.includes('\ufffd'), 'no U+FFFD');
});

t.test('Idempotency-Key: a retry answers the first id and enqueues nothing', async (t) => {
  const before = await waiting();
  const body = { author: 'retry', message: 'sent twice' };
  const key = `key-${randomUUID()}`;
  const first = await postEntry(base, body, { 'idempotency-key': key });
  t.equal(first.status, 202);
  t.equal(first.headers.get('idempotent-replayed'), null, 'the first was not a replay');
  const again = await postEntry(base, { author: ' retry ', message: 'sent twice\n' }, { 'idempotency-key': key });
  t.equal(again.status, 202, 'the same entry after trimming is the same request');
  t.equal(again.body.id, first.body.id, 'the same id');
  t.equal(again.headers.get('idempotent-replayed'), 'true');
  t.equal((await waiting()) - before, 1, 'one job');

  const reused = await postEntry<ErrorBody>(base, { author: 'retry', message: 'something else' }, { 'idempotency-key': key });
  assertError(t, reused, 422, 'idempotency_key_reused', 'Idempotency-Key');
  t.equal(reused.body.error.message, 'this Idempotency-Key was already used for a different entry; use a new key for a new entry');

  for (const bad of ['x'.repeat(129), 'has space', 'tab\tkey', '', 'caf\u00e9']) {
    const result = await rawRequest(`${base}/api/entries`, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': bad }, body: JSON.stringify(body) });
    assertError(t, { ...result, body: JSON.parse(result.text) }, 400, 'invalid_field', 'Idempotency-Key');
  }
  const longest = await postEntry(base, body, { 'idempotency-key': '~'.repeat(128) });
  t.equal(longest.status, 202, '128 visible characters');
  t.not(longest.body.id, first.body.id, 'another key, another entry');

  await persist(app, first.body.id);
  const replayAfterPersist = await postEntry(base, body, { 'idempotency-key': key });
  t.equal(replayAfterPersist.body.id, first.body.id, 'still the same id once persisted');
  t.equal((await waiting()) - before, 2, 'one job per key');
});

t.test('unusual requests: client errors, never a 500', async (t) => {
  const body = JSON.stringify({ author: 'zip', message: 'compressed' });
  const post = async (headers: Record<string, string | number>, payload: Buffer | string) => {
    const result = await rawRequest(`${base}/api/entries`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), ...headers },
      body: payload,
    });
    t.equal(result.headers['x-instance-id'], 'api-test');
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
  const options = await http(`${base}/api/entries`, { method: 'OPTIONS' });
  assertError(t, options, 405, 'method_not_allowed');
  t.equal(options.headers.get('allow'), 'GET, POST, HEAD');

  // Headers over Node's limit never reach Express; the answer still has the one error shape.
  const huge = await rawRequest(`${base}/healthz`, { headers: { 'x-padding': 'x'.repeat(20_000) } });
  t.equal(huge.status, 431);
  t.equal(huge.headers['x-instance-id'], 'api-test', 'X-Instance-Id even on a 431');
  t.same(JSON.parse(huge.text) as unknown, { error: { code: 'headers_too_large', message: 'the request headers are too large' } });
});

// Last: every response the tests above received from the API.
t.test('every API response carried X-Instance-Id and X-Request-Id; no error leaked internals', async (t) => {
  const { checked, problems } = seenResponseProblems(base, 'api-test');
  t.ok(checked > MIN_CHECKED, `${String(checked)} responses checked`);
  for (const problem of problems) t.fail(problem);
  t.pass('checked');
});
