import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EntryStatus, Logger } from '@inflow/shared';

/** One queue event reduced to what the page needs: the entry's new status. */
export interface StatusChange {
  status: EntryStatus;
  failedReason?: string;
}

/**
 * What one SSE message says about an entry. Only id and status are sure to be there: the other
 * fields are filled in when they could be read (job data from Redis, the row from PostgreSQL).
 */
export interface EntryUpdate {
  id: string;
  status: EntryStatus;
  author?: string | null;
  message?: string | null;
  acceptedBy?: string | null;
  persistedBy?: string | null;
  createdAt?: string | null;
  persistedAt?: string | null;
  failedReason?: string;
}

/** A running subscription to the queue's events. */
export interface Subscription {
  close(): Promise<void>;
}

export interface EntryEventsOptions {
  instanceId: string;
  logger: Logger;
  /** Starts listening to the queue; called once, when the first client connects. */
  subscribe: (onChange: (id: string, change: StatusChange) => void) => Promise<Subscription>;
  /** Fills in the entries of one flush; may reject (the statuses are sent alone then). */
  describe: (changes: ReadonlyMap<string, StatusChange>) => Promise<EntryUpdate[]>;
  /** How often pending changes are sent (default 200 ms). */
  flushIntervalMs?: number;
  /** Most entries in one message; more in one interval are counted as `dropped` (default 100). */
  maxPerFlush?: number;
  /** A comment line every so often keeps proxies from timing out an idle stream (default 15 s). */
  heartbeatMs?: number;
  /**
   * Most SSE clients of this process, those still connecting included (default 1000; main.ts
   * passes EVENTS_MAX_STREAMS, 200).
   */
  maxClients?: number;
  /** A client whose unsent output grows past this is disconnected; it reconnects (default 1 MiB). */
  maxBufferedBytes?: number;
}

/** The browser waits this long before it reconnects a stream that ended. */
const RECONNECT_MS = 2_000;

/**
 * Server-Sent Events for the page: every queue event about an entry, from whichever replica
 * accepted it and whichever worker persisted it, coalesced so that heavy load costs a bounded
 * amount of work and bandwidth.
 *
 * - Nothing is done per event unless a client is connected: the handler returns at once.
 * - Changes are kept per entry (the last one wins) and sent every `flushIntervalMs`, at most
 *   `maxPerFlush` entries per message; what did not fit is counted in `dropped`, which tells the
 *   page to reconcile from PostgreSQL instead.
 * - Per-entry reads (job data, rows) happen once per flush, for the whole batch.
 * - The stream is a hint, not the record: QueueEvents can miss events (bullmq#2874), so the page
 *   also reconciles from the API on (re)connect and periodically.
 */
export class EntryEvents {
  readonly #options: EntryEventsOptions;
  readonly #flushIntervalMs: number;
  readonly #maxPerFlush: number;
  readonly #heartbeatMs: number;
  readonly #maxClients: number;
  readonly #maxBufferedBytes: number;
  readonly #clients = new Set<ServerResponse>();
  // Streams past the capacity check but not yet in #clients (waiting for the subscription).
  #connecting = 0;
  #pending = new Map<string, StatusChange>();
  #dropped = 0;
  #flushTimer: NodeJS.Timeout | undefined;
  #flushing = false;
  #heartbeat: NodeJS.Timeout | undefined;
  #subscription: Promise<Subscription | undefined> | undefined;
  #closed = false;

  constructor(options: EntryEventsOptions) {
    this.#options = options;
    this.#flushIntervalMs = options.flushIntervalMs ?? 200;
    this.#maxPerFlush = options.maxPerFlush ?? 100;
    this.#heartbeatMs = options.heartbeatMs ?? 15_000;
    this.#maxClients = options.maxClients ?? 1_000;
    this.#maxBufferedBytes = options.maxBufferedBytes ?? 1024 * 1024;
  }

  /** Connected clients. */
  get clients(): number {
    return this.#clients.size;
  }

  /** True while this process serves its most streams (maxClients): the next one must wait. */
  get full(): boolean {
    return this.#clients.size + this.#connecting >= this.#maxClients;
  }

