/**
 * Turns the benchmark's figures into the targets' verdicts and one Markdown report (printed and
 * written to test-results/bench.md, next to bench.json).
 */
import { cpus } from 'node:os';
import { round, type LoadFigures } from './load.ts';
import type { AcceptRun, Ceilings, Drain, EndToEnd, Ledger, Scaling } from './measure.ts';
import type { ServiceUsage } from './resources.ts';

/** Per measurement: its wall-clock seconds and the CPU seconds each container used meanwhile. */
export type CpuByStep = Record<
  string,
  {
    seconds: number;
    containers: Record<string, number>;
    /** This process: autocannon and the bookkeeping. */
    loadGenerator: number;
    /** Every CPU of the machine, busy seconds. */
    machine: number;
  }
>;

export interface Results {
  accept: AcceptRun[];
  reads: LoadFigures;
  endToEnd: EndToEnd;
  drain: Drain;
  ceilings: Ceilings;
  scaling: Scaling;
  cpu: CpuByStep;
  resources: Record<string, ServiceUsage>;
}

export interface Target {
  name: string;
  figure: string;
  met: boolean;
  /** A correctness target (errors, loss, duplicates) fails the run; a speed target is reported. */
  correctness: boolean;
}

const sum = (values: readonly number[]): number => values.reduce((total, value) => total + value, 0);
const errorCount = (figures: LoadFigures): number => sum(Object.values(figures.errors));
const ratio = (a: number, b: number): number => (b > 0 ? round(a / b, 2) : 0);

export function targets(results: Results): Target[] {
  const loads = [...results.accept, results.reads, results.endToEnd.submit, results.drain.submit, results.scaling.oneReplica, results.scaling.threeReplicas];
  const ledgers: Ledger[] = [...results.accept, results.scaling.oneReplica, results.scaling.threeReplicas].map((run) => run.ledger);
  ledgers.push(results.endToEnd.ledger, results.drain.ledger);
  const errors = sum(loads.map(errorCount));
  // A timed load leaves at most one request per connection unanswered; a load of a fixed amount none.
  const timed = [...results.accept, results.scaling.oneReplica, results.scaling.threeReplicas];
  const strayRows =
    sum(timed.map((run) => Math.max(0, run.ledger.unacknowledged - run.connections))) +
    results.endToEnd.ledger.unacknowledged +
    results.drain.ledger.unacknowledged;
  const lost = sum(ledgers.map((ledger) => ledger.lost));
  const duplicated = sum(ledgers.map((ledger) => ledger.duplicated));
  const drainRatio = ratio(results.drain.persistedPerSecond, results.ceilings.queue.drainedPerSecond);
  const scaling = ratio(results.scaling.threeReplicas.requestsPerSecond, results.scaling.oneReplica.requestsPerSecond);
  // The container's resident memory at the end (cgroup anonymous memory; see resources.ts).
  const apiRss = Math.max(...['web1', 'web2', 'web3'].map((service) => results.resources[service]?.endMemoryMiB ?? Number.POSITIVE_INFINITY));
  const workerRss = results.resources['worker']?.endMemoryMiB ?? Number.POSITIVE_INFINITY;
  return [
    { name: 'no errors at any concurrency', figure: `${errors} errors in ${sum(loads.map((load) => load.requests))} requests`, met: errors === 0, correctness: true },
    { name: 'no entry lost', figure: `${lost} lost of ${sum(ledgers.map((ledger) => ledger.accepted))} accepted`, met: lost === 0, correctness: true },
    { name: 'no entry duplicated', figure: `${duplicated} duplicated`, met: duplicated === 0, correctness: true },
    {
      name: 'no row without a request',
      figure: `${sum(ledgers.map((ledger) => ledger.unacknowledged))} rows whose 202 was not read, ${strayRows} beyond the requests in flight when a load stopped`,
      met: strayRows === 0,
      correctness: true,
    },
    {
      name: 'persisted/s ≥ 0.8 × do-nothing worker',
      figure: `${results.drain.persistedPerSecond} / ${Math.round(results.ceilings.queue.drainedPerSecond)} = ${drainRatio}`,
      met: drainRatio >= 0.8,
      correctness: false,
    },
    {
      name: 'accepted/s with 3 replicas ≥ 1.4 × with 1',
      figure: `${results.scaling.threeReplicas.requestsPerSecond} / ${results.scaling.oneReplica.requestsPerSecond} = ${scaling}`,
      met: scaling >= 1.4,
      correctness: false,
    },
    { name: 'API container RSS < 150 MiB at the end', figure: `${apiRss} MiB (largest replica)`, met: apiRss < 150, correctness: false },
    { name: 'worker container RSS < 200 MiB at the end', figure: `${workerRss} MiB`, met: workerRss < 200, correctness: false },
  ];
}

const errorsText = (figures: LoadFigures): string =>
  Object.entries(figures.errors).map(([kind, count]) => `${kind}: ${count}`).join(', ') || 'none';

function loadRow(name: string, figures: LoadFigures, reference?: number): string {
  const share = reference === undefined ? '' : `${Math.round((figures.requestsPerSecond / reference) * 100)} %`;
  return `| ${name} | ${figures.connections} | ${figures.requests} | ${figures.requestsPerSecond} | ${figures.latencyMs.p50} | ${figures.latencyMs.p99} | ${figures.latencyMs.max} | ${errorsText(figures)} | ${share} |`;
}

