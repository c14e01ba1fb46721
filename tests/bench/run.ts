/**
 * The benchmark: the compose stack (the queued design) side by side with its synchronous peer
 * (the same API writing each row in the request, probes/sync-api.ts) and with the ceilings of its
 * parts (nginx, nginx → bare node:http, BullMQ, PostgreSQL), all on this machine in this run, all
 * loaded by wrk the same way (load.ts). Brings the stack up itself (project INFLOW_E2E_PROJECT,
 * like the other system tests), prints one report, writes test-results/bench.json (every figure,
 * the machine, the versions) and bench.md, removes what it started, and exits non-zero when a
 * request failed or an entry was lost or duplicated. Speed goals are reported, not enforced:
 * timings on a shared machine are noisy. Needs Docker and Node only, no root: wrk runs from the
 * tools image (load.ts), the figures come from the engine (resources.ts).
 *
 *   npm run bench                       (from the repository root; about 8 minutes)
 *   node bench/run.ts [--smoke] [--reuse] [--keep]     (from tests/)
 *
 * --smoke: 2 s loads and a 3 s PostgreSQL outage (npm test). --reuse: the stack already running
 * as the project. --keep: leave the stack running.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BASE_URL,
  containerId,
  docker,
  down,
  PROJECT,
  psql,
  REPO_ROOT,
  resolveContainers,
  runTool,
  up,
  waitHealthy,
} from '@inflow/test-support';
import { removeAll, removeSyncPeer, stackTarget, startSyncPeer } from './containers.ts';
import { cpuWindow, measureAccept, measureCeilings, measureDrain, measureOutage, measurePaced, measureReads, PLANS, type CpuWindow } from './measure.ts';
import { markdown, verdicts, type Results } from './report.ts';
import { sampleResources, stopMachineProbe, type ResourceSampler } from './resources.ts';

const { values } = parseArgs({
  options: { smoke: { type: 'boolean', default: false }, reuse: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } },
});
const plan = PLANS[values.smoke ? 'smoke' : 'full'];

// nginx's rate limit is per client address, and every client on this host reaches nginx from one
// address (docker-proxy connects from the bridge gateway): the benchmark's connections share one
// bucket, which its loads, pushing as fast as they can, would empty, and it would measure the limit
// instead of the stack. Its stack (and its extra nginx containers, containers.ts) run with the
// limit raised far above anything this machine serves (nginx alone: about 100,000 requests/s),
// unless these are set. With --reuse the running stack keeps the limit it was started with.
process.env['RATE_LIMIT_PER_SECOND'] ??= '1000000';
process.env['RATE_LIMIT_BURST'] ??= '1000000';

const say = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
};

/** Runs one step with a line before and after it, and records the CPU each container used meanwhile. */
async function step<T>(name: string, line: string, measure: () => Promise<T>, sampler: ResourceSampler, steps: Record<string, CpuWindow>): Promise<T> {
  say(line);
  const end = await cpuWindow(sampler);
  const result = await measure();
  steps[name] = await end();
  say(`  done in ${Math.round(steps[name].seconds)} s`);
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
    nginx: (await first(['exec', containerId('nginx'), 'sh', '-c', 'nginx -v 2>&1'])).replace(/^nginx version: nginx\//, ''),
    redis: /v=(\S+)/.exec(await first(['exec', containerId('redis'), 'redis-server', '--version']))?.[1] ?? '',
    postgres: (await psql('SHOW server_version'))[0]?.[0] ?? '',
    bullmq: packageVersion('bullmq'),
    express: packageVersion('express'),
    // wrk prints its version with the usage, and exits 1.
    wrk: /^wrk (\S+)/.exec((await runTool(['--network', 'none'], ['wrk', '--version'])).stdout)?.[1] ?? '',
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
  const stack = stackTarget();
  // The engine's machine, which may not be this one (a remote engine, a VM).
  const [cores = 0, memoryBytes = 0] = (await docker(['info', '--format', '{{.NCPU}}\n{{.MemTotal}}'])).trim().split('\n').map(Number);
  const cpuModel = /^model name\s*:\s*(.*)$/m.exec((await runTool(['--network', 'none'], ['cat', '/proc/cpuinfo'])).stdout)?.[1] ?? 'cpu';
  const sampler = sampleResources();
  let results: Results;
  const cleanupFailures: string[] = [];
  try {
    const steps: Record<string, CpuWindow> = {};
    const run = <T>(name: string, line: string, measure: () => Promise<T>) => step(name, line, measure, sampler, steps);
    const concurrencies = plan.concurrencies.join(', ');
    const ceilings = await run('ceilings', 'ceilings: nginx alone, nginx → bare node:http, PostgreSQL', () => measureCeilings(plan, stack));
    say('synchronous peer: starting three replicas and their nginx');
    const peer = await startSyncPeer();
    for (const [service, id] of Object.entries(peer.containers)) sampler.track(service, id);
    const targets = { queued: stack, sync: peer.target };
    const accept = await run('accept', `queued and synchronous: POST /api/entries at ${concurrencies} connections`, () => measureAccept(targets, plan, runId, sampler));
    const queuedOutage = await run('queuedOutage', `queued: PostgreSQL stopped for ${plan.outageSeconds} s under load`, () => measureOutage('queued', stack, plan, runId, sampler));
    const syncOutage = await run('syncOutage', `synchronous: PostgreSQL stopped for ${plan.outageSeconds} s under load`, () => measureOutage('sync', peer.target, plan, runId, sampler));
    await removeSyncPeer(peer);
    const reads = await run('reads', 'reads: GET /api/entries?limit=50', () => measureReads(plan, stack));
    const drain = await run('drain', 'drain: a backlog queued while the worker is stopped, then the do-nothing worker', () => measureDrain(plan, stack, runId));
    const half = Math.round(Math.max(...accept.queued.map((load) => load.requestsPerSecond)) / 2);
    const paced = await run('paced', `paced: POSTs at ${half}/s, half the highest accepted/s`, () => measurePaced(plan, stack, runId, half));
    results = {
      cores,
      ceilings,
      accept,
      outage: { queued: queuedOutage, sync: syncOutage },
      reads,
      drain,
      paced,
      steps,
      resources: await sampler.stop(),
    };
  } catch (error) {
    // Said before the cleanup below runs, so that an error of the cleanup cannot hide it.
    say(`the benchmark stopped: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    throw error;
  } finally {
    // Every step runs, whatever failed before it: the stack must not outlive a failed run.
    const cleanup: [string, () => unknown][] = [
      ['the sampler', () => sampler.stop()],
      ['the machine probe', () => stopMachineProbe()],
      ["the benchmark's containers", () => removeAll()],
      [
        'the stack',
        () => {
          if (!values.keep) down();
        },
      ],
    ];
    for (const [what, step] of cleanup) {
      try {
        await step();
      } catch (error) {
        cleanupFailures.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  if (cleanupFailures.length > 0) throw new Error(`cleaning up after the benchmark failed:\n${cleanupFailures.join('\n')}`);

  const goals = verdicts(results);
  const meta = {
    run: runId,
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    plan: `${plan.name} (${plan.seconds} s per timed load, concurrencies ${plan.concurrencies.join('/')}, PostgreSQL down ${plan.outageSeconds} s)`,
    machine: `${cores} × ${cpuModel}, ${Math.round(memoryBytes / 1024 ** 3)} GiB`,
    versions: Object.entries(stackVersions).map(([name, version]) => `${name} ${version}`).join(', '),
    'load generator': 'wrk (2 threads, Lua scripts in tests/bench/wrk) in a container of the tools image, in the network namespace of the nginx under test, port 80 (no docker-proxy)',
    'total runtime': `${Math.round((Date.now() - startedAt) / 1000)} s`,
  };
  const report = markdown(results, goals, meta, plan);
  process.stdout.write(`\n${report}\n`);
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bench.md'), report);
  writeFileSync(join(dir, 'bench.json'), `${JSON.stringify({ ...meta, versions: stackVersions, goals, ...results }, null, 2)}\n`);
  const broken = goals.filter((goal) => goal.correctness && !goal.met);
  for (const goal of broken) say(`FAILED: ${goal.name}: ${goal.figure}`);
  return broken.length === 0 ? 0 : 1;
}

process.exitCode = await main();
