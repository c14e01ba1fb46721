/**
 * The chaos suite's load: bounded fetch loops with a fixed number of workers, each request
 * recorded (status, or the network error), so that every answer can be accounted for. POSTs carry
 * an Idempotency-Key and a message naming it; a POST that fails is retried with the same key, so
 * that what the client was told (202 with an id, or never accepted) can be reconciled with the
 * rows in PostgreSQL afterwards.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/** What one request got: an HTTP status, or the name of the network error ("ECONNRESET", "timeout"). */
export type Outcome = number | string;

export interface Attempt {
  method: 'GET' | 'POST';
  path: string;
  outcome: Outcome;
  /** Milliseconds since the load's clock started, when the request was sent and answered. */
  sentAt: number;
  answeredAt: number;
  /** For a non-2xx answer: whether the body had the {"error":{"code","message"}} shape. */
  errorShape?: boolean;
  replayed?: boolean;
}

export interface Submission {
  key: string;
  message: string;
  /** Every id a 202 named for this key (more than one would be a broken idempotency promise). */
  ids: Set<string>;
  attempts: number;
  outcomes: Outcome[];
  /** True once a 202 came back. */
  accepted: boolean;
}

export interface LoadOptions {
  baseUrl: string;
  /** The author of every entry: one per scenario, so its rows can be found. */
  author: string;
  getWorkers: number;
  postWorkers: number;
  /** The least time between two requests of one worker (nginx limits each connection's rate). */
  paceMs: number;
  /** How long a failed POST is retried after the load stops, in ms. */
  retryForMs: number;
  /** GET paths to cycle through besides the by-id reads; default: list, instance, stats. */
  getPaths?: readonly string[];
  requestTimeoutMs?: number;
}

const isErrorShape = (text: string): boolean => {
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
    return typeof body.error?.code === 'string' && typeof body.error.message === 'string';
  } catch {
    return false;
  }
};

function networkError(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return 'timeout';
  const cause = error instanceof Error ? (error.cause as { code?: unknown } | undefined) : undefined;
  if (typeof cause?.code === 'string') return cause.code;
  return error instanceof Error ? error.name : 'error';
}

/** Runs GET and POST workers until stop(); every attempt and every submission is kept. */
export class Load {
  readonly attempts: Attempt[] = [];
  readonly submissions: Submission[] = [];
  readonly #options: LoadOptions;
  readonly #startedAt = Date.now();
  #stopping = false;
  #retryDeadline = Number.POSITIVE_INFINITY;
  #workers: Promise<void>[] = [];
  #next = 0;

  constructor(options: LoadOptions) {
    this.#options = options;
  }

  /** Milliseconds since this load was made: the clock of every attempt. */
  now(): number {
    return Date.now() - this.#startedAt;
  }

  start(): this {
    const { getWorkers, postWorkers } = this.#options;
    this.#workers = [
      ...Array.from({ length: getWorkers }, (_, i) => this.#getLoop(i)),
      ...Array.from({ length: postWorkers }, () => this.#postLoop()),
    ];
    return this;
  }

  /** Stops starting new requests; failed POSTs are retried for retryForMs more. Resolves when all workers are done. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#retryDeadline = Date.now() + this.#options.retryForMs;
    await Promise.all(this.#workers);
  }

  /** Submits `count` entries now, `concurrency` at a time (retrying failures like the workers). */
  async burst(count: number, concurrency: number): Promise<void> {
    let left = count;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (left > 0) {
          left -= 1;
          await this.#submit(this.#newSubmission(), Date.now() + this.#options.retryForMs);
        }
      }),
    );
  }

  async #request(method: 'GET' | 'POST', path: string, init: RequestInit = {}): Promise<{ attempt: Attempt; text: string; headers?: Headers }> {
    const sentAt = this.now();
    let attempt: Attempt;
    let text = '';
    let headers: Headers | undefined;
    try {
      const response = await fetch(`${this.#options.baseUrl}${path}`, {
        ...init,
        method,
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs ?? 20_000),
      });
      text = await response.text();
      headers = response.headers;
      attempt = { method, path, outcome: response.status, sentAt, answeredAt: this.now() };
      if (response.status >= 300) attempt.errorShape = isErrorShape(text);
      if (response.headers.get('idempotent-replayed') === 'true') attempt.replayed = true;
    } catch (error) {
      attempt = { method, path, outcome: networkError(error), sentAt, answeredAt: this.now() };
    }
    this.attempts.push(attempt);
    return headers === undefined ? { attempt, text } : { attempt, text, headers };
  }

  async #pace(startedAt: number): Promise<void> {
    const wait = this.#options.paceMs - (Date.now() - startedAt);
    if (wait > 0) await sleep(wait);
  }

  async #getLoop(worker: number): Promise<void> {
    const paths = this.#options.getPaths ?? ['/api/entries?limit=20', '/api/instance', '/api/stats'];
    let turn = worker;
    while (!this.#stopping) {
      const startedAt = Date.now();
      turn += 1;
      const accepted = this.submissions.filter((submission) => submission.accepted);
      const recent = accepted[accepted.length - 1 - (turn % Math.min(accepted.length, 50))];
      const path =
        turn % (paths.length + 1) === 0 && recent !== undefined ? `/api/entries/${[...recent.ids][0] ?? ''}` : (paths[turn % paths.length] ?? '/api/instance');
      await this.#request('GET', path);
      await this.#pace(startedAt);
    }
  }

  #newSubmission(): Submission {
    this.#next += 1;
    const key = `${this.#options.author}-${this.#next}`;
    const submission: Submission = { key, message: `chaos entry ${key}`, ids: new Set(), attempts: 0, outcomes: [], accepted: false };
    this.submissions.push(submission);
    return submission;
  }

  async #postLoop(): Promise<void> {
    while (!this.#stopping) {
      const startedAt = Date.now();
      await this.#submit(this.#newSubmission(), undefined);
      await this.#pace(startedAt);
    }
  }

  /** POSTs until a 202 (or a 4xx, which no retry fixes); network errors, 5xx and 429 are retried with the same key. */
  async #submit(submission: Submission, deadline: number | undefined): Promise<void> {
    const body = JSON.stringify({ author: this.#options.author, message: submission.message });
    for (;;) {
      const startedAt = Date.now();
      submission.attempts += 1;
      const { attempt, text } = await this.#request('POST', '/api/entries', {
        headers: { 'content-type': 'application/json', 'idempotency-key': submission.key },
        body,
      });
      submission.outcomes.push(attempt.outcome);
      if (attempt.outcome === 202) {
        submission.accepted = true;
        submission.ids.add((JSON.parse(text) as { id: string }).id);
        return;
      }
      if (typeof attempt.outcome === 'number' && attempt.outcome < 500 && attempt.outcome !== 429) return;
      if (Date.now() > (deadline ?? this.#retryDeadline)) return;
      await sleep(Math.max(250 - (Date.now() - startedAt), 50));
    }
  }
}
