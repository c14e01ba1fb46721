/**
 * The benchmark's measurements against the running stack, one function per row group of the
 * report. Each is bounded (a duration or a count) and leaves the queue drained behind it, so
 * that the next measurement does not share the machine with the worker's backlog.
 */
import { composeStart, composeStop, literal, psql, rowsOf, waitDrained, waitHealthyService } from '@inflow/test-support';
import { BASE_URL, freePort } from '@inflow/test-support';
import { runProbe, startOneReplicaNginx, startProxyCeiling } from './containers.ts';
import { postEntries, round, runLoad, type LoadFigures } from './load.ts';

export interface Plan {
  name: 'full' | 'smoke';
  /** Seconds of each fixed-duration load. */
  seconds: number;
  concurrencies: readonly number[];
  /** Connections for the loads that are not about concurrency. */
  connections: number;
  /** Entries of the end-to-end and drain runs, jobs and rows of the ceilings. */
  entries: number;
}

export const PLANS: Record<Plan['name'], Plan> = {
  full: { name: 'full', seconds: 10, concurrencies: [16, 64, 256], connections: 64, entries: 20_000 },
  smoke: { name: 'smoke', seconds: 2, concurrencies: [16, 64, 256], connections: 64, entries: 1_000 },
};

/** Entries whose 202 named them, checked against the rows of their author. */
export interface Ledger {
  author: string;
  accepted: number;
  persisted: number;
  /** Accepted but not in the table. */
  lost: number;
  /** Rows beyond one per request (every request of a load sends a message of its own). */
  duplicated: number;
  /**
   * Rows whose 202 the load never read: requests in flight when a timed load stopped (autocannon
   * closes its connections then). At most one per connection.
   */
  unacknowledged: number;
}

export interface AcceptRun extends LoadFigures {
  ledger: Ledger;
}

export interface Ceilings {
  nginxAlone: LoadFigures;
  proxyToBareNode: LoadFigures;
  queue: { jobs: number; inFlight: number; concurrency: number; addsPerSecond: number; drainedPerSecond: number };
  database: { rows: number; batch: number; loops: number; rowsPerSecond: number };
}

export interface EndToEnd {
  submit: LoadFigures;
  ledger: Ledger;
  /** Seconds from the first request to the last row's commit. */
  lastPersistedAfterSeconds: number;
  persistedPerSecond: number;
  /** Accept (the API's acceptedAt) to commit (the row's persisted_at), from the rows. */
  latencyMs: { p50: number; p99: number; max: number };
}

export interface Drain {
  entries: number;
  submit: LoadFigures;
  ledger: Ledger;
  /** Rows committed per second while the worker worked through the backlog. */
  persistedPerSecond: number;
  seconds: number;
}

export interface Scaling {
  oneReplica: AcceptRun;
  threeReplicas: AcceptRun;
}

/** Waits for the worker to finish the author's entries, then reconciles them with the 202s. */
export async function settle(author: string, acceptedIds: readonly string[]): Promise<Ledger> {
  await waitDrained(author, acceptedIds.length, 300_000);
  const rows = await rowsOf(author);
  const stored = new Set(rows.map((row) => row.id));
  const accepted = new Set(acceptedIds);
  return {
    author,
    accepted: accepted.size,
    persisted: rows.length,
    lost: [...accepted].filter((id) => !stored.has(id)).length,
    duplicated: rows.length - new Set(rows.map((row) => row.message)).size,
    unacknowledged: rows.filter((row) => !accepted.has(row.id)).length,
  };
}

/** POSTs for the plan's fixed time, then the ledger of what was accepted. */
async function accept(url: string, author: string, connections: number, plan: Plan): Promise<AcceptRun> {
  const { figures, acceptedIds } = await postEntries({ url, path: '/api/entries', connections, expect: 202, author, durationSeconds: plan.seconds });
  return { ...figures, ledger: await settle(author, acceptedIds) };
}

/** The ceilings: the same machine, the same images and configuration, without our code. */
export async function measureCeilings(plan: Plan): Promise<Ceilings> {
  const nginxAlone = await runLoad({ url: BASE_URL, path: '/nginx-health', connections: plan.connections, durationSeconds: plan.seconds, expect: 200 });
  const proxyUrl = await startProxyCeiling(await freePort());
  const proxyToBareNode = await runLoad(
    { url: proxyUrl, path: '/api/entries', connections: plan.connections, durationSeconds: plan.seconds, expect: 202 },
    { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'bench', message: 'proxy ceiling' }) },
  );
  const queue = await runProbe<Ceilings['queue']>('queue-ceiling.ts', [plan.entries, plan.connections]);
  const database = await runProbe<Ceilings['database']>('db-ceiling.ts', [plan.entries, 64, 2]);
  return { nginxAlone, proxyToBareNode, queue, database };
}

