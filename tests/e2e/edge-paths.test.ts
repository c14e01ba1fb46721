/**
 * The edge's configuration and its allow-list, through nginx as a client sees it (nginx.conf,
 * deploy/nginx/): the variables rendered into its configuration (a malformed one stops the
 * container, naming it); the edge cases every platform shares (edge-cases.ts: the allow-list,
 * methods, HTTP/0.9, size limits), here on compose's nginx; the header-size statuses. Swarm's
 * and Kubernetes' configurations get the same cases in edge-platforms.test.ts. The capacity
 * bounds and the rate limit are edge-capacity.test.ts.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { BASE_URL, errorCode, firstHeader as one, REPO_ROOT, TEST_LABEL } from '@inflow/test-support';
import { EDGE_CASES } from './edge-cases.ts';
import { nginxImage, openStream, renderedConf, send } from './edge.ts';

// The defaults of deploy/nginx/15-inflow-edge.envsh, restated.
const DEFAULT_RATE = 2000;
const DEFAULT_BURST = 4000;

t.test('nginx renders its templates with the defaults; a malformed variable stops the container, naming it', async (t) => {
  const conf = await renderedConf();
  t.match(conf, new RegExp(`limit_req_zone \\$binary_remote_addr zone=per_address_rate:10m rate=${DEFAULT_RATE}r/s;`), 'rate: the default');
  t.match(conf, new RegExp(`limit_req zone=per_address_rate burst=${DEFAULT_BURST} nodelay;`), 'burst: the default');
  t.notMatch(conf, /set_real_ip_from/, 'no trusted proxy by default');
  t.notMatch(conf, /\$\{/, 'every ${VARIABLE} was substituted');

  const image = await nginxImage();
  const check = (variables: Record<string, string>) =>
    spawnSync(
      'docker',
      [
        'run', '--rm', '--label', TEST_LABEL, '--network', 'none',
        ...['web1', 'web2', 'web3'].flatMap((name) => ['--add-host', `${name}:127.0.0.1`]),
        ...Object.entries(variables).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
        '-v', `${join(REPO_ROOT, 'nginx.conf')}:/etc/nginx/nginx.conf:ro`,
        '-v', `${join(REPO_ROOT, 'deploy', 'nginx', 'edge')}:/etc/nginx/edge:ro`,
        '-v', `${join(REPO_ROOT, 'deploy', 'nginx', 'templates')}:/etc/nginx/templates:ro`,
        '-v', `${join(REPO_ROOT, 'deploy', 'nginx', '15-inflow-edge.envsh')}:/docker-entrypoint.d/15-inflow-edge.envsh:ro`,
        image, 'nginx', '-t',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
  const good = check({ RATE_LIMIT_PER_SECOND: '20', RATE_LIMIT_BURST: '40', TRUSTED_PROXIES: '10.0.0.0/8, 192.0.2.1 2001:db8::/32' });
  t.equal(good.status, 0, `nginx -t with a list of trusted proxies (${good.stderr.trim().split('\n').at(-1) ?? ''})`);
  for (const [name, value] of [
    ['RATE_LIMIT_PER_SECOND', 'fast'],
    ['RATE_LIMIT_PER_SECOND', '0'],
    ['RATE_LIMIT_BURST', '-1'],
    ['TRUSTED_PROXIES', '10.0.0.1; return 200'],
  ] as const) {
    const bad = check({ [name]: value });
    t.equal(bad.status, 78, `${name}=${value}: the container exits 78`);
    t.match(bad.stderr, new RegExp(`invalid configuration: ${name}`), `and says which variable (${bad.stderr.trim()})`);
  }
});

for (const [name, check] of Object.entries(EDGE_CASES)) {
  t.test(`compose: ${name}`, async (t) => {
    t.same(await check(BASE_URL), [], name);
  });
}

t.test('an event stream opens through nginx', async (t) => {
  const stream = await openStream();
  t.equal(stream.status, 200, '/api/events: a stream from a replica');
  stream.close();
});

// One header line over 8 KiB is nginx's 431 (EDGE_CASES); within that, headers over 16 KiB in
// all pass nginx and meet the API's parser, which answers the same way.
t.test('headers too large in all: 431 headers_too_large from the API, as nginx answers one line too large', async (t) => {
  const many: Record<string, string> = {};
  for (let i = 0; i < 5; i += 1) many[`x-big-${i}`] = 'b'.repeat(4_000);
  const total = await send('/api/instance', { headers: many });
  t.equal(total.status, 431, 'five 4 KB header lines (20 KB): 431');
  t.equal(errorCode(total), 'headers_too_large', 'the same code');
  t.match(one(total, 'x-instance-id'), /^web[123]$/, "the API's parser answered (nginx takes 4 lines of 8 KiB)");
});

