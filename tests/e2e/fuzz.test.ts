/**
 * Bad input, property-based (fast-check), through nginx against the compose stack: random and
 * hostile bodies, content types and encodings, sizes up to and past 16 KiB, unicode edge cases
 * (NUL, lone surrogates, RTL, emoji, very long lines), SQL- and HTML-looking text, malformed ids
 * and cursors, odd methods and headers. Every answer: a valid entry gets 202, anything else a 4xx
 * in the one error shape {"error":{"code","message"}}, never a 5xx; afterwards exactly the
 * accepted entries are in PostgreSQL, each with the text the API promised.
 *
 * Each request goes over a connection of its own (no keep-alive), as many independent clients
 * would. nginx's rate limit (per client address, nginx.conf) is far above this load and is
 * tested in edge-capacity.test.ts and chaos scenario 10, not here. The inputs are in
 * fuzz/arbitraries.ts, the rules every answer is checked against in fuzz/oracle.ts.
 *
 * FUZZ_RUNS scales the number of runs of every property (default 1). Runs against the stack that
 * e2e/run.ts started; the row count assumes that no other file writes meanwhile (tap --jobs=1).
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import t from 'tap';
import { BASE_URL, countRows, queueIsEmpty, rawRequest, waitFor } from '@inflow/test-support';
import { CONTENT_TYPES, EDGE, edgeText, printable } from './fuzz/arbitraries.ts';
import { expectedEntry, expectStatus, wellFormed, type Answer } from './fuzz/oracle.ts';

const SCALE = Number(process.env['FUZZ_RUNS'] ?? '1');
const runs = (n: number): number => Math.max(1, Math.round(n * SCALE));
const BODY_LIMIT = 16 * 1024;

/** Statuses seen, by property: each test shows what it exercised. */
let seen = new Map<number, number>();

/** One request over its own connection; any method, exactly these headers. */
async function send(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer | string): Promise<Answer> {
  const answer = await rawRequest(`${BASE_URL}${path}`, { method, headers, ...(body === undefined ? {} : { body }), timeoutMs: 20_000 });
  seen.set(answer.status, (seen.get(answer.status) ?? 0) + 1);
  return answer;
}

/** The accepted entries by id (a replayed Idempotency-Key answers with an id already here). */
const accepted = new Map<string, { author: string; message: string }>();
let rowsBefore = 0;

t.before(async () => {
  // The stack is shared with the other e2e files: their entries must be written before the
  // count that this file's rows are measured against.
  await waitFor(queueIsEmpty, { timeoutMs: 60_000, what: 'the queue to drain before the fuzzing', intervalMs: 250 });
  rowsBefore = await countRows();
});
t.beforeEach(() => {
  seen = new Map();
});

/** Asserts that the property's answers included each of `statuses`, and reports them all. */
function exercised(t: { ok: (value: unknown, message: string) => void; comment: (message: string) => void }, statuses: readonly number[]): void {
  const counts = [...seen.entries()].sort(([a], [b]) => a - b).map(([status, count]) => `${status}: ${count}`);
  t.comment(`answers: ${counts.join(', ')}`);
  for (const status of statuses) t.ok(seen.has(status), `some answers were ${status}`);
}

/** POSTs a JSON body; checks the answer against the oracle; keeps what was accepted. */
async function postAndCheck(value: unknown, serialised: string, contentType = 'application/json'): Promise<void> {
  const answer = await send('POST', '/api/entries', { 'content-type': contentType }, serialised);
  const size = Buffer.byteLength(serialised, 'utf8');
  const entry = expectedEntry(value);
  if (size > BODY_LIMIT) {
    expectStatus([413], 'POST', '/api/entries', answer);
  } else if (entry === undefined) {
    expectStatus([400], 'POST', '/api/entries', answer);
  } else {
    expectStatus([202], 'POST', '/api/entries', answer);
    const { id } = JSON.parse(answer.text) as { id: string };
    accepted.set(id, entry);
  }
}

t.test('author and message: edge-case text is accepted exactly when the rules allow it', async (t) => {
  await fc.assert(
    fc.asyncProperty(edgeText, edgeText, async (author, message) => {
      await postAndCheck({ author, message }, JSON.stringify({ author, message }));
    }),
    { numRuns: runs(300) },
  );
  exercised(t, [202, 400]);
});

t.test('valid entries with hostile-looking text are accepted and kept verbatim', async (t) => {
  const safe = fc
    .array(fc.constantFrom(...EDGE.filter((text) => expectedEntry({ author: `a${text}a`, message: 'm' }) !== undefined), 'plain', 'ünïcödé'), {
      minLength: 1,
      maxLength: 4,
    })
    .map((parts) => `a ${parts.join(' ')} z`);
  await fc.assert(
    fc.asyncProperty(safe, safe, async (author, message) => {
      await postAndCheck({ author, message }, JSON.stringify({ author, message }));
    }),
    { numRuns: runs(60) },
  );
  exercised(t, [202]);
});

