/**
 * The benchmark's measurements, one function per row group of the report. Each is bounded (a
 * duration, or a fault and its recovery) and leaves the queue drained behind it, so that the next
 * measurement does not share the machine with the worker's backlog.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { composeStart, composeStop, literal, psql, rowsOf, waitDrained, waitHealthyService } from '@inflow/test-support';
import { runProbe, startProxyCeiling } from './containers.ts';
import { loadGeneratorCpuSeconds, postEntries, round, runLoad, type LoadFigures, type LoadTarget } from './load.ts';
import { machineCpuSeconds, type ResourceSampler } from './resources.ts';

export interface Plan {
  name: 'full' | 'smoke';
  /** Seconds of each fixed-duration load. */
  seconds: number;
  concurrencies: readonly number[];
  /** Connections for the loads that are not about concurrency. */
  connections: number;
  /** Seconds PostgreSQL stays stopped in the restart measurement. */
  outageSeconds: number;
}

export const PLANS: Record<Plan['name'], Plan> = {
  full: { name: 'full', seconds: 10, concurrencies: [16, 64, 256], connections: 64, outageSeconds: 10 },
  smoke: { name: 'smoke', seconds: 2, concurrencies: [16, 64, 256], connections: 64, outageSeconds: 3 },
};

export type Design = 'queued' | 'sync';

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
   * Rows whose 202 the load never read: requests in flight when a load stopped (wrk closes its
   * connections then). At most one per connection.
   */
  unacknowledged: number;
}

/** CPU seconds used over one measurement window. */
export interface CpuWindow {
  seconds: number;
  /** The whole machine busy (/proc/stat), wrk and the engine's work for the benchmark included. */
  machine: number;
  /** wrk's own (its /proc/self/stat). */
  loadGenerator: number;
  /** Each sampled container's CPU time, as the engine reports it. */
  containers: Record<string, number>;
}

/** A POST load and what became of it: its figures, the rows, and the CPU from its start to its last commit. */
export interface AcceptRun extends LoadFigures {
  design: Design;
  ledger: Ledger;
  cpu: CpuWindow;
}

export interface Ceilings {
  nginxAlone: LoadFigures;
  proxyToBareNode: LoadFigures;
  database: { rows: number; batch: number; loops: number; rowsPerSecond: number };
}

export interface Outage {
  design: Design;
  run: AcceptRun;
  downSeconds: number;
}

export interface Drain {
  submit: LoadFigures;
  ledger: Ledger;
  /** Rows committed per second while the worker worked through the backlog. */
  persistedPerSecond: number;
  seconds: number;
  /** The same number of jobs through a do-nothing BullMQ worker (probes/queue-ceiling.ts). */
  ceiling: { jobs: number; inFlight: number; concurrency: number; addsPerSecond: number; drainedPerSecond: number };
}

export interface Paced {
  /** The rate asked for: half the highest accepted/s of the queued design. */
  rate: number;
  submit: LoadFigures;
  ledger: Ledger;
  /** Accept (the API's acceptedAt, created_at) to commit (persisted_at), from the rows. */
  latencyMs: { p50: number; p99: number; max: number };
}

/** Starts a CPU window; the function it returns ends it. */
export async function cpuWindow(sampler: ResourceSampler): Promise<() => Promise<CpuWindow>> {
  const startedAt = performance.now();
  const machine = await machineCpuSeconds();
  const loadGenerator = loadGeneratorCpuSeconds();
  const containers = await sampler.cpuSeconds();
  return async () => {
    const after = await sampler.cpuSeconds();
    const machineAfter = await machineCpuSeconds();
    return {
      seconds: round((performance.now() - startedAt) / 1000, 2),
      machine: round(machineAfter - machine, 2),
      loadGenerator: round(loadGeneratorCpuSeconds() - loadGenerator, 2),
      containers: Object.fromEntries(Object.entries(after).map(([service, used]) => [service, round(used - (containers[service] ?? 0), 2)])),
    };
  };
}

