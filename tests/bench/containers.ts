/**
 * The containers the benchmark adds next to the compose stack, all from images the stack already
 * uses and all removed by `removeAll`:
 * - probes: scripts from probes/ run once in the app image on the backend network, with the
 *   worker's own environment (the queue and database ceilings);
 * - the proxy ceiling: three bare node:http servers named web1, web2 and web3 on a network of
 *   their own, behind an nginx running the project's nginx.conf without its capacity bounds
 *   (limit_conn);
 * - the synchronous peer: three replicas of probes/sync-api.ts named web1, web2 and web3 on a
 *   network of their own (and on the stack's backend network, for PostgreSQL and Redis), behind
 *   an nginx running the project's nginx.conf as it is.
 * Their nginx publishes no port: the loads run in its network namespace (load.ts). Every one
 * carries the project's test label besides the benchmark's own.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerId, docker, exec, PROJECT, REPO_ROOT, ownerLabelArgs, waitFor } from '@inflow/test-support';
import type { LoadTarget } from './load.ts';

/** The label of every container and network the benchmark adds, for `removeAll`. */
export const BENCH_LABEL = `inflow.bench=${PROJECT}`;
const PROBES = join(REPO_ROOT, 'tests', 'bench', 'probes');
const NGINX_CONF = join(REPO_ROOT, 'nginx.conf');
const EDGE_DIR = join(REPO_ROOT, 'deploy', 'nginx', 'edge');

/**
 * What an nginx container running the project's nginx.conf needs besides it, as docker-compose.yml
 * gives it: the templates and the hook that renders them (deploy/nginx/), and the rate limit
 * raised as for the benchmark's stack (run.ts sets RATE_LIMIT_* before anything starts).
 */
function nginxEdgeArgs(): string[] {
  const edge = join(REPO_ROOT, 'deploy', 'nginx');
  return [
    '-v', `${join(edge, 'templates')}:/etc/nginx/templates:ro`,
    '-v', `${join(edge, '15-inflow-edge.envsh')}:/docker-entrypoint.d/15-inflow-edge.envsh:ro`,
    ...['RATE_LIMIT_PER_SECOND', 'RATE_LIMIT_BURST'].flatMap((name) => ['-e', `${name}=${process.env[name] ?? ''}`]),
  ];
}

interface Inspected {
  Config: { Image: string; Env: string[] };
  NetworkSettings: { Networks: Record<string, unknown> };
}

async function inspectContainer(id: string): Promise<Inspected> {
  const [info] = JSON.parse(await docker(['inspect', id])) as [Inspected];
  return info;
}

const inspect = (service: string): Promise<Inspected> => inspectContainer(containerId(service));

/** The stack's nginx as a load target. */
export function stackTarget(): LoadTarget {
  return { container: containerId('nginx') };
}

/** The network of an inspected container whose name ends with `suffix` (compose prefixes the project name). */
function networkOf(container: Inspected, suffix: string): string {
  const name = Object.keys(container.NetworkSettings.Networks).find((network) => network.endsWith(suffix));
  if (name === undefined) throw new Error(`${container.Config.Image} container is on no network named *${suffix}`);
  return name;
}

/** Runs probes/<script> in the worker's image and environment; returns the JSON line it prints. */
export async function runProbe<T>(script: string, args: readonly (string | number)[]): Promise<T> {
  const worker = await inspect('worker');
  const env = worker.Config.Env.filter((variable) => /^(REDIS_|DB_|WORKER_CONCURRENCY=)/.test(variable));
  const stdout = await docker([
    'run', '--rm', ...ownerLabelArgs(), '--label', BENCH_LABEL,
    '--network', networkOf(worker, '_backend'),
    ...env.flatMap((variable) => ['-e', variable]),
    '-e', 'LOG_LEVEL=warn',
    '-v', `${PROBES}:/app/bench:ro`,
    '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
    worker.Config.Image, 'node', `bench/${script}`, ...args.map(String),
  ]);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line) as T;
}

async function runDetached(args: readonly string[]): Promise<string> {
  return (await docker(['run', '-d', ...ownerLabelArgs(), '--label', BENCH_LABEL, ...args])).trim();
}

/**
 * Starts an nginx with the configuration in `dir` (nginx.conf and the edge/ it includes) on
 * `network` and waits until a replica answers through it (GET /api/instance, with the image's curl).
 */
async function startNginx(network: string, dir: string): Promise<{ id: string; target: LoadTarget }> {
  const nginx = await inspect('nginx');
  const id = await runDetached([
    '--network', network,
    '-v', `${join(dir, 'nginx.conf')}:/etc/nginx/nginx.conf:ro`,
    '-v', `${join(dir, 'edge')}:/etc/nginx/edge:ro`,
    ...nginxEdgeArgs(), nginx.Config.Image,
  ]);
  await waitFor(
    async () => (await docker(['exec', id, 'curl', '-fsS', '-o', '/dev/null', 'http://127.0.0.1/api/instance']).then(() => true, () => false)),
    { timeoutMs: 60_000, what: `the nginx of ${network} to answer 200`, intervalMs: 500 },
  );
  return { id, target: { container: id } };
}

