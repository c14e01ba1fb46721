/**
 * The benchmark's load: autocannon runs, each bounded (a duration or an amount of requests),
 * reduced to the figures the report shows. POST runs record the id of every 202 so that the run
 * can prove afterwards that each accepted entry was persisted exactly once.
 */
import autocannon from 'autocannon';

export interface LoadFigures {
  connections: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p99: number; max: number };
  /** Requests by HTTP status ("202": 10234). */
  statuses: Record<string, number>;
  /** Requests that got no HTTP answer: socket errors (timeouts included). */
  socketErrors: number;
  timeouts: number;
  /** Everything that is neither the expected status nor answered at all, by kind. */
  errors: Record<string, number>;
}

export interface LoadOptions {
  url: string;
  path: string;
  connections: number;
  /** Seconds, or a number of requests when `amount` is set. */
  durationSeconds?: number;
  amount?: number;
  /** The status every request should get. */
  expect: number;
}

export interface PostLoadOptions extends LoadOptions {
  /** The author of every entry, so the run's rows can be found. */
  author: string;
}

/** Runs one load and returns its figures. */
export async function runLoad(options: LoadOptions, request: Partial<autocannon.Request> = {}): Promise<LoadFigures> {
  const startedAt = performance.now();
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount === undefined ? { duration: options.durationSeconds ?? 10 } : { amount: options.amount }),
    timeout: 10,
    requests: [{ method: 'GET', path: options.path, ...request }],
  });
  const seconds = (performance.now() - startedAt) / 1000;
  const statuses: Record<string, number> = {};
  for (const [status, { count }] of Object.entries(result.statusCodeStats ?? {})) statuses[status] = count ?? 0;
  const answered = Object.values(statuses).reduce((sum, count) => sum + count, 0);
  const errors: Record<string, number> = {};
  for (const [status, count] of Object.entries(statuses)) if (Number(status) !== options.expect) errors[`HTTP ${status}`] = count;
  if (result.errors > 0) errors['socket error'] = result.errors;
  if (result.timeouts > 0) errors['timeout'] = result.timeouts;
  return {
    connections: options.connections,
    requests: answered + result.errors,
    seconds: round(seconds, 2),
    requestsPerSecond: round(answered / result.duration, 0),
    latencyMs: { p50: result.latency.p50, p99: result.latency.p99, max: result.latency.max },
    statuses,
    socketErrors: result.errors,
    timeouts: result.timeouts,
    errors,
  };
}

/**
 * POSTs entries of one author, a fresh message each, and returns the figures together with the
 * ids of the entries that got a 202.
 */
export async function postEntries(options: PostLoadOptions): Promise<{ figures: LoadFigures; acceptedIds: string[] }> {
  const acceptedIds: string[] = [];
  let sequence = 0;
  const figures = await runLoad(options, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    setupRequest: (request) => {
      sequence += 1;
      // A message of its own for every request: two rows with one message would be a duplicate.
      return { ...request, body: JSON.stringify({ author: options.author, message: `benchmark entry ${sequence}` }) };
    },
    onResponse: (status, body) => {
      if (status !== 202) return;
      const id = ID_IN_BODY.exec(body)?.[1];
      if (id !== undefined) acceptedIds.push(id);
    },
  });
  return { figures, acceptedIds };
}

// The 202 body is {"id":"…","status":"queued",…}; a regular expression is enough and cheaper
// than JSON.parse in the process that generates the load.
const ID_IN_BODY = /"id":"([0-9a-f-]{36})"/;

export const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;