/** POST /api/entries through nginx at each concurrency, for a fixed time each. */
export async function measureAccept(plan: Plan, runId: string): Promise<AcceptRun[]> {
  const runs: AcceptRun[] = [];
  for (const connections of plan.concurrencies) runs.push(await accept(BASE_URL, `bench-${runId}-c${connections}`, connections, plan));
  return runs;
}

/** GET /api/entries?limit=50 through nginx (the table holds the rows of the accept runs). */
export function measureReads(plan: Plan): Promise<LoadFigures> {
  return runLoad({ url: BASE_URL, path: '/api/entries?limit=50', connections: plan.connections, durationSeconds: plan.seconds, expect: 200 });
}

/** Accepted POSTs/s through an nginx with one replica, then through the stack's nginx with three. */
export async function measureScaling(plan: Plan, runId: string): Promise<Scaling> {
  const oneUrl = await startOneReplicaNginx(await freePort());
  const oneReplica = await accept(oneUrl, `bench-${runId}-one`, plan.connections, plan);
  const threeReplicas = await accept(BASE_URL, `bench-${runId}-three`, plan.connections, plan);
  return { oneReplica, threeReplicas };
}

/** `entries` POSTs as fast as they are accepted, with the worker running; then until the last commit. */
export async function measureEndToEnd(plan: Plan, runId: string): Promise<EndToEnd> {
  const author = `bench-${runId}-e2e`;
  const startedAt = Date.now();
  const { figures, acceptedIds } = await postEntries({ url: BASE_URL, path: '/api/entries', connections: plan.connections, amount: plan.entries, expect: 202, author });
  const ledger = await settle(author, acceptedIds);
  const [row] = await psql(
    `SELECT extract(epoch FROM max(persisted_at)) * 1000, extract(epoch FROM max(persisted_at) - min(created_at)),
            percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM persisted_at - created_at) * 1000),
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM persisted_at - created_at) * 1000),
            max(extract(epoch FROM persisted_at - created_at) * 1000)
       FROM entries WHERE author = ${literal(author)}`,
  );
  const [lastMs = 0, spanSeconds = 0, p50 = 0, p99 = 0, max = 0] = (row ?? []).map(Number);
  return {
    submit: figures,
    ledger,
    lastPersistedAfterSeconds: round((lastMs - startedAt) / 1000, 2),
    persistedPerSecond: round(ledger.persisted / spanSeconds, 0),
    latencyMs: { p50: round(p50, 1), p99: round(p99, 1), max: round(max, 1) },
  };
}

export interface Backlog {
  author: string;
  submit: LoadFigures;
  acceptedIds: string[];
}

/** `entries` POSTs while the worker is stopped: a backlog for drainBacklog. */
export async function queueBacklog(plan: Plan, runId: string): Promise<Backlog> {
  const author = `bench-${runId}-drain`;
  await composeStop('worker');
  try {
    const { figures, acceptedIds } = await postEntries({ url: BASE_URL, path: '/api/entries', connections: plan.connections, amount: plan.entries, expect: 202, author });
    return { author, submit: figures, acceptedIds };
  } catch (error) {
    await composeStart('worker');
    throw error;
  }
}

/**
 * The worker's own pace: it starts and works through the backlog. The rate comes from the rows'
 * commit times (first to last), so the worker's start-up is not counted; it is the figure to hold
 * against the do-nothing worker's ceiling.
 */
export async function drainBacklog(plan: Plan, backlog: Backlog): Promise<Drain> {
  await composeStart('worker');
  await waitHealthyService('worker');
  const ledger = await settle(backlog.author, backlog.acceptedIds);
  const [row] = await psql(`SELECT extract(epoch FROM max(persisted_at) - min(persisted_at)) FROM entries WHERE author = ${literal(backlog.author)}`);
  const seconds = Number(row?.[0] ?? 0);
  return {
    entries: plan.entries,
    submit: backlog.submit,
    ledger,
    seconds: round(seconds, 2),
    persistedPerSecond: round(ledger.persisted / Math.max(seconds, 0.001), 0),
  };
}