const perEntryMs = (cpuSeconds: number | undefined, entries: number): number => round(((cpuSeconds ?? 0) * 1000) / entries, 2);

const ledgerText = (ledger: Ledger): string =>
  `${ledger.accepted} accepted (202 read), ${ledger.persisted} persisted, ${ledger.lost} lost, ${ledger.duplicated} duplicated, ${ledger.unacknowledged} in flight when the load stopped`;

export function markdown(results: Results, verdicts: readonly Target[], meta: Record<string, string>): string {
  const { ceilings, endToEnd, drain, scaling } = results;
  const services = Object.keys(results.resources);
  const proxy = ceilings.proxyToBareNode.requestsPerSecond;
  const loadHeader = ['| load | connections | requests | requests/s | p50 ms | p99 ms | max ms | errors | of proxy ceiling |', `|${' --- |'.repeat(9)}`];
  return [
    '# Benchmark',
    '',
    ...Object.entries(meta).map(([name, value]) => `- ${name}: ${value}`),
    '',
    '## Targets',
    '',
    '| target | figure | met |',
    '| --- | --- | --- |',
    ...verdicts.map((target) => `| ${target.name} | ${target.figure} | ${target.met ? 'yes' : '**no**'} |`),
    '',
    '## HTTP through nginx (:9999 unless noted)',
    '',
    ...loadHeader,
    loadRow('ceiling: nginx alone (GET /nginx-health)', ceilings.nginxAlone),
    loadRow('ceiling: nginx → 3 bare node:http (POST)', ceilings.proxyToBareNode, proxy),
    ...results.accept.map((run) => loadRow(`POST /api/entries c=${run.connections}`, run, proxy)),
    loadRow('GET /api/entries?limit=50', results.reads, proxy),
    loadRow('POST, nginx → 1 replica', scaling.oneReplica, proxy),
    loadRow('POST, nginx → 3 replicas', scaling.threeReplicas, proxy),
    '',
    '## Queue and database',
    '',
    '| measurement | figure |',
    '| --- | --- |',
    `| ceiling: BullMQ add, one process, ${ceilings.queue.inFlight} in flight | ${Math.round(ceilings.queue.addsPerSecond)} jobs/s |`,
    `| ceiling: BullMQ worker, do-nothing processor, concurrency ${ceilings.queue.concurrency} | ${Math.round(ceilings.queue.drainedPerSecond)} jobs/s |`,
    `| ceiling: multi-row INSERT, ${ceilings.database.batch} rows, ${ceilings.database.loops} in flight | ${Math.round(ceilings.database.rowsPerSecond)} rows/s |`,
    `| worker draining a backlog of ${drain.entries} | ${drain.persistedPerSecond} entries/s (${drain.seconds} s) |`,
    `| end to end: ${endToEnd.ledger.accepted} entries submitted at c=${endToEnd.submit.connections} | accepted ${endToEnd.submit.requestsPerSecond}/s; last persisted after ${endToEnd.lastPersistedAfterSeconds} s; ${endToEnd.persistedPerSecond} persisted/s |`,
    `| end to end: accept → commit latency | p50 ${endToEnd.latencyMs.p50} ms, p99 ${endToEnd.latencyMs.p99} ms, max ${endToEnd.latencyMs.max} ms |`,
    '',
    '## Entries accounted for',
    '',
    ...[...results.accept, scaling.oneReplica, scaling.threeReplicas].map((run) => `- ${run.ledger.author}: ${ledgerText(run.ledger)}`),
    `- ${endToEnd.ledger.author}: ${ledgerText(endToEnd.ledger)}`,
    `- ${drain.ledger.author}: ${ledgerText(drain.ledger)}`,
    '',
    '## Where the CPU went (CPU seconds used during each measurement; the machine has as many per second as it has cores)',
    '',
    `| measurement | seconds | ${services.join(' | ')} | all containers | load generator | rest of the host (docker-proxy, dockerd, kernel) | machine busy |`,
    `|${' --- |'.repeat(services.length + 6)}`,
    ...Object.entries(results.cpu).map(([step, { seconds, containers, loadGenerator, machine }]) => {
      const total = round(sum(services.map((service) => containers[service] ?? 0)), 1);
      const rest = round(machine - total - loadGenerator, 1);
      const busy = `${machine} (${Math.round((machine / seconds / cpus().length) * 100)} %)`;
      return `| ${step} | ${seconds} | ${services.map((service) => containers[service] ?? 0).join(' | ')} | ${total} | ${loadGenerator} | ${rest} | ${busy} |`;
    }),
    `| drain, per entry (ms) | | ${services.map((service) => perEntryMs(results.cpu['drain']?.containers[service], drain.entries)).join(' | ')} | | | | |`,
    '',
    '## Containers over the run (CPU in % of one core; container RSS = the cgroup\'s anonymous memory, no page cache)',
    '',
    '| service | CPU average % | CPU peak % | container RSS peak MiB | container RSS at end MiB | node process RSS peak MiB (with the binary\'s pages) |',
    '| --- | --- | --- | --- | --- | --- |',
    ...Object.entries(results.resources).map(
      ([service, usage]) =>
        `| ${service} | ${usage.averageCpuPercent} | ${usage.peakCpuPercent} | ${usage.peakMemoryMiB} | ${usage.endMemoryMiB ?? ''} | ${usage.peakRssMiB ?? ''} |`,
    ),
    '',
  ].join('\n');
}
