/**
 * The page's entry model (apps/api/page/entry-model.ts): how what the stream, the API and the
 * form say about an entry is merged, which entries are shown, forgotten and asked about again.
 */
import t from 'tap';
import {
  LIST_SIZE,
  STALE_AFTER_MS,
  latencyMs,
  mergeEntry,
  prune,
  staleEntries,
  summarise,
  timeOfId,
  visibleEntries,
  type EntryUpdate,
  type EntryView,
} from '../page/entry-model.ts';

const T0 = Date.UTC(2026, 0, 1, 12, 0, 0);

/** A UUID v7 accepted at `ms`; `n` tells apart ids of the same millisecond. */
function idAt(ms: number, n = 0): string {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** The model after these updates, in order, each at its own time. */
function modelOf(steps: readonly [EntryUpdate, 'stream' | 'snapshot', number, boolean?][]): Map<string, EntryView> {
  const entries = new Map<string, EntryView>();
  for (const [update, source, now, mine] of steps) entries.set(update.id, mergeEntry(entries.get(update.id), update, source, now, mine));
  return entries;
}

const shownEntry = (id: string, fields: Partial<EntryView> = {}): EntryView => ({
  ...mergeEntry(undefined, { id, author: 'ada', message: 'hello' }, 'stream', T0),
  ...fields,
});

t.test('an entry first heard of is queued, unknown fields null, changed now', async (t) => {
  const id = idAt(T0);
  const unknown = ['author', 'message', 'acceptedBy', 'persistedBy', 'createdAt', 'persistedAt', 'failedReason'];
  t.same(mergeEntry(undefined, { id }, 'stream', T0 + 5), {
    id,
    status: 'queued',
    ...Object.fromEntries(unknown.map((field) => [field, null])),
    mine: false,
    changedAt: T0 + 5,
  });
  t.equal(mergeEntry(undefined, { id, status: 'processing' }, 'snapshot', T0).status, 'processing', 'a first snapshot sets any status');
  t.equal(mergeEntry(undefined, { id }, 'snapshot', T0, true).mine, true);
});

t.test('the stream may move an entry back (a retry); a snapshot only forward', async (t) => {
  const id = idAt(T0);
  const processing = modelOf([[{ id, status: 'processing' }, 'stream', T0]]).get(id);
  t.equal(mergeEntry(processing, { id, status: 'queued' }, 'stream', T0 + 1).status, 'queued', 'the stream is ordered: its word stands');
  t.equal(mergeEntry(processing, { id, status: 'queued' }, 'snapshot', T0 + 1).status, 'processing', 'an older snapshot does not undo it');
  t.equal(mergeEntry(processing, { id, status: 'failed' }, 'snapshot', T0 + 1).status, 'failed');
  const failed = mergeEntry(processing, { id, status: 'failed', failedReason: 'author is required' }, 'stream', T0 + 1);
  t.equal(mergeEntry(failed, { id, status: 'persisted' }, 'snapshot', T0 + 2).status, 'persisted', 'a replayed entry is persisted after all');
  t.equal(mergeEntry(failed, { id, status: 'processing' }, 'snapshot', T0 + 2).status, 'failed');
});

t.test('persisted is final, whatever the source', async (t) => {
  const id = idAt(T0);
  const persisted = modelOf([[{ id, status: 'persisted' }, 'snapshot', T0]]).get(id);
  for (const status of ['queued', 'processing', 'failed'] as const) {
    for (const source of ['stream', 'snapshot'] as const) {
      t.equal(mergeEntry(persisted, { id, status }, source, T0 + 1).status, 'persisted', `${status} from the ${source}`);
    }
  }
});

t.test('fields fill in and are never unset; failedReason only while failed', async (t) => {
  const id = idAt(T0);
  const entries = modelOf([
    [{ id, status: 'queued', author: 'ada', message: 'hi', acceptedBy: 'web1' }, 'snapshot', T0, true],
    [{ id, status: 'failed', failedReason: 'the database refused it', author: null }, 'stream', T0 + 1],
  ]);
  const failed = entries.get(id);
  t.match(failed, { author: 'ada', message: 'hi', acceptedBy: 'web1', status: 'failed', failedReason: 'the database refused it', mine: true });
  const replayed = mergeEntry(failed, { id, status: 'persisted', persistedBy: 'worker', persistedAt: new Date(T0 + 40).toISOString() }, 'snapshot', T0 + 50);
  t.match(replayed, { status: 'persisted', failedReason: null, persistedBy: 'worker', author: 'ada', mine: true });
  t.equal(mergeEntry(undefined, { id, status: 'queued', failedReason: 'stale' }, 'stream', T0).failedReason, null, 'no reason unless failed');
});

t.test('changedAt moves only when something shown changed', async (t) => {
  const id = idAt(T0);
  const first = mergeEntry(undefined, { id, status: 'queued', author: 'ada' }, 'stream', T0);
  t.equal(mergeEntry(first, { id, status: 'queued', author: 'ada' }, 'stream', T0 + 10).changedAt, T0, 'the same news again');
  t.equal(mergeEntry(first, { id, status: 'queued' }, 'snapshot', T0 + 10, true).changedAt, T0, 'being claimed as mine is no news');
  t.equal(mergeEntry(first, { id, status: 'processing' }, 'stream', T0 + 10).changedAt, T0 + 10);
  t.equal(mergeEntry(first, { id, message: 'hello' }, 'snapshot', T0 + 10).changedAt, T0 + 10);
  t.equal(first.changedAt, T0, 'the entry merged into is not modified');
});

t.test('visible entries: only those with something to show, newest first, at most the list', async (t) => {
  const onlyStatus = mergeEntry(undefined, { id: idAt(T0 + 5), status: 'processing' }, 'stream', T0);
  const older = shownEntry(idAt(T0));
  const newer = shownEntry(idAt(T0 + 1));
  const sameMsLater = shownEntry(idAt(T0 + 1, 1));
  t.same(visibleEntries([older, onlyStatus, sameMsLater, newer]).map((entry) => entry.id), [sameMsLater.id, newer.id, older.id]);
  const many = Array.from({ length: LIST_SIZE + 5 }, (_, i) => shownEntry(idAt(T0 + i)));
  const shown = visibleEntries(many);
  t.equal(shown.length, LIST_SIZE);
  t.equal(shown[0]?.id, idAt(T0 + LIST_SIZE + 4), 'the newest first');
  t.equal(shown.at(-1)?.id, idAt(T0 + 5), 'the oldest shown');
  t.same(visibleEntries(many, 3).map((entry) => entry.id), [idAt(T0 + 24), idAt(T0 + 23), idAt(T0 + 22)]);
});

t.test('prune keeps everything up to twice the list, then the shown and my unpersisted', async (t) => {
  const atLimit = new Map(Array.from({ length: LIST_SIZE * 2 }, (_, i) => shownEntry(idAt(T0 + 100 + i))).map((entry) => [entry.id, entry]));
  t.equal(prune(atLimit).size, LIST_SIZE * 2, 'at twice the list, nothing is forgotten');

  const mineInFlight = shownEntry(idAt(T0 + 2), { mine: true, status: 'processing' });
  const minePersisted = shownEntry(idAt(T0 + 3), { mine: true, status: 'persisted' });
  const statusOnly = mergeEntry(undefined, { id: idAt(T0 + 999), status: 'queued' }, 'stream', T0);
  const entries = new Map(atLimit);
  for (const entry of [mineInFlight, minePersisted, statusOnly]) entries.set(entry.id, entry);
  const kept = prune(entries);
  const shown = visibleEntries(entries.values()).map((entry) => entry.id);
  t.equal(shown.length, LIST_SIZE);
  t.same([...kept.keys()].sort(), [...shown, mineInFlight.id].sort(), 'the shown, and mine until persisted');
  t.notOk(kept.has(statusOnly.id), 'an update for an entry never shown is dropped');
  t.notOk(kept.has(minePersisted.id), 'mine, once persisted and out of the list, is dropped');
  t.equal(entries.size, LIST_SIZE * 2 + 3, 'the map given is not modified');
});

t.test('stale entries: in flight, not listed, silent long enough; mine first, then the longest silent', async (t) => {
  const now = T0 + 60_000;
  const silent = (n: number, fields: Partial<EntryView>) => shownEntry(idAt(T0 + n), { changedAt: now - STALE_AFTER_MS, ...fields });
  const queued = silent(1, { status: 'queued', changedAt: now - 9_000 });
  const processing = silent(2, { status: 'processing', changedAt: now - 5_000 });
  const mine = silent(3, { status: 'queued', mine: true });
  const recent = silent(4, { status: 'queued', changedAt: now - STALE_AFTER_MS + 1 });
  const listed = silent(5, { status: 'processing' });
  const persisted = silent(6, { status: 'persisted' });
  const failed = silent(7, { status: 'failed' });
  const stale = staleEntries([queued, processing, mine, recent, listed, persisted, failed], new Set([listed.id]), now);
  t.same(stale.map((entry) => entry.id), [mine.id, queued.id, processing.id]);

  const crowd = Array.from({ length: 15 }, (_, i) => silent(100 + i, { status: 'queued', changedAt: now - 10_000 + i }));
  t.same(staleEntries(crowd, new Set(), now).map((entry) => entry.id), crowd.slice(0, 10).map((entry) => entry.id), 'at most ten per reconciliation');
});

t.test('the summary counts the shown entries by state', async (t) => {
  t.equal(summarise([]), '');
  const shown = [
    shownEntry(idAt(T0), { status: 'persisted' }),
    shownEntry(idAt(T0 + 1), { status: 'persisted' }),
    shownEntry(idAt(T0 + 2), { status: 'queued' }),
    shownEntry(idAt(T0 + 3), { status: 'processing' }),
    shownEntry(idAt(T0 + 4), { status: 'failed' }),
  ];
  t.equal(summarise(shown), 'Showing the latest 5: 2 persisted, 2 in flight, 1 failed.');
});

t.test('times: from the id (UUID v7) or createdAt, and the latency to persisted', async (t) => {
  t.equal(timeOfId(idAt(T0))?.getTime(), T0);
  t.equal(timeOfId('0190a6c2-7b1e-4c3d-8e4f-0123456789ab'), undefined, 'a UUID v4 carries no time');
  t.equal(timeOfId('not-an-id'), undefined);
  const persistedAt = new Date(T0 + 1_234).toISOString();
  t.equal(latencyMs(shownEntry(idAt(T0), { persistedAt })), 1_234, 'from the time in the id');
  t.equal(latencyMs(shownEntry(idAt(T0), { persistedAt, createdAt: new Date(T0 + 1_000).toISOString() })), 234, 'createdAt wins');
  t.equal(latencyMs(shownEntry(idAt(T0))), undefined, 'not persisted yet');
  t.equal(latencyMs(shownEntry(idAt(T0), { persistedAt: new Date(T0 - 1).toISOString() })), undefined, 'clocks apart: no negative latency');
  t.equal(latencyMs(shownEntry(idAt(T0), { persistedAt: 'garbage' })), undefined);
});
