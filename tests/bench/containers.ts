/**
 * The containers the benchmark adds next to the compose stack, all from images the stack already
 * uses and all removed by `removeAll`:
 * - probes: scripts from probes/ run once in the app image on the backend network, with the
 *   worker's own environment (the queue and database ceilings);
 * - the proxy ceiling: three bare node:http servers named web1, web2 and web3 on a network of
 *   their own, behind an nginx running the project's nginx.conf without its capacity bounds
 *   (limit_conn), on loopback;
 * - a one-replica nginx: the project's nginx.conf with web2 and web3 taken out of the upstream,
 *   on the stack's edge network, published on loopback (the scaling comparison).
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerId, PROJECT, REPO_ROOT, waitFor } from '@inflow/test-support';
import { docker } from '@inflow/test-support';

const LABEL = `inflow.bench=${PROJECT}`;
const PROBES = join(REPO_ROOT, 'tests', 'bench', 'probes');
const NGINX_CONF = join(REPO_ROOT, 'nginx.conf');

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

async function inspect(service: string): Promise<Inspected> {
  const [info] = JSON.parse(await docker(['inspect', containerId(service)])) as [Inspected];
  return info;
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
    'run', '--rm', '--label', LABEL,
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
  return (await docker(['run', '-d', '--label', LABEL, ...args])).trim();
}

/** Waits until `url` answers 200, or throws. */
async function waitAnswering(url: string): Promise<void> {
  await waitFor(async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.status === 200, {
    timeoutMs: 60_000,
    what: `${url} to answer 200`,
    intervalMs: 250,
  });
}

/**
 * The project's nginx.conf, changed only as asked, written to a temporary file: `oneReplica`
 * leaves web1 alone in the upstream; `noRateLimit` drops the limit_conn lines (the limit_req line
 * is in a rendered include, its rate raised by nginxEdgeArgs).
 */
function nginxConf(change: { oneReplica?: boolean; noRateLimit?: boolean }): string {
  let conf = readFileSync(NGINX_CONF, 'utf8');
  if (change.oneReplica === true) {
    conf = conf.replace(/^\s*server web[23]:8080[^\n]*\n/gm, '');
    if (/server web[23]:/.test(conf) || !/server web1:8080/.test(conf)) throw new Error('nginx.conf: could not reduce the upstream to web1');
  }
  if (change.noRateLimit === true) {
    conf = conf.replace(/^\s*limit_(req|conn)(_status)? [^\n]*\n/gm, '');
    if (/^\s*limit_(req|conn) /m.test(conf)) throw new Error('nginx.conf: could not remove the rate limit');
  }
  const file = join(mkdtempSync(join(tmpdir(), 'inflow-bench-')), 'nginx.conf');
  writeFileSync(file, conf);
  return file;
}

/** The proxy ceiling: nginx (the project's nginx.conf, no capacity bounds, the rate limit raised) in front of three bare node:http servers. */
export async function startProxyCeiling(port: number): Promise<string> {
  const [worker, nginx] = await Promise.all([inspect('worker'), inspect('nginx')]);
  const network = `${PROJECT}-bench-ceiling`;
  await docker(['network', 'create', '--label', LABEL, network]);
  for (const name of ['web1', 'web2', 'web3']) {
    await runDetached([
      '--network', network, '--network-alias', name, '-e', `INSTANCE_ID=bare-${name}`,
      '-v', `${PROBES}:/app/bench:ro`, '--read-only', '--cap-drop', 'ALL',
      worker.Config.Image, 'node', 'bench/bare-server.ts',
    ]);
  }
  const conf = nginxConf({ noRateLimit: true });
  await runDetached(['--network', network, '-p', `127.0.0.1:${port}:80`, '-v', `${conf}:/etc/nginx/nginx.conf:ro`, ...nginxEdgeArgs(), nginx.Config.Image]);
  const url = `http://127.0.0.1:${port}`;
  await waitAnswering(`${url}/api/instance`);
  return url;
}

/** The stack's nginx configuration with one replica (web1) in the upstream, on the stack's network. */
export async function startOneReplicaNginx(port: number): Promise<string> {
  const nginx = await inspect('nginx');
  const conf = nginxConf({ oneReplica: true });
  await runDetached(['--network', networkOf(nginx, '_edge'), '-p', `127.0.0.1:${port}:80`, '-v', `${conf}:/etc/nginx/nginx.conf:ro`, ...nginxEdgeArgs(), nginx.Config.Image]);
  const url = `http://127.0.0.1:${port}`;
  await waitAnswering(`${url}/api/instance`);
  return url;
}

/** Removes every container and network the benchmark started for this project. */
export async function removeAll(): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=${LABEL}`])).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]);
  const networks = (await docker(['network', 'ls', '-q', '--filter', `label=${LABEL}`])).split('\n').filter(Boolean);
  if (networks.length > 0) await docker(['network', 'rm', ...networks]);
}
