/**
 * The benchmark: the compose stack measured side by side with the ceilings of its parts (nginx,
 * nginx → bare node:http, BullMQ, PostgreSQL), all on this machine in this run. Brings the stack
 * up itself (project INFLOW_E2E_PROJECT on INFLOW_PORT, like the other system tests), prints one
 * report, writes test-results/bench.json (every figure, the machine, the versions) and bench.md,
 * removes what it started, and exits non-zero when a request failed or an entry was lost or
 * duplicated. Speed targets are reported, not enforced: timings on a shared machine are noisy.
 *
 *   npm run bench                       (from the repository root; about 5 minutes)
 *   node bench/run.ts [--smoke] [--reuse] [--keep]     (from tests/)
 *
 * --smoke: short loads and 1,000 entries (CI). --reuse: the stack already running as the project.
 * --keep: leave the stack running.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { docker, psql, resolveContainers } from '@inflow/test-support';
import { BASE_URL, containerId, down, PROJECT, REPO_ROOT, up, waitHealthy } from '@inflow/test-support';
import { removeAll } from './containers.ts';
import { round } from './load.ts';
import { drainBacklog, measureAccept, measureCeilings, measureEndToEnd, measureReads, measureScaling, PLANS, queueBacklog } from './measure.ts';
import { markdown, targets, type CpuByStep, type Results } from './report.ts';
import { machineCpuSeconds, sampleResources, type ResourceSampler } from './resources.ts';

const { values } = parseArgs({
  options: { smoke: { type: 'boolean', default: false }, reuse: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } },
});
const plan = PLANS[values.smoke ? 'smoke' : 'full'];

// nginx's rate limit is per client address, and every client on this host reaches nginx from one
// address (docker-proxy connects from the bridge gateway): the benchmark's connections share one
// bucket, which its loads, pushing as fast as they can, would empty, and it would measure the limit
// instead of the stack. Its stack (and its extra nginx containers, containers.ts) run with the
// limit raised far above anything this machine serves (nginx alone: about 9,000 requests/s),
// unless these are set. With --reuse the running stack keeps the limit it was started with.
process.env['RATE_LIMIT_PER_SECOND'] ??= '1000000';
process.env['RATE_LIMIT_BURST'] ??= '1000000';

const say = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
};

/**
 * Runs one measurement with a line before and after it, and records the CPU seconds each
 * container used meanwhile (where the time goes, with the wall-clock seconds beside them).
 */
async function step<T>(key: string, name: string, measure: () => Promise<T>, sampler: ResourceSampler, cpu: CpuByStep): Promise<T> {
  say(name);
  const startedAt = Date.now();
  const before = sampler.cpuSeconds();
  const machineBefore = machineCpuSeconds();
  const result = await measure();
  const machineAfter = machineCpuSeconds();
  const after = sampler.cpuSeconds();
  const seconds = round((Date.now() - startedAt) / 1000, 1);
  cpu[key] = {
    seconds,
    containers: Object.fromEntries(Object.entries(after).map(([service, used]) => [service, round(used - (before[service] ?? 0), 2)])),
    loadGenerator: round(machineAfter.loadGenerator - machineBefore.loadGenerator, 2),
    machine: round(machineAfter.machine - machineBefore.machine, 2),
  };
  say(`  done in ${Math.round(seconds)} s`);
  return result;
}

function packageVersion(name: string): string {
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

async function versions(): Promise<Record<string, string>> {
  const first = async (args: readonly string[]) => (await docker(args)).trim().split('\n')[0] ?? '';
  return {
    node: await first(['exec', containerId('web1'), 'node', '--version']),
    // nginx -v prints to stderr.
    nginx: await first(['exec', containerId('nginx'), 'sh', '-c', 'nginx -v 2>&1']),
    redis: await first(['exec', containerId('redis'), 'redis-server', '--version']),
    postgres: (await psql('SHOW server_version'))[0]?.[0] ?? '',
    bullmq: packageVersion('bullmq'),
    express: packageVersion('express'),
    autocannon: packageVersion('autocannon'),
  };
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  const runId = `${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}${randomBytes(2).toString('hex')}`;
  say(`benchmark ${runId} (${plan.name}): project ${PROJECT}, ${BASE_URL}`);
  if (values.reuse) {
    await waitHealthy();
  } else {
    down();
    say('building and starting the stack');
    await up();
  }
  resolveContainers();
  const stackVersions = await versions();
  const sampler = sampleResources();
  let results: Results;
  try {
    const cpu: CpuByStep = {};
    const ceilings = await step('ceilings', 'ceilings: nginx alone, nginx → bare node:http, BullMQ, PostgreSQL', () => measureCeilings(plan), sampler, cpu);
    const accept = await step('accept', `accept: POST /api/entries at ${plan.concurrencies.join(', ')} connections`, () => measureAccept(plan, runId), sampler, cpu);
    const reads = await step('reads', 'reads: GET /api/entries?limit=50', () => measureReads(plan), sampler, cpu);
    const scaling = await step('scaling', 'scaling: one replica, then three', () => measureScaling(plan, runId), sampler, cpu);
    const endToEnd = await step('endToEnd', `end to end: ${plan.entries} entries`, () => measureEndToEnd(plan, runId), sampler, cpu);
    const backlog = await step('backlog', `backlog: ${plan.entries} entries queued while the worker is stopped`, () => queueBacklog(plan, runId), sampler, cpu);
    const drain = await step('drain', 'drain: the worker started on the backlog', () => drainBacklog(plan, backlog), sampler, cpu);
    results = { ceilings, accept, reads, scaling, endToEnd, drain, cpu, resources: await sampler.stop() };
  } finally {
    await sampler.stop();
    await removeAll();
    if (!values.keep) down();
  }

  const verdicts = targets(results);
  const meta = {
    run: runId,
    plan: `${plan.name} (${plan.seconds} s per timed load, ${plan.entries} entries)`,
    machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 1024 ** 3)} GiB`,
    'load generator': 'autocannon, in this process, on the same machine',
    'total runtime': `${Math.round((Date.now() - startedAt) / 1000)} s`,
  };
  const report = markdown(results, verdicts, meta);
  process.stdout.write(`\n${report}\n`);
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench.md'), report);
  writeFileSync(join(dir, 'bench.json'), `${JSON.stringify({ ...meta, versions: stackVersions, targets: verdicts, ...results }, null, 2)}\n`);
  const broken = verdicts.filter((target) => target.correctness && !target.met);
  for (const target of broken) say(`FAILED: ${target.name}: ${target.figure}`);
  return broken.length === 0 ? 0 : 1;
}

process.exitCode = await main();
