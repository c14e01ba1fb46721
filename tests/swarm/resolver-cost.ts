/**
 * What resolving the replicas at run time costs nginx on Swarm (deploy/swarm/nginx.conf), against
 * the same config with an `upstream` block (resolved once, at start), with and without upstream
 * keep-alive. Not part of npm test: a measurement, run by hand against a deployed stack.
 *
 *   node tests/swarm/resolver-cost.ts [--seconds 10] [--rounds 3] [--connections 32]
 *
 * Needs the stack running under INFLOW_SWARM_STACK (default inflow-swarm: deployed by hand as in
 * deploy/swarm/README.md), NGINX_IMAGE as the stack got it, and the Docker host (it reads the
 * containers' cgroups, as root). It starts three extra nginx services on the stack's edge network,
 * one per variant, each publishing a port of its own in host mode (INFLOW_SWARM_BENCH_PORT,
 * default 9991 to 9993), all with the rate limit out of the way; then it loads them in turn,
 * round after round, so that a busy machine slows every variant alike, and prints the median of
 * each: requests/s, latency, and the CPU time per request of nginx and of the web tasks. It
 * removes what it made, even when a step fails.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { round, runLoad, type LoadFigures } from '../bench/load.ts';
import { REPO_ROOT, waitFor } from '@inflow/test-support';
import { docker, runningTasks, serviceName, STACK, waitConverged } from './swarm.ts';

// `tap swarm` runs every file of this folder: under tap, this one is skipped, not run.
if (process.env['TAP_CHILD_ID'] !== undefined) {
  process.stdout.write('1..0 # a measurement, run by hand: node tests/swarm/resolver-cost.ts\n');
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
  },
});
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);
const firstPort = Number(process.env['INFLOW_SWARM_BENCH_PORT'] ?? '9991');

/**
 * conf.d/inflow-swarm-upstream.conf for each variant (what deploy/swarm/40-inflow-swarm-upstream.sh
 * writes, chosen here instead): $inflow_api is the name itself (resolved per request), or the
 * name of an upstream block (resolved once, when nginx starts).
 */
const RUNTIME = 'map $server_port $inflow_api {\n  default tasks.web:8080;\n}\n';
const upstream = (keepalive: boolean): string =>
  [
    'upstream inflow_api_static {',
    '  server tasks.web:8080 max_fails=3 fail_timeout=10s;',
    ...(keepalive ? ['  keepalive 64;', '  keepalive_timeout 60s;', '  keepalive_requests 10000;'] : []),
    '}',
    'map $server_port $inflow_api {',
    '  default inflow_api_static;',
    '}',
    '',
  ].join('\n');

const hook = readFileSync(join(REPO_ROOT, 'deploy', 'swarm', '40-inflow-swarm-upstream.sh'), 'utf8');
if (!hook.includes(RUNTIME)) throw new Error('deploy/swarm/40-inflow-swarm-upstream.sh no longer writes the runtime variant this script measures');

const variants = [
  { key: 'runtime', name: 'runtime DNS, no upstream keep-alive (the stack on nginx 1.22)', conf: RUNTIME },
  { key: 'static', name: 'upstream block resolved at start, no keep-alive', conf: upstream(false) },
  { key: 'keepalive', name: 'upstream block resolved at start, keep-alive 64 (as compose)', conf: upstream(true) },
].map((variant, i) => ({ ...variant, service: `bench-${variant.key}`, config: `${STACK}_bench_${variant.key}_${Date.now()}`, port: firstPort + i }));

/**
 * CPU time a container has used so far, in ns, from its cgroup (v1, Docker's cgroupfs driver, or
 * v2): a cost per request that a busy, shared machine distorts far less than requests/s.
 */
