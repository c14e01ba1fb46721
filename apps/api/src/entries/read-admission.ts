import { rateLimited, tooManyReads, type Registry } from '@inflow/shared';
import type { Request, Response } from 'express';
import { Counter, Gauge } from 'prom-client';

/**
 * Admission of list reads (GET /api/entries): how many this replica serves at once, in all and
 * per client address. A page can be 1.6 MB, and 1,000 of them at once from one address took the
 * whole database pool from everyone (issue 20, finding 2). Why the numbers:
 * docs/api.md#capacity-of-a-replica.
 */
export interface ListReadBounds {
  /** List reads of one client address (req.ip) at once; the next is 429 rate_limited. */
  readonly perAddress: number;
  /** List reads of every address at once; the next is 503 too_many_reads. */
  readonly perReplica: number;
}

/**
 * The bounds for a list share of `listConnections` (database.ts apiPoolShares): four reads per
 * connection, since a read holds its connection for its query only and its slot until its
 * client has taken the page; half of them for one address, so that no one address fills a
 * replica.
 */
export function listReadBounds(listConnections: number): ListReadBounds {
  return Object.freeze({ perReplica: 4 * listConnections, perAddress: 2 * listConnections });
}

/** Which bound refused a list read. */
export type ListReadRefusal = 'address' | 'replica';

export class ListReadAdmission {
  readonly bounds: ListReadBounds;
  #inProgress = 0;
  readonly #byAddress = new Map<string, number>();
  readonly #refused: Counter<'reason'> | undefined;

  constructor(bounds: ListReadBounds, registry?: Registry) {
    for (const [name, value] of Object.entries(bounds)) {
      if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`ListReadAdmission: ${name} must be a positive integer (got ${String(value)})`);
    }
    if (bounds.perAddress > bounds.perReplica) throw new RangeError('ListReadAdmission: perAddress must not exceed perReplica');
    this.bounds = bounds;
    if (registry !== undefined) {
      this.#refused = new Counter({
        name: 'inflow_api_list_reads_refused_total',
        help: 'List reads (GET /api/entries) refused: reason "address" (429, over the per-address bound) or "replica" (503, over the replica\'s)',
        labelNames: ['reason'] as const,
        registers: [registry],
      });
      const inProgress = () => this.#inProgress;
      new Gauge({
        name: 'inflow_api_list_reads_in_progress',
        help: 'List reads (GET /api/entries) admitted and not yet delivered',
        registers: [registry],
        collect() {
          this.set(inProgress());
        },
      });
    }
  }

  get inProgress(): number {
    return this.#inProgress;
  }

  inProgressOf(address: string): number {
    return this.#byAddress.get(address) ?? 0;
  }

  /** Takes a slot for `address`, or says which bound refuses it (the address's first: it is the one asking too much). */
  take(address: string): ListReadRefusal | undefined {
    const held = this.inProgressOf(address);
    const refusal = held >= this.bounds.perAddress ? 'address' : this.#inProgress >= this.bounds.perReplica ? 'replica' : undefined;
    if (refusal !== undefined) {
      this.#refused?.inc({ reason: refusal });
      return refusal;
    }
    this.#byAddress.set(address, held + 1);
    this.#inProgress += 1;
    return undefined;
  }

  release(address: string): void {
    const held = this.inProgressOf(address);
    if (held === 0) throw new Error(`ListReadAdmission: release without a slot for ${address}`);
    if (held === 1) this.#byAddress.delete(address);
    else this.#byAddress.set(address, held - 1);
    this.#inProgress -= 1;
  }

  /**
   * Runs `work`, which answers `res`, in a slot of the client's address, or throws the refusal.
   * The slot is held until the response is closed (its last bytes handed to the socket, or the
   * client gone) and `work` has settled: a slow reader keeps it while Node still holds its page,
   * and a client that hangs up cannot free it while its query still runs.
   */
  async serve(req: Request, res: Response, work: () => Promise<void>): Promise<void> {
    // Gone before we started: nothing to read for anyone.
    if (res.closed || res.destroyed) return;
    const address = req.ip ?? '';
    const refusal = this.take(address);
    if (refusal === 'address') throw rateLimited();
    if (refusal === 'replica') throw tooManyReads();
    let holds = 2;
    const release = () => {
      holds -= 1;
      if (holds === 0) this.release(address);
    };
    res.once('close', release);
    try {
      await work();
    } finally {
      release();
    }
  }
}
