import type { NewEntryRow } from '@inflow/shared';
import type { InsertedEntry } from './entries.repository.ts';

export type PersistOutcome = { inserted: true; queueLatencyMs: number } | { inserted: false };

export interface BatcherOptions {
  /** Most rows in one INSERT. */
  maxBatch: number;
  /** How long the first row of a batch may wait for company, in milliseconds. */
  maxWaitMs: number;
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
 */
export class EntryBatcher {
  readonly #insertMany: (rows: readonly NewEntryRow[]) => Promise<InsertedEntry[]>;
  readonly #options: BatcherOptions;
  #pending: Pending[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(insertMany: (rows: readonly NewEntryRow[]) => Promise<InsertedEntry[]>, options: BatcherOptions) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new RangeError('maxBatch must be a positive integer');
    if (!(options.maxWaitMs >= 0)) throw new RangeError('maxWaitMs must be zero or more');
    this.#insertMany = insertMany;
    this.#options = options;
  }

  persist(row: NewEntryRow): Promise<PersistOutcome> {
    return new Promise((resolve, reject) => {
      this.#pending.push({ row, resolve, reject });
      if (this.#pending.length >= this.#options.maxBatch) this.#flush();
      else this.#timer ??= setTimeout(() => {
        this.#flush();
      }, this.#options.maxWaitMs);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batch = this.#pending;
    this.#pending = [];
    if (batch.length > 0) void this.#write(batch);
  }

  async #write(batch: Pending[]): Promise<void> {
    try {
      settle(batch, await this.#insertMany(batch.map((pending) => pending.row)));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      // One bad row must not fail its neighbours: retry each row on its own, so only the
      // culprit's job fails (and the others' errors, if the database is down, are their own).
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
