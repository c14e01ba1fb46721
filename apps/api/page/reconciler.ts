/**
 * Reconciling the list with the API: the latest entries from PostgreSQL, and one request for
 * each entry still in flight that the stream has said nothing about lately (the API answers
 * those from the queue). The event stream can miss events; this is what corrects the list.
 */
import { readJson, isRecord, toUpdate } from './api-data.ts';
import { LIST_SIZE } from './entry-model.ts';
import type { EntryList } from './entry-list.ts';

const RECONCILE_EVERY_MS = 10_000;

export class Reconciler {
  readonly #entries: EntryList;
  #running: Promise<void> | undefined;
  #again = false;
  /** When the latest reconciliation started (ms); 0 before the first. */
  lastStartedAt = 0;

  constructor(entries: EntryList) {
    this.#entries = entries;
  }

  /** Reconciles now; a call while one runs is folded into one more run after it. */
  run(): Promise<void> {
    if (this.#running !== undefined) {
      this.#again = true;
      return this.#running;
    }
    this.#running = this.#reconcile().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        void this.run();
      }
    });
    return this.#running;
  }

  /** Every few seconds while the page is visible, and whenever it becomes visible or online. */
  start(): void {
    setInterval(() => {
      if (!document.hidden) void this.run();
    }, RECONCILE_EVERY_MS);
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) void this.run();
    });
    window.addEventListener('online', () => void this.run());
  }

  async #reconcile(): Promise<void> {
    try {
      this.lastStartedAt = Date.now();
      const response = await fetch(`/api/entries?limit=${String(LIST_SIZE)}`, { cache: 'no-store' });
      const body = await readJson(response);
      const listed = new Set<string>();
      if (response.ok && isRecord(body) && Array.isArray(body['entries'])) {
        for (const item of body['entries']) {
          const update = toUpdate(item, 'persisted');
          if (update === undefined) continue;
          listed.add(update.id);
          this.#entries.merge(update, 'snapshot');
        }
      }
      await Promise.all(this.#entries.stale(listed).map((entry) => this.#check(entry.id)));
    } catch {
      // Offline or the API is down: the next reconciliation tries again.
    }
  }

  async #check(id: string): Promise<void> {
    const response = await fetch(`/api/entries/${encodeURIComponent(id)}`, { cache: 'no-store' });
    const update = response.ok ? toUpdate(await readJson(response)) : undefined;
    if (update !== undefined) this.#entries.merge(update, 'snapshot');
    this.#entries.markChecked(id);
  }
}