/**
 * The project's edge (nginx.conf and deploy/nginx/edge/), changed only as asked, written to a
 * temporary folder: `noRateLimit` drops every limit_req and limit_conn line (the limit_req_zone
 * rate is raised by nginxEdgeArgs).
 */
function nginxConf(change: { noRateLimit?: boolean }): string {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-bench-'));
  const strip = (text: string): string => (change.noRateLimit === true ? text.replace(/^\s*limit_(req|conn)(_status)? [^\n]*\n/gm, '') : text);
  writeFileSync(join(dir, 'nginx.conf'), strip(readFileSync(NGINX_CONF, 'utf8')));
  mkdirSync(join(dir, 'edge'));
  for (const file of readdirSync(EDGE_DIR)) writeFileSync(join(dir, 'edge', file), strip(readFileSync(join(EDGE_DIR, file), 'utf8')));
  if (change.noRateLimit === true && readdirSync(join(dir, 'edge')).some((file) => /^\s*limit_(req|conn) /m.test(readFileSync(join(dir, 'edge', file), 'utf8')))) {
    throw new Error('the edge: could not remove the rate limit');
  }
  return dir;
}

/** The proxy ceiling: nginx (the project's nginx.conf, no capacity bounds, the rate limit raised) in front of three bare node:http servers. */
export async function startProxyCeiling(): Promise<LoadTarget> {
  const worker = await inspect('worker');
  const network = `${PROJECT}-bench-ceiling`;
  await docker(['network', 'create', ...ownerLabelArgs(), '--label', BENCH_LABEL, network]);
  for (const name of ['web1', 'web2', 'web3']) {
    await runDetached([
      '--network', network, '--network-alias', name, '-e', `INSTANCE_ID=bare-${name}`,
      '-v', `${PROBES}:/app/bench:ro`, '--read-only', '--cap-drop', 'ALL',
      worker.Config.Image, 'node', 'bench/bare-server.ts',
    ]);
  }
  return (await startNginx(network, nginxConf({ noRateLimit: true }))).target;
}

/** The synchronous peer's containers: the load target, and every container id by a service name for the CPU figures. */
export interface SyncPeer {
  target: LoadTarget;
  containers: Record<string, string>;
}

/**
 * The synchronous peer: three replicas of probes/sync-api.ts with a replica's image, environment
 * and hardening, behind an nginx with the project's nginx.conf as it is (as the stack's nginx).
 */
export async function startSyncPeer(): Promise<SyncPeer> {
  const web = await inspect('web1');
  const network = `${PROJECT}-bench-sync`;
  await docker(['network', 'create', ...ownerLabelArgs(), '--label', BENCH_LABEL, network]);
  const env = web.Config.Env.filter((variable) => !variable.startsWith('INSTANCE_ID='));
  const containers: Record<string, string> = {};
  for (const name of ['web1', 'web2', 'web3']) {
    const id = await runDetached([
      '--network', network, '--network-alias', name,
      ...env.flatMap((variable) => ['-e', variable]), '-e', `INSTANCE_ID=sync-${name}`,
      '-v', `${PROBES}:/app/bench:ro`, '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
      web.Config.Image, 'node', '--max-semi-space-size=8', '--max-old-space-size=128', 'bench/sync-api.ts',
    ]);
    await docker(['network', 'connect', networkOf(web, '_backend'), id]);
    containers[`sync-${name}`] = id;
  }
  const nginx = await startNginx(network, nginxConf({}));
  containers['sync-nginx'] = nginx.id;
  return { target: nginx.target, containers };
}

/** Removes the synchronous peer (its replicas hold PostgreSQL connections the later steps do not need). */
export async function removeSyncPeer(peer: SyncPeer): Promise<void> {
  await docker(['rm', '-f', ...Object.values(peer.containers)]);
  await docker(['network', 'rm', `${PROJECT}-bench-sync`]);
}

/** Removes every container and network the benchmark started for this project. */
export async function removeAll(): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=${BENCH_LABEL}`])).split('\n').filter(Boolean);
  // A container started with --rm may be on its way out already: that is removed too.
  const removed = ids.length === 0 ? undefined : await exec('docker', ['rm', '-f', ...ids]);
  const failures = (removed?.stderr ?? '').split('\n').filter((line) => line !== '' && !/already in progress|No such container/.test(line));
  if (failures.length > 0) throw new Error(`removing the benchmark's containers: ${failures.join('\n')}`);
  const networks = (await docker(['network', 'ls', '-q', '--filter', `label=${BENCH_LABEL}`])).split('\n').filter(Boolean);
  if (networks.length > 0) await docker(['network', 'rm', ...networks]);
}
