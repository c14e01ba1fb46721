/**
 * The Kubernetes edge (deploy/k8s/base/nginx.conf) publishes exactly the public paths: the page
 * and its files, the API, /healthz and /readyz. Anything else, /metrics included, is a 404 from
 * nginx. It proxies to the api Service, runs unprivileged on a read-only root filesystem, and its
 * ports are the ones the Deployment and the probes use.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { BASE_DIR, REPO_ROOT, renderAll } from './lib/kustomize.ts';
import { chooseLocation, find, locations, parseNginx, type Directive, type Location } from './lib/nginx-conf.ts';
import { containerPort, named, workloads } from './lib/objects.ts';

const text = readFileSync(join(BASE_DIR, 'nginx.conf'), 'utf8');
const config = parseNginx(text);
const http = find(config, 'http')[0]?.block ?? [];
const servers = find(http, 'server').map((server) => server.block ?? []);
const listens = (server: readonly Directive[]) => find(server, 'listen').map((directive) => Number(directive.args[0]));
const publicServer = servers.find((server) => find(server, 'server_name').length > 0) ?? [];
const healthServer = servers.find((server) => server !== publicServer) ?? [];
const all = locations(publicServer);

const proxied = (location: Location | undefined) => location?.block.some((directive) => directive.name === 'proxy_pass') ?? false;
const answers = (location: Location | undefined) => find(location?.block ?? [], 'return')[0]?.args[0];

/** The page's own files: what apps/api/page/copy-assets.js copies, main.js, and what index.html links. */
function pageFiles(): string[] {
  const page = join(REPO_ROOT, 'apps', 'api', 'page');
  const copied = /for \(const file of \[([^\]]*)\]\)/.exec(readFileSync(join(page, 'copy-assets.js'), 'utf8'))?.[1] ?? '';
  const files = [...copied.matchAll(/'([^']+)'/g)].map((match) => `/${match[1] ?? ''}`);
  const linked = [...readFileSync(join(page, 'index.html'), 'utf8').matchAll(/(?:src|href)="(\/[^"?#]*)/g)].map((match) => match[1] ?? '');
  return [...new Set(['/', '/main.js', ...files, ...linked])].sort();
}

const PUBLIC = [
  '/api/entries',
  '/api/entries/0190a6c2-7b1e-7c3d-8e4f-0123456789ab',
  // A malformed id still reaches the API, which answers 400 (docs/api.md).
  '/api/entries/not-an-id',
  '/api/instance',
  '/api/stats',
  '/api/events',
  '/healthz',
  '/readyz',
];

const NOT_PUBLIC = [
  '/metrics',
  '/metrics/',
  '/api/metrics',
  '/api',
  '/api/',
  '/api/entries/',
  '/api/entries/a/b',
  '/api/entriesx',
  '/api/events/',
  '/api/instance/x',
  '/healthz/',
  '/readyz/x',
  '/nginx-health',
  '/_edge/404',
  '/main.js.map',
  '/index.htm',
  '/.env',
  '/package.json',
  '/apps/api/dist/main.js',
];

t.test('the public paths, and only they, reach the API', async (t) => {
  const page = pageFiles();
  t.ok(page.includes('/styles.css') && page.includes('/favicon.svg'), `the page's files are known: ${page.join(' ')}`);
  for (const uri of [...page, ...PUBLIC]) t.ok(proxied(chooseLocation(all, uri)), `${uri} is proxied`);
  for (const uri of NOT_PUBLIC) {
    const location = chooseLocation(all, uri);
    t.notOk(proxied(location), `${uri} is not proxied`);
    t.equal(answers(location), '404', `${uri}: 404`);
  }
  // No proxied location is a prefix or a case-insensitive pattern that could let more through.
  for (const location of all.filter(proxied)) {
    t.ok(location.modifier === '=' || (location.modifier === '~' && location.pattern.startsWith('^') && location.pattern.endsWith('$')), `location ${location.modifier} ${location.pattern} is exact or an anchored regex`);
  }
});

t.test('the event stream is passed on unbuffered, with a long read timeout', async (t) => {
  const events = chooseLocation(all, '/api/events');
  t.same(find(events?.block ?? [], 'proxy_buffering')[0]?.args, ['off']);
  t.same(find(events?.block ?? [], 'proxy_read_timeout')[0]?.args, ['1h']);
});

t.test('nginx proxies to the api Service, on its port', async (t) => {
  const objects = renderAll().get('base') ?? [];
  const service = named(objects, 'Service', 'inflow-api');
  const upstreams = find(http, 'upstream');
  t.equal(upstreams.length, 1, 'one upstream');
  const upstream = upstreams[0];
  for (const location of all.filter(proxied)) {
    t.same(find(location.block, 'proxy_pass')[0]?.args, [`http://${upstream?.args[0] ?? '?'}`], `${location.pattern} goes to the upstream`);
  }
  const servers = find(upstream?.block ?? [], 'server').map((directive) => directive.args[0]);
  t.same(servers, [`${service.metadata.name}:${service.spec?.ports?.[0]?.port ?? '?'}`], 'the upstream is the api Service and its port');
  // Below the API's 2 s drain grace: nginx closes an idle connection before the API would.
  const drainIdleMs = Number(/const DRAIN_IDLE_MS = ([\d_]+);/.exec(readFileSync(join(REPO_ROOT, 'apps', 'api', 'src', 'http', 'server.ts'), 'utf8'))?.[1]?.replaceAll('_', ''));
  const idle = find(upstream?.block ?? [], 'keepalive_timeout')[0]?.args[0] ?? '';
  t.ok(/^\d+s$/.test(idle) && Number.parseInt(idle, 10) * 1000 < drainIdleMs, `upstream keepalive_timeout ${idle} < DRAIN_IDLE_MS ${drainIdleMs} ms`);
});

t.test('the edge Deployment serves this file, on the ports its probes and Service use', async (t) => {
  const objects = renderAll().get('base') ?? [];
  const edge = workloads(objects).find((workload) => workload.name === 'inflow-edge');
  const container = edge?.template.spec?.containers[0];
  if (edge === undefined || container === undefined) throw new Error('no inflow-edge Deployment');
  const mount = container.volumeMounts?.find((candidate) => container.args?.includes(`${candidate.mountPath}/nginx.conf`));
  const volume = edge.template.spec?.volumes?.find((candidate) => candidate.name === mount?.name);
  const configMap = named(objects, 'ConfigMap', volume?.configMap?.name ?? '');
  t.equal(configMap.data?.['nginx.conf'], text, 'nginx -c names the ConfigMap made from deploy/k8s/base/nginx.conf');
  t.same(listens(publicServer), [containerPort([container], 'http')?.containerPort], 'the public server listens on the http port');
  t.same(listens(healthServer), [containerPort([container], 'health')?.containerPort], 'the health server listens on the health port');
  t.equal(container.readinessProbe?.httpGet?.path, '/nginx-health');
  t.ok(!proxied(chooseLocation(locations(healthServer), '/nginx-health')) && answers(chooseLocation(locations(healthServer), '/nginx-health')) === '200', 'the health server answers /nginx-health itself');
  t.equal(answers(chooseLocation(locations(healthServer), '/metrics')), '404', 'and nothing else');
});

t.test('nginx writes only under /tmp and needs no root', async (t) => {
  t.same(find(config, 'user'), [], 'no user directive (the pod runs as the nginx user already)');
  t.same(find(config, 'daemon')[0]?.args, ['off'], 'stays in the foreground');
  t.ok(find(config, 'pid')[0]?.args[0]?.startsWith('/tmp/'), 'pid file under /tmp');
  for (const name of ['client_body_temp_path', 'proxy_temp_path', 'fastcgi_temp_path', 'uwsgi_temp_path', 'scgi_temp_path']) {
    t.ok(find(http, name)[0]?.args[0]?.startsWith('/tmp/'), `${name} under /tmp`);
  }
  for (const server of servers) for (const port of listens(server)) t.ok(port >= 1024, `listens on an unprivileged port (${port})`);
});