  /** False once the process stopped taking streams (shutdown). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Turns the response into an event stream that lasts until the client leaves or we shut down. */
  async connect(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const head = req.method === 'HEAD';
    // The stream needs the queue's events: started with the first client, then kept. The
    // subscription starts from the stream's current end, so nothing is lost between the
    // "hello" below and the first read. Counted meanwhile: a burst of clients arriving during
    // the first subscription must not all pass a capacity check made before any was added.
    if (!head) {
      this.#connecting += 1;
      try {
        await this.#subscribe();
      } finally {
        this.#connecting -= 1;
      }
    }
    if (this.#closed || req.destroyed) {
      res.destroy();
      return;
    }
    // The connection ends with the stream (Connection: close): a kept-alive socket would
    // otherwise hold server.close() open in shutdown. Set before writeHead, which reads it.
    res.shouldKeepAlive = false;
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      // nginx: pass each message on at once instead of buffering the response.
      'X-Accel-Buffering': 'no',
    });
    if (head) {
      res.end();
      return;
    }
    res.write(`retry: ${RECONNECT_MS}\n`);
    res.write(message('hello', { instanceId: this.#options.instanceId }));
    this.#clients.add(res);
    this.#heartbeat ??= setInterval(() => {
      this.#broadcast(': heartbeat\n\n');
    }, this.#heartbeatMs).unref();
    res.once('close', () => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#stopTimers();
    });
  }

  /**
   * Records a change; cheap, and a no-op while nobody listens. Called by the queue subscription
   * for every event, so it must stay O(1).
   */
  note(id: string, change: StatusChange): void {
    if (this.#clients.size === 0 || this.#closed) return;
    const previous = this.#pending.get(id);
    if (previous === undefined) {
      if (this.#pending.size >= this.#maxPerFlush) {
        this.#dropped += 1;
        return;
      }
    } else if (previous.status === 'persisted') {
      // Persisted is final; a late "queued" (out-of-order delivery) must not undo it.
      return;
    }
    this.#pending.set(id, change);
    this.#flushTimer ??= setTimeout(() => void this.#flush(), this.#flushIntervalMs).unref();
  }

  /** Ends every stream now (clients reconnect, to another replica) and refuses new ones. */
  endStreams(): void {
    this.#closed = true;
    this.#stopTimers();
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  /** Ends the streams and stops listening to the queue. */
  async close(): Promise<void> {
    this.endStreams();
    const subscription = await this.#subscription;
    await subscription?.close();
  }

  #subscribe(): Promise<Subscription | undefined> {
    this.#subscription ??= this.#options
      .subscribe((id, change) => {
        this.note(id, change);
      })
      .catch((error: unknown) => {
        // No live updates then, but the page still reconciles from the API; try again with the
        // next client.
        this.#options.logger.warn({ err: error }, 'could not subscribe to queue events');
        this.#subscription = undefined;
        return undefined;
      });
    return this.#subscription;
  }

  async #flush(): Promise<void> {
    this.#flushTimer = undefined;
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      const batch = this.#pending;
      const dropped = this.#dropped;
      this.#pending = new Map();
      this.#dropped = 0;
      if (this.#clients.size === 0 || this.#closed || (batch.size === 0 && dropped === 0)) return;
      let entries: EntryUpdate[];
      try {
        entries = await this.#options.describe(batch);
      } catch (error) {
        this.#options.logger.warn({ err: error }, 'could not read the entries of an event batch; sending statuses only');
        entries = [...batch].map(([id, change]) => ({ id, ...change }));
      }
      this.#broadcast(message('entries', { entries, dropped }));
    } finally {
      this.#flushing = false;
      // Changes noted while this flush was reading wait for the next interval.
      if (this.#pending.size > 0 || this.#dropped > 0) {
        this.#flushTimer ??= setTimeout(() => void this.#flush(), this.#flushIntervalMs).unref();
      }
    }
  }

  #broadcast(text: string): void {
    for (const res of this.#clients) {
      // A client that does not read (a stalled tab, a slow link) is cut off rather than
      // buffered without bound; EventSource reconnects and the page reconciles.
      if (res.writableLength > this.#maxBufferedBytes) {
        this.#options.logger.warn({ bufferedBytes: res.writableLength }, 'event stream client too slow, disconnecting it');
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(text);
    }
  }

  #stopTimers(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    this.#pending.clear();
    this.#dropped = 0;
  }
}

/** One SSE message. JSON never holds a raw newline, so `data` is always a single line. */
function message(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
