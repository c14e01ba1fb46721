/**
 * What the page knows about entries, and how what it hears changes that: pure functions over
 * plain objects, no DOM, so that they can be tested outside a browser. EntryList (entry-list.ts)
 * holds the state and renders it.
 */
import { ENTRY_STATUSES, type EntryStatus } from '@inflow/shared/entry-rules';

/** How many entries the page shows, and asks the API for. */
export const LIST_SIZE = 20;
/** An entry with no news for this long is checked against the API at the next reconciliation. */
export const STALE_AFTER_MS = 2_000;
/** At most this many in-flight entries are asked about, one request each, per reconciliation. */
const STALE_CHECKS_PER_RECONCILIATION = 10;

export interface EntryView {
  id: string;
  status: EntryStatus;
  author: string | null;
  message: string | null;
  acceptedBy: string | null;
  persistedBy: string | null;
  createdAt: string | null;
  persistedAt: string | null;
  failedReason: string | null;
  /** Sent from this page. */
  mine: boolean;
  /** When this page last learnt something new about the entry (ms). */
  changedAt: number;
}

export type EntryUpdate = Partial<Omit<EntryView, 'id' | 'mine' | 'changedAt'>> & { id: string };

/**
 * Where an update comes from: the event stream, which is ordered, or a read of the API, which
 * may be older than what the stream already said.
 */
export type UpdateSource = 'stream' | 'snapshot';

/** The fields an update fills in; a value once known is never unset. */
const DATA_FIELDS = ['author', 'message', 'acceptedBy', 'persistedBy', 'createdAt', 'persistedAt'] as const;

const rank = (status: EntryStatus): number => ENTRY_STATUSES.indexOf(status);

function unknownEntry(id: string, mine: boolean, now: number): EntryView {
  return {
    id,
    status: 'queued',
    author: null,
    message: null,
    acceptedBy: null,
    persistedBy: null,
    createdAt: null,
    persistedAt: null,
    failedReason: null,
    mine,
    changedAt: now,
  };
}

/**
 * The entry after an update. The stream's word on the status stands (a retry goes back from
 * processing to queued); a snapshot only moves an entry forward. Persisted is final either way.
 * `changedAt` moves to `now` only when something the page shows changed.
 */
export function mergeEntry(current: EntryView | undefined, update: EntryUpdate, source: UpdateSource, now: number, mine = false): EntryView {
  const next = current === undefined ? unknownEntry(update.id, mine, now) : { ...current };
  let changed = current === undefined;
  for (const key of DATA_FIELDS) {
    const value = update[key];
    if (typeof value === 'string' && value !== next[key]) {
      next[key] = value;
      changed = true;
    }
  }
  const status = update.status;
  if (status !== undefined && status !== next.status && next.status !== 'persisted') {
    if (current === undefined || source === 'stream' || rank(status) > rank(next.status)) {
      next.status = status;
      changed = true;
    }
  }
  if (next.status === 'failed' && typeof update.failedReason === 'string') next.failedReason = update.failedReason;
  if (next.status !== 'failed') next.failedReason = null;
  if (mine) next.mine = true;
  if (changed) next.changedAt = now;
  return next;
}

/**
 * The entries to show, newest first (ids are UUID v7: their order is the order of acceptance).
 * An entry the page knows only a status of has nothing to show yet.
 */
export function visibleEntries(entries: Iterable<EntryView>, size = LIST_SIZE): EntryView[] {
  return [...entries]
    .filter((entry) => entry.author !== null || entry.message !== null)
    .sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0))
    .slice(0, size);
}

/**
 * What is worth remembering once the model holds more than twice the list: the entries shown,
 * and this page's own entries until they are persisted. Under heavy load the stream reports far
 * more entries than the list shows; the rest are forgotten, so the model stays small.
 */
export function prune(entries: ReadonlyMap<string, EntryView>, size = LIST_SIZE): Map<string, EntryView> {
  if (entries.size <= size * 2) return new Map(entries);
  const shown = new Set(visibleEntries(entries.values(), size).map((entry) => entry.id));
  return new Map([...entries].filter(([id, entry]) => shown.has(id) || (entry.mine && entry.status !== 'persisted')));
}

/**
 * The entries still in flight that neither the stream (for STALE_AFTER_MS) nor the latest list
 * from the API said anything about: each is asked about on its own. The page's own come first,
 * then the longest silent.
 */
export function staleEntries(entries: Iterable<EntryView>, listed: ReadonlySet<string>, now: number): EntryView[] {
  return [...entries]
    .filter((entry) => (entry.status === 'queued' || entry.status === 'processing') && !listed.has(entry.id) && now - entry.changedAt >= STALE_AFTER_MS)
    .sort((a, b) => Number(b.mine) - Number(a.mine) || a.changedAt - b.changedAt)
    .slice(0, STALE_CHECKS_PER_RECONCILIATION);
}

/** The line above the list: how many of the shown entries are in each state. */
export function summarise(shown: readonly EntryView[]): string {
  if (shown.length === 0) return '';
  const counts: Record<EntryStatus, number> = { queued: 0, processing: 0, failed: 0, persisted: 0 };
  for (const entry of shown) counts[entry.status] += 1;
  const inFlight = counts.queued + counts.processing;
  return `Showing the latest ${String(shown.length)}: ${String(counts.persisted)} persisted, ${String(inFlight)} in flight, ${String(counts.failed)} failed.`;
}

/** UUID v7 ids start with the time of acceptance in milliseconds. */
export function timeOfId(id: string): Date | undefined {
  const hex = id.replaceAll('-', '').slice(0, 12);
  return /^[0-9a-f]{12}$/i.test(hex) && id[14] === '7' ? new Date(Number.parseInt(hex, 16)) : undefined;
}

/** When the entry was accepted: the API's createdAt, or else the time in its id. */
export const acceptedAt = (entry: EntryView): Date | undefined => (entry.createdAt === null ? timeOfId(entry.id) : new Date(entry.createdAt));

/** From acceptance to the row in PostgreSQL, in milliseconds, once both times are known. */
export function latencyMs(entry: EntryView): number | undefined {
  if (entry.persistedAt === null) return undefined;
  const accepted = acceptedAt(entry);
  if (accepted === undefined) return undefined;
  const ms = new Date(entry.persistedAt).getTime() - accepted.getTime();
  return Number.isFinite(ms) && ms >= 0 ? ms : undefined;
}
