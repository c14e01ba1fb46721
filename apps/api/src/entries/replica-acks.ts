/**
 * "Accepted" means "held by a replica too" (REDIS_REPLICA_ACKS; docs/guarantees.md): after the
 * enqueue, Redis's `WAIT numreplicas timeout` on the connection the enqueue used, and 202 only
 * once enough replicas hold every write that connection made.
 *
 * One WAIT serves many requests. A WAIT covers every write its connection made before it was
 * sent, so a request whose write completed may share any WAIT that starts after that; a WAIT
 * already in flight may have been sent before the write and covers nothing of it. So: no WAIT in
 * flight, start one; one in flight, wait for the next, which every request arriving meanwhile
 * shares. Under load that is one WAIT per round trip to the replica, not one per request.
 * https://redis.io/docs/latest/commands/wait/
 */

/** The connection the entries were written on, as far as WAIT needs it (EntryQueue). */
export interface AckChannel {
  /** `WAIT numReplicas timeoutMs` on that connection: how many replicas acknowledged. */
  waitForReplicas(numReplicas: number, timeoutMs: number): Promise<number>;
  /**
   * Changes whenever the connection is replaced (a reconnect, a failover): a WAIT on a new
   * connection covers none of the old one's writes, so a request whose write and WAIT straddle
   * a reconnect is not confirmed.
   */
  connectionGeneration(): number;
}

/**
 * The write was made but not confirmed: fewer replicas than asked for confirmed it in time, the
 * connection changed meanwhile, or the WAIT itself failed (its error is the cause). The entry is
 * in the primary's memory all the same, and may be processed; the caller must treat it as "maybe
 * accepted" (entries.service.ts keeps its Idempotency-Key claimed).
 */
export class ReplicaAckError extends Error {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.name = 'ReplicaAckError';
  }
}

export class ReplicaAcks {
  readonly #channel: AckChannel;
  readonly #replicas: number;
  readonly #timeoutMs: number;
  #inFlight: Promise<number> | undefined;
  #next: Promise<number> | undefined;

  constructor(channel: AckChannel, options: { replicas: number; timeoutMs: number }) {
    if (!Number.isInteger(options.replicas) || options.replicas < 1) throw new RangeError(`replicas must be a positive integer (got ${String(options.replicas)})`);
    if (!Number.isInteger(options.timeoutMs) || options.timeoutMs < 1) throw new RangeError(`timeoutMs must be a positive integer (got ${String(options.timeoutMs)})`);
    this.#channel = channel;
    this.#replicas = options.replicas;
    this.#timeoutMs = options.timeoutMs;
  }

  /**
   * Runs `write` (commands on the channel's connection), then resolves with its result once
   * enough replicas hold it. Rejects with the write's own error when the write fails, and with a
   * ReplicaAckError when it was made but not confirmed.
   */
  async confirmed<T>(write: () => Promise<T>): Promise<T> {
    // Read before the write: a write that ioredis resent on a new connection is then not
    // confirmed by a WAIT on that one either (a needless 503 at worst, never a false 202).
    const generation = this.#channel.connectionGeneration();
    const result = await write();
    let acknowledged: number;
    try {
      acknowledged = await this.#nextWait();
    } catch (error) {
      throw new ReplicaAckError(`Redis WAIT failed: ${(error as Error).message}`, { cause: error });
    }
    if (this.#channel.connectionGeneration() !== generation) {
      throw new ReplicaAckError('the connection to Redis was replaced before the replicas confirmed the write');
    }
    if (acknowledged < this.#replicas) {
      throw new ReplicaAckError(`${String(acknowledged)} of ${String(this.#replicas)} Redis replicas confirmed the write within ${String(this.#timeoutMs)} ms`);
    }
    return result;
  }

  /** A WAIT sent after now: the one started here, or the next one when one is in flight. */
  #nextWait(): Promise<number> {
    const inFlight = this.#inFlight;
    if (inFlight === undefined) return this.#start();
    this.#next ??= inFlight.then(
      () => this.#startNext(),
      () => this.#startNext(),
    );
    return this.#next;
  }

  #startNext(): Promise<number> {
    this.#next = undefined;
    return this.#start();
  }

  #start(): Promise<number> {
    const wait = this.#channel.waitForReplicas(this.#replicas, this.#timeoutMs).finally(() => {
      if (this.#inFlight === wait) this.#inFlight = undefined;
    });
    this.#inFlight = wait;
    return wait;
  }
}