/** Waits for the worker to finish the author's entries, then reconciles them with the 202s. */
export async function reconcileEntries(author: string, acceptedIds: readonly string[]): Promise<Ledger> {
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

/** POSTs at `connections` until the load ends, then until every accepted entry is committed. */
async function acceptRun(design: Design, target: LoadTarget, author: string, connections: number, seconds: number, sampler: ResourceSampler, stop?: Promise<unknown>): Promise<AcceptRun> {
  const end = await cpuWindow(sampler);
  const { figures, acceptedIds } = await postEntries(target, { path: '/api/entries', connections, durationSeconds: seconds, author, ...(stop === undefined ? {} : { stop }) });
  const ledger = await reconcileEntries(author, acceptedIds);
  return { ...figures, design, ledger, cpu: await end() };
}

/** The ceilings: the same machine, images, configuration and load path, without our code. */
export async function measureCeilings(plan: Plan, stack: LoadTarget): Promise<Ceilings> {
  const nginxAlone = await runLoad(stack, { path: '/nginx-health', connections: plan.connections, durationSeconds: plan.seconds });
  // The same POSTs as the stack's (wrk/entries.lua); the bare servers answer each with one fixed id.
  const proxy = await startProxyCeiling();
  const { figures: proxyToBareNode } = await postEntries(proxy, { path: '/api/entries', connections: plan.connections, durationSeconds: plan.seconds, author: 'bench-ceiling' });
  const database = await runProbe<Ceilings['database']>('db-ceiling.ts', [20_000, 64, 2]);
  return { nginxAlone, proxyToBareNode, database };
}

/**
 * POST /api/entries through each design's nginx at each concurrency, for a fixed time each, the
 * two designs in turn at every concurrency, so that a machine busier at one moment than another
 * weighs on both alike.
 */
export async function measureAccept(targets: Record<Design, LoadTarget>, plan: Plan, runId: string, sampler: ResourceSampler): Promise<Record<Design, AcceptRun[]>> {
  const runs: Record<Design, AcceptRun[]> = { queued: [], sync: [] };
  for (const connections of plan.concurrencies) {
    for (const design of ['queued', 'sync'] as const) {
      runs[design].push(await acceptRun(design, targets[design], `bench-${runId}-${design}-c${connections}`, connections, plan.seconds, sampler));
    }
  }
  return runs;
}

/**
 * POSTs while PostgreSQL is stopped for `plan.outageSeconds` and started again: a few seconds of
 * load before, the outage, the restart until healthy, a few seconds after; then every accepted
 * entry must be in the table.
 */
export async function measureOutage(design: Design, target: LoadTarget, plan: Plan, runId: string, sampler: ResourceSampler): Promise<Outage> {
  const margin = Math.max(2, plan.seconds / 3);
  const restarted = Promise.withResolvers<undefined>();
  const fault = (async () => {
    await sleep(margin * 1000);
    await composeStop('postgres');
    const stoppedAt = performance.now();
    await sleep(plan.outageSeconds * 1000);
    await composeStart('postgres');
    await waitHealthyService('postgres');
    const downSeconds = round((performance.now() - stoppedAt) / 1000, 1);
    await sleep(margin * 1000);
    restarted.resolve(undefined);
    return downSeconds;
  })();
  // Should the fault fail, the load still ends (and the error surfaces below).
  fault.catch(() => {
    restarted.resolve(undefined);
  });
  const run = await acceptRun(design, target, `bench-${runId}-${design}-outage`, plan.connections, 0, sampler, restarted.promise);
  return { design, run, downSeconds: await fault };
}

/**
 * List reads one address may have in progress without a refusal: each replica admits 8 per
 * address at the default DB_POOL_MAX (docs/api.md#capacity-of-a-replica), and wrk is one address.
 * So 8 connections: no refusal even if every one of them is in progress on the same replica (a
 * slow replica collects more of a round robin's requests in flight; 12 got 429s in a CI run).
 */
const READ_CONNECTIONS = 8;

/** GET /api/entries?limit=50 through nginx (the table holds the rows of the accept runs). */
export function measureReads(plan: Plan, stack: LoadTarget): Promise<LoadFigures> {
  return runLoad(stack, { path: '/api/entries?limit=50', connections: Math.min(plan.connections, READ_CONNECTIONS), durationSeconds: plan.seconds });
}

/**
 * The worker's own pace against a do-nothing BullMQ worker's: a backlog queued while the worker
 * is stopped, then drained. The rate comes from the rows' commit times (first to last), so the
 * worker's start-up is not counted. The do-nothing worker gets as many jobs, the worker's options
 * and concurrency.
 */
export async function measureDrain(plan: Plan, stack: LoadTarget, runId: string): Promise<Drain> {
  const author = `bench-${runId}-drain`;
  await composeStop('worker');
  let backlog: Awaited<ReturnType<typeof postEntries>>;
  try {
    backlog = await postEntries(stack, { path: '/api/entries', connections: plan.connections, durationSeconds: plan.seconds, author });
  } finally {
    await composeStart('worker');
  }
  await waitHealthyService('worker');
  const ledger = await reconcileEntries(author, backlog.acceptedIds);
  const [row] = await psql(`SELECT extract(epoch FROM max(persisted_at) - min(persisted_at)) FROM entries WHERE author = ${literal(author)}`);
  const seconds = Number(row?.[0] ?? 0);
  const ceiling = await runProbe<Drain['ceiling']>('queue-ceiling.ts', [ledger.persisted, plan.connections]);
  return {
    submit: backlog.figures,
    ledger,
    seconds: round(seconds, 2),
    persistedPerSecond: round(ledger.persisted / Math.max(seconds, 0.001), 0),
    ceiling,
  };
}

/** POSTs paced at `rate` with the worker running; accept-to-commit latency from the rows. */
export async function measurePaced(plan: Plan, stack: LoadTarget, runId: string, rate: number): Promise<Paced> {
  const author = `bench-${runId}-paced`;
  const { figures, acceptedIds } = await postEntries(stack, { path: '/api/entries', connections: plan.connections, durationSeconds: plan.seconds, author, rate });
  const ledger = await reconcileEntries(author, acceptedIds);
  const [row] = await psql(
    `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM persisted_at - created_at) * 1000),
            percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM persisted_at - created_at) * 1000),
            max(extract(epoch FROM persisted_at - created_at) * 1000)
       FROM entries WHERE author = ${literal(author)}`,
  );
  const [p50 = 0, p99 = 0, max = 0] = (row ?? []).map(Number);
  return { rate, submit: figures, ledger, latencyMs: { p50: round(p50, 1), p99: round(p99, 1), max: round(max, 1) } };
}
