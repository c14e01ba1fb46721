/**
 * What resolving the replicas at run time costs nginx on Swarm (deploy/swarm/nginx.conf), against
 * the same config with an `upstream` block (resolved once, at start), with and without upstream
 * keep-alive. Not part of npm test: a measurement, run by hand against a deployed stack.
 *
 *   node tests/swarm/resolver-cost.ts [--seconds 10] [--rounds 3] [--connections 32]
 *
 * It makes a swarm of its own and deploys the stack on it, as tests/swarm/stack.test.ts does
 * (tests/swarm/cluster.ts: Docker engines in containers; the host engine's swarm state is never
 * touched), with NODE_IMAGE, NGINX_IMAGE and the rest from the environment. It starts three extra
 * nginx services on the stack's edge network, one per variant, each publishing a port of its own
 * in host mode on the edge node (INFLOW_SWARM_BENCH_PORT, default 9991 to 9993, reached from the
 * host through ports the node publishes on 127.0.0.1), all with the rate limit out of the way;
 * then it loads them in turn,
 * round after round, so that a busy machine slows every variant alike, and prints the median of
 * each: requests/s, latency, and the CPU time per request of nginx and of the web tasks. It
 * removes what it made, even when a step fails.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { round, runLoad, type LoadFigures } from '../bench/load.ts';
import { exec, REPO_ROOT } from '@inflow/test-support';
import { buildNodeImage, Cluster, sweepStale } from './cluster.ts';
import { buildImages, serviceName, SERVICES, Stack, STACK, SWARM_PORT, type TaskContainer } from './swarm.ts';

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
 * CPU time a container has used so far, in ns, from its cgroup as its node sees it (cgroup v1,
 * cgroupfs: under the node's cgroup parent, or /docker on a --privileged node; or v2): a cost per
 * request that a busy, shared machine distorts far less than requests/s.
 */
async function cpuNs(task: TaskContainer): Promise<number> {
  const parents = [task.node.name, 'docker'];
  const script = [
    ...parents.map((parent) => `cat /sys/fs/cgroup/cpuacct/${parent}/${task.id}/cpuacct.usage 2>/dev/null && exit 0`),
    ...parents.map((parent) => `sed -n 's/^usage_usec //p' /sys/fs/cgroup/${parent}/${task.id}/cpu.stat 2>/dev/null | grep . | sed 's/$/000/' && exit 0`),
    'exit 1',
  ].join('; ');
  const out = await exec('docker', ['exec', task.node.name, 'sh', '-c', script]);
  if (out.status !== 0) throw new Error(`no cgroup found for container ${task.id} on ${task.node.name}`);
  return Number(out.stdout.trim());
}

const cpuOf = async (tasks: readonly TaskContainer[]): Promise<number> => (await Promise.all(tasks.map(cpuNs))).reduce((sum, ns) => sum + ns, 0);

const median = (numbers: readonly number[]): number => {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? 0) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

const cluster = new Cluster({ edgePorts: [SWARM_PORT, ...[0, 1, 2].map((i) => firstPort + i)] });
const stack = new Stack(cluster);

async function setUp(): Promise<void> {
  await sweepStale();
  const building = buildNodeImage();
  buildImages();
  await building;
  await cluster.start();
  await stack.loadImages();
  await stack.deploy(`${randomBytes(24).toString('base64url')}\n`);
  await stack.waitConverged(SERVICES, 600_000);
  for (const variant of variants) {
    await cluster.writeFile(cluster.control, `/inflow/bench/${variant.key}.conf`, variant.conf);
    await stack.docker(['config', 'create', variant.config, `/inflow/bench/${variant.key}.conf`]);
    await stack.docker([
      'service', 'create', '--detach', '--name', serviceName(variant.service),
      '--network', `${STACK}_edge`, '--endpoint-mode', 'dnsrr',
      '--constraint', 'node.labels.inflow.edge == true',
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
  await stack.waitConverged(variants.map((variant) => variant.service), 120_000);
}

/** The nodes, the network, their volumes: everything goes with the cluster. */
async function tearDown(): Promise<void> {
  const problems = await cluster.remove();
  if (problems.length > 0) process.stderr.write(`${problems.join('\n')}\n`);
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

try {
  await setUp();
  const results = new Map<string, Run[]>();
  for (let r = 0; r < rounds; r += 1) {
    for (const load of loads) {
      for (const variant of variants) {
        const nginx = await stack.runningTasks(variant.service);
        const web = await stack.runningTasks('web');
        const [nginxBefore, webBefore] = [await cpuOf(nginx), await cpuOf(web)];
        const figures = await runLoad({ url: `http://127.0.0.1:${await cluster.hostPort(variant.port)}` }, { path: load.path, connections, durationSeconds: seconds, ...load.request });
        const perRequestUs = (ns: number) => round(ns / 1000 / Math.max(figures.requests, 1), 0);
        const run: Run = { figures, nginxUs: perRequestUs((await cpuOf(nginx)) - nginxBefore), webUs: perRequestUs((await cpuOf(web)) - webBefore) };
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
}
