/**
 * Turns the benchmark's figures into the goals' verdicts and one Markdown report (printed and
 * written to test-results/bench.md, next to bench.json): the tables docs/performance.md quotes.
 */
import { round, type LoadFigures } from './load.ts';
import type { AcceptRun, Ceilings, CpuWindow, Design, Drain, Ledger, Outage, Paced, Plan } from './measure.ts';
import type { ServiceUsage } from './resources.ts';

export interface Results {
  cores: number;
  ceilings: Ceilings;
  accept: Record<Design, AcceptRun[]>;
  outage: Record<Design, Outage>;
  reads: LoadFigures;
  drain: Drain;
  paced: Paced;
  /** Per step of run.ts: wall-clock seconds and CPU seconds. */
  steps: Record<string, CpuWindow>;
  resources: Record<string, ServiceUsage>;
}

export interface Verdict {
  name: string;
  figure: string;
  met: boolean;
  /** Why it is met or not, in a few words. */
  why: string;
  /** A correctness goal (errors, loss, duplicates) fails the run; a speed goal is reported. */
  correctness: boolean;
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
const errorCount = (figures: LoadFigures): number => sum(Object.values(figures.errors));
const ratio = (a: number, b: number): number => (b > 0 ? round(a / b, 2) : 0);
const at = (runs: readonly AcceptRun[], connections: number): AcceptRun | undefined => runs.find((run) => run.connections === connections);

/** CPU milliseconds per accepted entry over a run's window, wrk's own left out. */
export const cpuMsPerEntry = (run: AcceptRun): number => ratio((run.cpu.machine - run.cpu.loadGenerator) * 1000, run.ledger.persisted);

/** Every load of the run with its name, for the load generator's share. */
function allLoads(results: Results): { name: string; load: LoadFigures }[] {
  return [
    { name: 'ceiling: nginx alone', load: results.ceilings.nginxAlone },
    { name: 'ceiling: nginx → 3 bare node:http', load: results.ceilings.proxyToBareNode },
    ...(['queued', 'sync'] as const).flatMap((design) => results.accept[design].map((run) => ({ name: `${design} c=${run.connections}`, load: run }))),
    ...(['queued', 'sync'] as const).map((design) => ({ name: `${design}, PostgreSQL restart`, load: results.outage[design].run })),
    { name: 'GET /api/entries?limit=50', load: results.reads },
    { name: 'backlog (worker stopped)', load: results.drain.submit },
    { name: 'paced', load: results.paced.submit },
  ];
}

/** wrk's CPU as a share of the machine's capacity (every core for the load's duration), %. */
const generatorShare = (load: LoadFigures, cores: number): number => round((load.loadGeneratorCpuSeconds / (load.seconds * cores)) * 100, 1);

export function verdicts(results: Results): Verdict[] {
  const { accept, outage, drain, paced, cores } = results;
  const ledgers: Ledger[] = [...accept.queued, ...accept.sync, outage.queued.run, outage.sync.run].map((run) => run.ledger);
  ledgers.push(drain.ledger, paced.ledger);
  // Every load but the synchronous design's outage, whose errors are the point of it.
  const checked = allLoads(results).filter(({ name }) => name !== 'sync, PostgreSQL restart').map(({ load }) => load);
  const errors = sum(checked.map(errorCount));
  const lost = sum(ledgers.map((ledger) => ledger.lost));
  const duplicated = sum(ledgers.map((ledger) => ledger.duplicated));
  // Every load stops with at most one request per connection unanswered; and a request answered
  // with an error may still have its row (the synchronous peer's INSERT committed after the API's
  // 3 s enqueue timeout had answered 503).
  const stopped: { ledger: Ledger; load: LoadFigures }[] = [...accept.queued, ...accept.sync, outage.queued.run, outage.sync.run].map((run) => ({ ledger: run.ledger, load: run }));
  stopped.push({ ledger: drain.ledger, load: drain.submit }, { ledger: paced.ledger, load: paced.submit });
  const strayRows = sum(stopped.map(({ ledger, load }) => Math.max(0, ledger.unacknowledged - load.connections - errorCount(load))));

  const busiest = allLoads(results).reduce((top, next) => (next.load.requestsPerSecond > top.load.requestsPerSecond ? next : top));
  const busiestShare = generatorShare(busiest.load, cores);
  const entryLoads = [...accept.queued, ...accept.sync];
  const heaviestEntryLoad = entryLoads.reduce((top, next) => (next.requestsPerSecond > top.requestsPerSecond ? next : top));
  const entryShare = generatorShare(heaviestEntryLoad, cores);

  const pairs = accept.queued.map((queued) => ({ connections: queued.connections, queued, sync: at(accept.sync, queued.connections) }));
  const acceptRatios = pairs.map(({ connections, queued, sync }) => ({ connections, ratio: ratio(queued.requestsPerSecond, sync?.requestsPerSecond ?? 0) }));
  const at64 = acceptRatios.find(({ connections }) => connections === 64)?.ratio ?? 0;
  const queued256 = at(accept.queued, 256);
  const sync256 = at(accept.sync, 256);
  const p99Ratio = ratio(queued256?.latencyMs.p99 ?? 0, sync256?.latencyMs.p99 ?? 0);
  const queuedOutageErrors = errorCount(outage.queued.run);
  const syncOutageErrors = errorCount(outage.sync.run);
  const queued64 = at(accept.queued, 64);
  const perEntry = queued64 === undefined ? 0 : cpuMsPerEntry(queued64);
  const drainRatio = ratio(drain.persistedPerSecond, drain.ceiling.drainedPerSecond);
  const apiRss = Math.max(...['web1', 'web2', 'web3'].map((service) => results.resources[service]?.endMemoryMiB ?? Number.POSITIVE_INFINITY));
  const workerRss = results.resources['worker']?.endMemoryMiB ?? Number.POSITIVE_INFINITY;

  return [
    { name: 'no errors (every load but the synchronous design\'s PostgreSQL restart)', figure: `${errors} errors in ${sum(checked.map((load) => load.requests))} requests`, met: errors === 0, why: errors === 0 ? 'every request answered as expected' : 'see the errors columns', correctness: true },
    { name: 'no entry lost', figure: `${lost} lost of ${sum(ledgers.map((ledger) => ledger.accepted))} accepted`, met: lost === 0, why: lost === 0 ? 'every 202 has its row' : 'see "Entries accounted for"', correctness: true },
    { name: 'no entry duplicated', figure: `${duplicated} duplicated`, met: duplicated === 0, why: duplicated === 0 ? 'one row per message' : 'see "Entries accounted for"', correctness: true },
    {
      name: 'no row without a request',
      figure: `${sum(ledgers.map((ledger) => ledger.unacknowledged))} rows whose 202 was not read, ${strayRows} beyond the requests in flight when a load stopped`,
      met: strayRows === 0,
      why: strayRows === 0 ? 'rows without a read 202: at most the requests in flight as wrk stops, and the ones answered with an error' : 'rows nobody asked for',
      correctness: true,
    },
    {
      name: "load generator ≤ 10 % of the machine at the stack's highest load",
      figure: `${entryShare} % at ${heaviestEntryLoad.design} c=${heaviestEntryLoad.connections} (${heaviestEntryLoad.requestsPerSecond} req/s); ceilings: ${busiestShare} % at ${busiest.name} (${busiest.load.requestsPerSecond} req/s)`,
      met: entryShare <= 10,
      why: "wrk is C and LuaJIT; the entry loads also parse each 202 for its id. A ceiling's load is far higher, and so is wrk's share there (its table)",
      correctness: false,
    },
    {
      name: 'queued accepts more than synchronous at every concurrency, ≥ 1.3× at 64',
      figure: acceptRatios.map(({ connections, ratio: value }) => `c=${connections}: ${value}×`).join(', '),
      met: acceptRatios.every(({ ratio: value }) => value > 1) && at64 >= 1.3,
      why: 'a POST costs a Redis add instead of a PostgreSQL commit; both share the same 2 cores',
      correctness: false,
    },
    {
      name: 'queued p99 at 256 connections ≤ ½ synchronous p99',
      figure: `${queued256?.latencyMs.p99 ?? '?'} ms / ${sync256?.latencyMs.p99 ?? '?'} ms = ${p99Ratio}`,
      met: p99Ratio > 0 && p99Ratio <= 0.5,
      why: 'the synchronous p99 waits for commits (pool and WAL flush); the queued one for CPU',
      correctness: false,
    },
    {
      name: 'PostgreSQL restart: queued answers every POST 202, synchronous fails them',
      figure: `queued: ${queuedOutageErrors} errors in ${outage.queued.run.requests}, ${outage.queued.run.ledger.lost} lost; synchronous: ${syncOutageErrors} errors in ${outage.sync.run.requests}`,
      met: queuedOutageErrors === 0 && outage.queued.run.ledger.lost === 0 && syncOutageErrors > 0,
      why: 'the queue holds the entries until the worker can commit them; the synchronous POST needs the database',
      correctness: false,
    },
    {
      name: 'CPU per accepted-and-persisted entry ≤ 0.45 ms (machine, queued, c=64)',
      figure: `${perEntry} ms`,
      met: perEntry > 0 && perEntry <= 0.45,
      why: 'machine busy time from the load\'s start to its last commit, wrk left out, over the rows; noisy on a shared machine',
      correctness: false,
    },
    {
      name: 'drain ≥ 0.8 × a do-nothing BullMQ worker',
      figure: `${drain.persistedPerSecond} / ${Math.round(drain.ceiling.drainedPerSecond)} = ${drainRatio}`,
      met: drainRatio >= 0.8,
      why: 'the same jobs, options and concurrency; the difference is the INSERTs',
      correctness: false,
    },
    {
      name: 'accept → commit p99 < 100 ms at half the highest accept rate',
      figure: `p99 ${paced.latencyMs.p99} ms at ${paced.submit.requestsPerSecond} req/s (asked ${paced.rate})`,
      met: paced.latencyMs.p99 > 0 && paced.latencyMs.p99 < 100,
      why: 'from the rows: persisted_at − created_at',
      correctness: false,
    },
    { name: 'API container RSS < 150 MiB at the end', figure: `${apiRss} MiB (largest replica)`, met: apiRss < 150, why: 'cgroup anonymous memory', correctness: false },
    { name: 'worker container RSS < 200 MiB at the end', figure: `${workerRss} MiB`, met: workerRss < 200, why: 'cgroup anonymous memory', correctness: false },
  ];
}

const errorsText = (figures: LoadFigures): string =>
  Object.entries(figures.errors).map(([kind, count]) => `${kind}: ${count}`).join(', ') || 'none';

const ledgerText = (ledger: Ledger): string =>
  `${ledger.accepted} accepted (202 read), ${ledger.persisted} persisted, ${ledger.lost} lost, ${ledger.duplicated} duplicated, ${ledger.unacknowledged} in flight when the load stopped`;

function loadRow(name: string, figures: LoadFigures): string {
  return `| ${name} | ${figures.connections} | ${figures.requests} | ${figures.requestsPerSecond} | ${figures.latencyMs.p50} | ${figures.latencyMs.p99} | ${errorsText(figures)} |`;
}

const NODE_REPLICAS = ['web1', 'web2', 'web3'];

export function markdown(results: Results, goals: readonly Verdict[], meta: Record<string, string>, plan: Plan): string {
  const { ceilings, accept, outage, drain, paced, cores } = results;
  const services = Object.keys(results.resources);
  const queued64 = at(accept.queued, 64);
  const sync64 = at(accept.sync, 64);
  const perEntry = (run: AcceptRun | undefined, service: string): string => (run === undefined ? '' : String(ratio((run.cpu.containers[service] ?? 0) * 1000, run.ledger.persisted)));
  return [
    '# Benchmark',
    '',
    ...Object.entries(meta).map(([name, value]) => `- ${name}: ${value}`),
    '',
    '## Goals',
    '',
    '| goal | figure | met | why |',
    '| --- | --- | --- | --- |',
    ...goals.map((goal) => `| ${goal.name} | ${goal.figure} | ${goal.met ? 'yes' : '**no**'} | ${goal.why} |`),
    '',
    '## Queued and synchronous, side by side (POST /api/entries through nginx, 3 replicas)',
    '',
    'CPU per request: machine busy time from the start of the load to the commit of its last row, wrk\'s own left out, over the rows.',
    '',
    '| connections | queued accepted/s | p50 ms | p99 ms | CPU ms/request | synchronous accepted/s | p50 ms | p99 ms | CPU ms/request | queued ÷ synchronous |',
    `|${' --- |'.repeat(10)}`,
    ...accept.queued.map((queued) => {
      const sync = at(accept.sync, queued.connections);
      const syncCells = sync === undefined ? ' | | | ' : `${sync.requestsPerSecond} | ${sync.latencyMs.p50} | ${sync.latencyMs.p99} | ${cpuMsPerEntry(sync)}`;
      return `| ${queued.connections} | ${queued.requestsPerSecond} | ${queued.latencyMs.p50} | ${queued.latencyMs.p99} | ${cpuMsPerEntry(queued)} | ${syncCells} | ${ratio(queued.requestsPerSecond, sync?.requestsPerSecond ?? 0)}× |`;
    }),
    '',
    `## PostgreSQL stopped for ${plan.outageSeconds} s under load, then started (c=${outage.queued.run.connections})`,
    '',
    'Down: from the end of `compose stop` to healthy again after `compose start`.',
    '',
    '| design | down s | requests | answered 202 | errors seen by clients | accepted entries persisted afterwards | rows without a read 202 (in flight at the end, or answered with an error) |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...(['queued', 'sync'] as const).map((design) => {
      const { run, downSeconds } = outage[design];
      return `| ${design === 'queued' ? 'queued' : 'synchronous'} | ${downSeconds} | ${run.requests} | ${run.statuses['202'] ?? 0} | ${errorsText(run)} | ${run.ledger.accepted - run.ledger.lost} of ${run.ledger.accepted} (${run.ledger.lost} lost) | ${run.ledger.unacknowledged} |`;
    }),
    '',
    '## Ceilings and other loads (wrk in the network namespace of the nginx under test, port 80)',
    '',
    '| load | connections | requests | requests/s | p50 ms | p99 ms | errors |',
    `|${' --- |'.repeat(7)}`,
    loadRow('ceiling: nginx alone (GET /nginx-health)', ceilings.nginxAlone),
    loadRow('ceiling: nginx → 3 bare node:http (POST, same script)', ceilings.proxyToBareNode),
    loadRow('GET /api/entries?limit=50', results.reads),
    // The queued design's accepting alone: its worker's share of the 2 cores deferred.
    loadRow('POST /api/entries, the worker stopped (the drain\'s backlog)', drain.submit),
    '',
    '## Queue and database',
    '',
    '| measurement | figure |',
    '| --- | --- |',
    `| ceiling: multi-row INSERT, ${ceilings.database.batch} rows, ${ceilings.database.loops} in flight | ${Math.round(ceilings.database.rowsPerSecond)} rows/s |`,
    `| ceiling: BullMQ add, one process, ${drain.ceiling.inFlight} in flight | ${Math.round(drain.ceiling.addsPerSecond)} jobs/s |`,
    `| ceiling: do-nothing BullMQ worker, concurrency ${drain.ceiling.concurrency}, ${drain.ceiling.jobs} jobs | ${Math.round(drain.ceiling.drainedPerSecond)} jobs/s |`,
    `| the worker draining a backlog of ${drain.ledger.persisted} | ${drain.persistedPerSecond} entries/s (${drain.seconds} s) |`,
    `| accept → commit, paced at ${paced.submit.requestsPerSecond} req/s (half the highest accepted/s) | p50 ${paced.latencyMs.p50} ms, p99 ${paced.latencyMs.p99} ms, max ${paced.latencyMs.max} ms |`,
    '',
    `## CPU per accepted-and-persisted entry, c=64 (ms; ${cores} cores)`,
    '',
    `| design | machine, wrk left out | all containers | wrk | ${services.join(' | ')} |`,
    `|${' --- |'.repeat(services.length + 4)}`,
    ...[queued64, sync64].flatMap((run) => {
      if (run === undefined) return [];
      const containers = ratio(sum(Object.values(run.cpu.containers)) * 1000, run.ledger.persisted);
      const cells = [cpuMsPerEntry(run), containers, ratio(run.cpu.loadGenerator * 1000, run.ledger.persisted), ...services.map((service) => perEntry(run, service))];
      return [`| ${run.design === 'queued' ? 'queued' : 'synchronous'} | ${cells.join(' | ')} |`];
    }),
    '',
    'The machine figure includes whatever else ran on the machine meanwhile (dockerd, the benchmark\'s own polling); the containers\' is the stack alone.',
    '',
    `Scaling: the three replicas share ${cores} cores with nginx, Redis, PostgreSQL, the worker and wrk, so a replica more adds no core. ` +
      `At c=64 the replicas used ${NODE_REPLICAS.map((service) => perEntry(queued64, service)).join(' / ')} ms of CPU per entry each: the API's accept rate grows with replicas only while each has a core of its own.`,
    '',
    `## The load generator's share (wrk's CPU; machine capacity = ${cores} cores × the load's seconds)`,
    '',
    '| load | requests/s | wrk CPU s | machine busy CPU s | wrk, % of the machine | wrk, % of the busy time |',
    '| --- | --- | --- | --- | --- | --- |',
    ...allLoads(results).map(
      ({ name, load }) =>
        `| ${name} | ${load.requestsPerSecond} | ${round(load.loadGeneratorCpuSeconds, 2)} | ${load.machineCpuSeconds} | ${generatorShare(load, cores)} | ${round((load.loadGeneratorCpuSeconds / Math.max(load.machineCpuSeconds, 0.01)) * 100, 1)} |`,
    ),
    '',
    '## Entries accounted for',
    '',
    ...[...accept.queued, ...accept.sync, outage.queued.run, outage.sync.run].map((run) => `- ${run.ledger.author}: ${ledgerText(run.ledger)}`),
    `- ${drain.ledger.author}: ${ledgerText(drain.ledger)}`,
    `- ${paced.ledger.author}: ${ledgerText(paced.ledger)}`,
    '',
    '## Where the CPU went (CPU seconds per step; the machine has as many per second as it has cores)',
    '',
    `| step | seconds | ${services.join(' | ')} | wrk | machine busy |`,
    `|${' --- |'.repeat(services.length + 4)}`,
    ...Object.entries(results.steps).map(([step, cpu]) => {
      const busy = `${cpu.machine} (${Math.round((cpu.machine / cpu.seconds / cores) * 100)} %)`;
      return `| ${step} | ${cpu.seconds} | ${services.map((service) => cpu.containers[service] ?? 0).join(' | ')} | ${cpu.loadGenerator} | ${busy} |`;
    }),
    '',
    "## Containers over the run (CPU in % of one core; container RSS = the cgroup's anonymous memory, no page cache)",
    '',
    "| service | CPU average % | CPU peak % | container RSS peak MiB | container RSS at end MiB | node process RSS peak MiB (with the binary's pages) |",
    '| --- | --- | --- | --- | --- | --- |',
    ...Object.entries(results.resources).map(
      ([service, usage]) =>
        `| ${service} | ${usage.averageCpuPercent} | ${usage.peakCpuPercent} | ${usage.peakMemoryMiB} | ${usage.endMemoryMiB ?? ''} | ${usage.peakRssMiB ?? ''} |`,
    ),
    '',
  ].join('\n');
}