t.test('any JSON value as the body: 202 only for a valid entry, never a 5xx', async (t) => {
  const entryish = fc.record(
    { author: fc.oneof(edgeText, fc.jsonValue()), message: fc.oneof(edgeText, fc.jsonValue()), extra: fc.jsonValue() },
    { requiredKeys: [] },
  );
  const hostileKeys = fc.constantFrom(
    '{"__proto__":{"admin":true},"author":"a","message":"m"}',
    '{"constructor":{"prototype":{"x":1}},"author":"a","message":"m"}',
    '{"author":"a","message":"m","author":"b"}',
    '{"author":"a","message":["m"]}',
    '{"author":1e999,"message":"m"}',
    `${'['.repeat(5000)}${']'.repeat(5000)}`,
    `{"author":"a","message":"m"${' '.repeat(15000)}}`,
  );
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.jsonValue(), entryish, hostileKeys.map((text) => ({ raw: text }))), async (value) => {
      if (typeof value === 'object' && value !== null && 'raw' in value && typeof value.raw === 'string' && Object.keys(value).length === 1) {
        const raw = value.raw;
        let parsed: unknown;
        try {
          parsed = JSON.parse(raw);
        } catch {
          parsed = undefined;
        }
        // A repeated key: JSON.parse keeps the last one, and so does the API.
        await postAndCheck(parsed, raw);
        return;
      }
      await postAndCheck(value, JSON.stringify(value));
    }),
    { numRuns: runs(200) },
  );
  exercised(t, [400]);
});

t.test('raw bodies: any bytes, content type, encoding and size around the 16 KiB limit', async (t) => {
  const valid = JSON.stringify({ author: 'fuzz', message: 'raw' });
  const body = fc.oneof(
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes)),
    fc.string({ unit: 'binary', maxLength: 300 }).map((text) => Buffer.from(text, 'utf8')),
    fc.integer({ min: 1, max: valid.length - 1 }).map((n) => Buffer.from(valid.slice(0, n))),
    fc.integer({ min: BODY_LIMIT - 40, max: BODY_LIMIT + 40 }).map((n) => Buffer.from(`{"author":"fuzz","message":"${'m'.repeat(Math.max(n - 30, 0))}"}`)),
    fc.integer({ min: BODY_LIMIT + 1, max: 200_000 }).map((n) => Buffer.alloc(n, 'a')),
    fc.constant(Buffer.from(valid)),
    fc.constant(Buffer.alloc(0)),
  );
  const encoding = fc.constantFrom(undefined, 'gzip', 'deflate', 'br', 'identity', 'zstd', 'x-unknown', 'gzip, gzip');
  await fc.assert(
    fc.asyncProperty(body, fc.constantFrom(...CONTENT_TYPES), encoding, fc.boolean(), async (bytes, contentType, contentEncoding, compress) => {
      const headers: Record<string, string> = {};
      if (contentType !== '') headers['content-type'] = contentType;
      if (contentEncoding !== undefined) headers['content-encoding'] = contentEncoding;
      const payload = contentEncoding === 'gzip' && compress ? gzipSync(bytes) : bytes;
      const answer = await send('POST', '/api/entries', headers, payload);
      expectStatus([202, 400, 413, 415], 'POST', '/api/entries', answer);
      if (answer.status === 202) {
        const { id } = JSON.parse(answer.text) as { id: string };
        accepted.set(id, { author: 'fuzz', message: 'raw' });
      }
    }),
    {
      numRuns: runs(200),
      // Random bytes rarely form a valid entry: one known-good sample makes sure a 202 is among
      // the answers on every run (a run with none failed CI once).
      examples: [[Buffer.from(JSON.stringify({ author: 'fuzz', message: 'raw' })), 'application/json', undefined, false]],
    },
  );
  exercised(t, [202, 400, 413, 415]);
});

t.test('malformed entry ids: 400 or 404, never a 5xx', async (t) => {
  const id = fc.oneof(
    fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).map(encodeURIComponent),
    fc.uuid().map((uuid) => uuid.toUpperCase()),
    fc.uuid(),
    fc.constantFrom('%', '%zz', '%E0%A4%A', '..', '%2e%2e', '%2F', '00000000-0000-0000-0000-000000000000', "1'%20OR%201=1", '%00', 'null', 'undefined'),
    fc.integer({ min: 1, max: 3000 }).map((n) => 'a'.repeat(n)),
  );
  await fc.assert(
    fc.asyncProperty(id, async (value) => {
      const path = `/api/entries/${value}`;
      expectStatus([400, 404], 'GET', path, await send('GET', path));
    }),
    { numRuns: runs(150) },
  );
  exercised(t, [400, 404]);
});