function cpuNs(id: string): number {
  const v1 = `/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`;
  if (existsSync(v1)) return Number(readFileSync(v1, 'utf8'));
  for (const dir of [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`]) {
    const stat = `${dir}/cpu.stat`;
    if (existsSync(stat)) return Number(/^usage_usec (\d+)$/m.exec(readFileSync(stat, 'utf8'))?.[1] ?? 0) * 1000;
  }
  throw new Error(`no cgroup found for container ${id} (run this on the Docker host, as root)`);
}

const cpuOf = (ids: readonly string[]): number => ids.reduce((sum, id) => sum + cpuNs(id), 0);

const median = (numbers: readonly number[]): number => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

async function setUp(dir: string): Promise<void> {
  await waitConverged(['web', 'nginx'], 60_000);
  for (const variant of variants) {
    const file = join(dir, `${variant.key}.conf`);
    writeFileSync(file, variant.conf);
    await docker(['config', 'create', variant.config, file]);
    await docker([
      'service', 'create', '--detach', '--name', serviceName(variant.service),
      '--network', `${STACK}_edge`, '--endpoint-mode', 'dnsrr',
      '--publish', `mode=host,target=80,published=${variant.port}`,
      // The stack's nginx.conf and edge settings; the upstream include is the variant's (and the
      // hook that would write it is left out).
      '--config', `source=${STACK}_nginx_conf,target=/etc/nginx/nginx.conf,mode=0444`,
      '--config', `source=${variant.config},target=/etc/nginx/conf.d/inflow-swarm-upstream.conf,mode=0444`,
      '--config', `source=${STACK}_nginx_edge_http,target=/etc/nginx/templates/inflow-edge-http.conf.template,mode=0444`,
      '--config', `source=${STACK}_nginx_edge_server,target=/etc/nginx/templates/inflow-edge-server.conf.template,mode=0444`,
      '--config', `source=${STACK}_nginx_edge_hook,target=/docker-entrypoint.d/15-inflow-edge.envsh,mode=0555`,
      // The rate limit would cut the load; every variant gets the same (unreachable) one.
      '--env', 'RATE_LIMIT_PER_SECOND=1000000', '--env', 'RATE_LIMIT_BURST=1000000',
      '--health-cmd', 'curl -fsS -o /dev/null http://127.0.0.1/nginx-health', '--health-interval', '2s',
      process.env['NGINX_IMAGE'] ?? 'nginx:1.28-bookworm',
    ]);
  }
  await waitConverged(variants.map((variant) => variant.service), 120_000);
}

async function tearDown(): Promise<void> {
  for (const variant of variants) {
    await docker(['service', 'rm', serviceName(variant.service)]).catch(() => undefined);
  }
  // A config is removable once no task uses it any more.
  for (const variant of variants) {
    await waitFor(() => docker(['config', 'rm', variant.config]).then(() => true, () => false), {
      timeoutMs: 60_000,
      what: `config ${variant.config} to be removed`,
      intervalMs: 1_000,
    }).catch((error: unknown) => {
      process.stderr.write(`${String(error)}\n`);
    });
  }
}

const loads = [
  { name: `GET /api/instance, ${connections} connections`, path: '/api/instance', request: {} },
  {
    name: `POST /api/entries, ${connections} connections`,
    path: '/api/entries',
    request: { body: JSON.stringify({ author: 'resolver-cost', message: 'resolver cost' }) },
  },
];

interface Run {
  figures: LoadFigures;
  /** CPU time per request, µs: the variant's nginx, and the web tasks together. */
  nginxUs: number;
  webUs: number;
}

const dir = mkdtempSync(join(tmpdir(), 'inflow-resolver-cost-'));
try {
  await setUp(dir);
  const results = new Map<string, Run[]>();
  for (let r = 0; r < rounds; r += 1) {
    for (const load of loads) {
      for (const variant of variants) {
        const nginx = (await runningTasks(variant.service)).map((task) => task.id);
        const web = (await runningTasks('web')).map((task) => task.id);
        const [nginxBefore, webBefore] = [cpuOf(nginx), cpuOf(web)];
        const figures = await runLoad({ url: `http://127.0.0.1:${variant.port}` }, { path: load.path, connections, durationSeconds: seconds, ...load.request });
        const perRequestUs = (ns: number) => round(ns / 1000 / Math.max(figures.requests, 1), 0);
        const run: Run = { figures, nginxUs: perRequestUs(cpuOf(nginx) - nginxBefore), webUs: perRequestUs(cpuOf(web) - webBefore) };
        const key = `${load.name}|${variant.key}`;
        results.set(key, [...(results.get(key) ?? []), run]);
        process.stdout.write(
          `round ${r + 1} ${load.name} ${variant.key}: ${figures.requestsPerSecond} req/s, p50 ${figures.latencyMs.p50} ms, p99 ${figures.latencyMs.p99} ms, CPU per request nginx ${run.nginxUs} µs, web ${run.webUs} µs, errors ${JSON.stringify(figures.errors)}\n`,
        );
      }
    }
  }
  const lines = [
    '',
    `| load | nginx variant | requests/s | vs. keep-alive | p50 ms | p99 ms | CPU µs per request: nginx | web tasks | errors |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ];
  for (const load of loads) {
    const baseline = median((results.get(`${load.name}|keepalive`) ?? []).map((run) => run.figures.requestsPerSecond));
    for (const variant of variants) {
      const runs = results.get(`${load.name}|${variant.key}`) ?? [];
      const rps = median(runs.map((run) => run.figures.requestsPerSecond));
      const errors = runs.reduce((sum, run) => sum + Object.values(run.figures.errors).reduce((a, b) => a + b, 0), 0);
      const cells = [
        load.name,
        variant.name,
        round(rps, 0),
        `${round((rps / baseline) * 100, 0)} %`,
        median(runs.map((run) => run.figures.latencyMs.p50)),
        median(runs.map((run) => run.figures.latencyMs.p99)),
        median(runs.map((run) => run.nginxUs)),
        median(runs.map((run) => run.webUs)),
        errors,
      ];
      lines.push(`| ${cells.join(' | ')} |`);
    }
  }
  lines.push('', `Medians of ${rounds} rounds, ${seconds} s and ${connections} connections each (wrk from the tools image on the engine's host network, through each variant's published port).`);
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  await tearDown();
  rmSync(dir, { recursive: true, force: true });
}
