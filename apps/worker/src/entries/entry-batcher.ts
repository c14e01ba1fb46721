import { isDatabaseUnavailable, type NewEntryRow } from '@inflow/shared';
import type { InsertedEntry } from './entries.repository.ts';

export type PersistOutcome = { inserted: true; queueLatencyMs: number } | { inserted: false };

export interface BatcherOptions {
  /** Most rows in one INSERT. */
  maxBatch: number;
  /** Most INSERTs in flight at once (each holds a pooled connection). */
  maxConcurrentWrites: number;
}

interface Pending {
  row: NewEntryRow;
  resolve: (outcome: PersistOutcome) => void;
  reject: (error: unknown) => void;
}

/**
 * Groups the rows of concurrently processed jobs into multi-row INSERTs: one statement and one
 * commit for many jobs is what lets the database keep up with the queue. Each caller's promise
 * settles only after its own row is committed (or known to exist), so a job completes in BullMQ
 * only once its entry is durable.
 *
 * Group commit, without a timer: a row is written at once when fewer than maxConcurrentWrites
 * INSERTs are in flight; otherwise it waits for the next one to finish and goes with every row
 * that arrived meanwhile. An idle worker writes each entry immediately; a busy one writes
 * batches as large as the database's commit time lets them grow. No fixed wait for company: it
 * makes every job of a batch wait for the slowest, and the worker's jobs then step in lockstep
 * between Redis and PostgreSQL, each side idle while the other works.
 */
export class EntryBatcher {
  readonly #insertMany: (rows: readonly NewEntryRow[]) => Promise<InsertedEntry[]>;
  readonly #options: BatcherOptions;
  #pending: Pending[] = [];
  #writing = 0;

  constructor(insertMany: (rows: readonly NewEntryRow[]) => Promise<InsertedEntry[]>, options: BatcherOptions) {
    for (const name of ['maxBatch', 'maxConcurrentWrites'] as const) {
      if (!Number.isInteger(options[name]) || options[name] < 1) throw new RangeError(`${name} must be a positive integer`);
    }
    this.#insertMany = insertMany;
    this.#options = options;
  }

  persist(row: NewEntryRow): Promise<PersistOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ row, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#pending.length > 0 && this.#writing < this.#options.maxConcurrentWrites) {
      const batch = this.#pending.splice(0, this.#options.maxBatch);
      this.#writing += 1;
      void this.#write(batch).finally(() => {
        this.#writing -= 1;
        this.#pump();
      });
    }
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      settle(batch, await this.#insertMany(batch.map((pending) => pending.row)));
    } catch (error) {
      // The database is out of reach or refuses the worker: no row is to blame, and retrying
      // each alone would only spend a connection (or a timeout) per row.
      if (batch.length === 1 || isDatabaseUnavailable(error)) {
        for (const pending of batch) pending.reject(error);
        return;
      }
      // One bad row must not fail its neighbours: retry each row on its own, so only the
      // culprit's job fails.
      await Promise.all(batch.map((pending) => this.#write([pending])));
    }
  }
}

function settle(batch: readonly Pending[], inserted: readonly InsertedEntry[]): void {
  const latencyById = new Map(inserted.map((entry) => [entry.id, entry.queueLatencyMs]));
  for (const { row, resolve } of batch) {
    const queueLatencyMs = latencyById.get(row.id);
    resolve(queueLatencyMs === undefined ? { inserted: false } : { inserted: true, queueLatencyMs });
  }
}