t.test('malformed paging: limit and before give 200 or 400, never a 5xx', async (t) => {
  const first = await send('GET', '/api/entries?limit=1');
  const realCursor = (JSON.parse(first.text) as { next: string | null }).next ?? 'MjAyNi0wMS0wMVQwMDowMDowMC4wMDBafDAxOTAwMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMA';
  const limit = fc.oneof(fc.integer({ min: -5, max: 300 }).map(String), printable, fc.constantFrom('1e2', '0x10', '50.5', '', ' 5', '5 '));
  const before = fc.oneof(
    printable,
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 80 }).map((text) => Buffer.from(text).toString('base64url')),
    fc.tuple(fc.string({ maxLength: 30 }), fc.uuid()).map(([time, uuid]) => Buffer.from(`${time}|${uuid}`).toString('base64url')),
    fc.integer({ min: 1, max: realCursor.length }).map((n) => realCursor.slice(0, n)),
    fc.constant(realCursor),
  );
  await fc.assert(
    fc.asyncProperty(fc.option(limit), fc.option(before), fc.boolean(), async (l, b, repeat) => {
      const query = new URLSearchParams();
      if (l !== null) query.append('limit', l);
      if (b !== null) query.append('before', b);
      if (repeat && l !== null) query.append('limit', l);
      const path = `/api/entries?${query.toString()}`;
      expectStatus([200, 400], 'GET', path, await send('GET', path));
    }),
    { numRuns: runs(150) },
  );
  exercised(t, [200, 400]);
});

t.test('odd methods, paths and headers: never a 5xx, errors in the one shape', async (t) => {
  const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'SEARCH', 'QUERY', 'PURGE', 'FOO', 'X-CUSTOM');
  const path = fc.constantFrom('/api/entries', '/api/entries/0190d2a0-0000-7000-8000-000000000000', '/api/instance', '/api/stats', '/healthz', '/readyz', '/', '/nope', '/metrics', '/api', '/api/entries/', '//api//entries', '/api/entries?limit=2', '/%2e%2e/%2e%2e/etc/passwd', '/_edge/400');
  const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,24}$/).filter(
    (name) => !['content-length', 'transfer-encoding', 'host', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive', 'proxy-connection'].includes(name.toLowerCase()),
  );
  const headerValue = fc.oneof(printable, fc.integer({ min: 4_000, max: 12_000 }).map((n) => 'v'.repeat(n)));
  const special = fc.record(
    {
      'content-type': fc.constantFrom(...CONTENT_TYPES.filter((type) => type !== '')),
      'idempotency-key': fc.oneof(printable, fc.constantFrom('k', 'x'.repeat(129), 'ключ')),
      'x-request-id': fc.oneof(printable, fc.constant('r'.repeat(200))),
      'x-forwarded-for': fc.oneof(fc.ipV4(), printable),
      accept: fc.constantFrom('application/json', 'text/html', '*/*', 'text/event-stream', 'image/png'),
      'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', '*'),
    },
    { requiredKeys: [] },
  );
  const body = fc.oneof(fc.constant(undefined), fc.constant(JSON.stringify({ author: 'odd', message: 'method' })), printable);
  await fc.assert(
    fc.asyncProperty(method, path, fc.dictionary(headerName, headerValue, { maxKeys: 3 }), special, body, async (m, p, extra, known, b) => {
      // The header helper folds names to lower case; a non-ASCII value cannot be sent at all.
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries({ ...extra, ...known })) {
        if (/^[\x20-\x7e]*$/.test(value)) headers[name.toLowerCase()] = value;
      }
      const answer = await send(m, p, headers, b);
      wellFormed(m, p, answer);
      if (answer.status === 202) {
        const { id } = JSON.parse(answer.text) as { id: string };
        accepted.set(id, { author: 'odd', message: 'method' });
      }
    }),
    { numRuns: runs(300) },
  );
  exercised(t, [200, 400, 404, 405]);
});

t.test('exactly the accepted entries are persisted, each with the text it was promised', async (t) => {
  await waitFor(
    async () => {
      const answer = await send('GET', '/api/stats');
      const { queue } = JSON.parse(answer.text) as { queue: { waiting: number; active: number; delayed: number } };
      return queue.waiting + queue.active + queue.delayed === 0;
    },
    { timeoutMs: 60_000, what: 'the queue to drain', intervalMs: 250 },
  );
  let mismatched = 0;
  for (const [id, entry] of accepted) {
    const answer = await send('GET', `/api/entries/${id}`);
    const body = JSON.parse(answer.text) as { status?: string; author?: string; message?: string };
    if (answer.status !== 200 || body.status !== 'persisted' || body.author !== entry.author || body.message !== entry.message) {
      mismatched += 1;
      if (mismatched <= 5) t.fail(`entry ${id}: ${answer.status} ${answer.text.slice(0, 300)} (expected ${JSON.stringify(entry).slice(0, 300)})`);
    }
  }
  t.equal(mismatched, 0, `all ${accepted.size} accepted entries persisted verbatim`);
  t.ok(accepted.size > 20, `${accepted.size} entries were accepted along the way`);
  t.equal((await countRows()) - rowsBefore, accepted.size, 'and no other row was written: nothing invalid was persisted');
});
