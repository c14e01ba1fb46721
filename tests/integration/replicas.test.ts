/**
 * Three API replicas (api-1..3) and one worker on one Redis and one PostgreSQL: what one replica
 * accepts, another reads back; an Idempotency-Key holds across replicas; paging is stable.
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import {
  http,
  listAll,
  mapLimit,
  postEntry,
  startStack,
  waitFor,
  waitForEntryStatus,
  waitForQueueDrained,
  type Accepted,
  type EntryView,
  type ErrorBody,
} from '@inflow/test-support';

t.setTimeout(180_000);

const stack = await startStack(t, { apis: 3, workers: 1 });
const urls = stack.apis.map((api) => api.url);
const replica = (i: number): string => urls[i % urls.length] ?? '';

t.test('each replica answers as itself', async (t) => {
  for (const [i, url] of urls.entries()) {
    const instance = await http<{ instanceId: string }>(`${url}/api/instance`);
    t.equal(instance.body.instanceId, `api-${i + 1}`);
    t.equal(instance.headers.get('x-instance-id'), `api-${i + 1}`);
  }
});

t.test('an entry POSTed to one replica is read back through the others', async (t) => {
  for (let i = 0; i < 3; i += 1) {
    const accepted = await postEntry(replica(i), { author: `via api-${i + 1}`, message: `posted to replica ${i + 1}` });
    t.equal(accepted.status, 202);
    t.equal(accepted.body.acceptedBy, `api-${i + 1}`);
    t.equal(accepted.headers.get('x-instance-id'), `api-${i + 1}`);
    for (const j of [i + 1, i + 2]) {
      const entry = await waitForEntryStatus(replica(j), accepted.body.id, 'persisted');
      t.match(entry, { id: accepted.body.id, author: `via api-${i + 1}`, acceptedBy: `api-${i + 1}`, persistedBy: 'worker-1' });
    }
  }
});

t.test('an Idempotency-Key holds across replicas', async (t) => {
  const key = randomUUID();
  const body = { author: 'idem', message: 'one entry, three replicas' };
  const results: Accepted[] = [];
  for (let i = 0; i < 3; i += 1) {
    const result = await postEntry(replica(i), body, { 'Idempotency-Key': key });
    t.equal(result.status, 202, `api-${i + 1}`);
    results.push(result.body);
  }
  const id = results[0]?.id;
  t.same(results.map((r) => r.id), [id, id, id], 'the same id from every replica');
  t.same(results.map((r) => r.acceptedBy), ['api-1', 'api-1', 'api-1'], 'the replica that accepted it first');

  const reused = await postEntry<ErrorBody>(replica(2), { ...body, message: 'a different entry' }, { 'Idempotency-Key': key });
  t.equal(reused.status, 422);
  t.equal(reused.body.error.code, 'idempotency_key_reused');

  await waitForEntryStatus(replica(1), id ?? '', 'persisted');
  const after = await postEntry(replica(1), body, { 'Idempotency-Key': key });
  t.equal(after.body.id, id, 'and after it was persisted');
  const rows = (await stack.rows()).filter((row) => row.author === 'idem');
  t.equal(rows.length, 1, 'exactly one row');
});

t.test('the same key sent to all replicas at once makes one entry', async (t) => {
  for (let round = 0; round < 5; round += 1) {
    const key = `race-${round}-${randomUUID()}`;
    const body = { author: 'race', message: `race round ${round}` };
    const results = await Promise.all([0, 1, 2, 0, 1, 2].map((i) => postEntry(replica(i), body, { 'Idempotency-Key': key })));
    t.same(results.map((r) => r.status), [202, 202, 202, 202, 202, 202], `round ${round}: all accepted`);
    const ids = new Set(results.map((r) => r.body.id));
    t.equal(ids.size, 1, `round ${round}: one id`);
  }
  await waitFor(async () => (await stack.rows()).filter((row) => row.author === 'race').length >= 5, {
    timeoutMs: 15_000,
    what: 'the race entries to be persisted',
  });
  // Every job those POSTs made is in the queue since their 202s; once none is left to run, a
  // stray duplicate job has landed (or failed) before the rows are counted.
  await waitForQueueDrained(stack.redis.client, { timeoutMs: 30_000 });
  const rows = (await stack.rows()).filter((row) => row.author === 'race');
  t.equal(rows.length, 5, 'one row per key');
});

t.test('paging through many entries, across replicas, yields each once, newest first', async (t) => {
  const count = 300;
  // Concurrent POSTs to all replicas: many share a millisecond, so the id tie-break matters.
  const accepted = await mapLimit(Array.from({ length: count }, (_, i) => i), 24, async (i) => {
    const result = await postEntry(replica(i), { author: 'bulk', message: `bulk entry ${i}` });
    if (result.status !== 202) throw new Error(`POST ${i} answered ${result.status}: ${result.text}`);
    return result.body.id;
  });
  t.equal(new Set(accepted).size, count, 'distinct ids');
  await waitFor(async () => (await stack.rows()).filter((row) => row.author === 'bulk').length === count, {
    timeoutMs: 30_000,
    what: `${count} bulk rows`,
  });
  const total = await stack.countRows();

  // Every page from the next replica: the cursor is not tied to the one that made it.
  const seen: EntryView[] = [];
  let before: string | null = null;
  let pages = 0;
  do {
    const query: string = `limit=17${before === null ? '' : `&before=${before}`}`;
    const page: Awaited<ReturnType<typeof http<{ entries: EntryView[]; next: string | null }>>> = await http(`${replica(pages)}/api/entries?${query}`);
    t.equal(page.status, 200);
    seen.push(...page.body.entries);
    before = page.body.next;
    pages += 1;
  } while (before !== null && pages < 1_000);
  t.equal(pages, Math.ceil(total / 17), 'the expected number of pages');
  t.equal(seen.length, total, 'every row');
  t.equal(new Set(seen.map((entry) => entry.id)).size, total, 'each once');
  const bulkSeen = new Set(seen.filter((entry) => entry.author === 'bulk').map((entry) => entry.id));
  t.ok(accepted.every((id) => bulkSeen.has(id)), 'every accepted id is listed');

  // Newest first: (createdAt, id) strictly decreasing.
  let ordered = true;
  for (let i = 1; i < seen.length; i += 1) {
    const a = seen[i - 1];
    const b = seen[i];
    if (a === undefined || b === undefined) continue;
    const ta = Date.parse(a.createdAt);
    const tb = Date.parse(b.createdAt);
    if (!(ta > tb || (ta === tb && a.id > b.id))) {
      ordered = false;
      t.fail(`out of order at ${i}: ${a.createdAt} ${a.id} then ${b.createdAt} ${b.id}`);
      break;
    }
  }
  t.ok(ordered, 'sorted by (createdAt, id) descending');
  const ties = seen.length - new Set(seen.map((entry) => entry.createdAt)).size;
  t.comment(`${ties} rows share their createdAt with another`);
  t.same(new Set(seen.filter((e) => e.author === 'bulk').map((e) => e.acceptedBy)), new Set(['api-1', 'api-2', 'api-3']), 'all replicas took part');

  // The same walk with another page size, through listAll, agrees.
  const again = await listAll(replica(1), 200);
  t.same(again.entries.map((entry) => entry.id), seen.map((entry) => entry.id), 'page size does not change the order');

  // Entries arriving while paging do not shift the pages already handed out.
  const first = await http<{ entries: EntryView[]; next: string | null }>(`${replica(0)}/api/entries?limit=10`);
  const newer = await postEntry(replica(1), { author: 'late', message: 'arrives between two pages' });
  await waitForEntryStatus(replica(2), newer.body.id, 'persisted');
  const second = await http<{ entries: EntryView[] }>(`${replica(2)}/api/entries?limit=10&before=${first.body.next ?? ''}`);
  t.same(second.body.entries.map((entry) => entry.id), seen.slice(10, 20).map((entry) => entry.id), 'page two is unchanged by a new entry');
});
