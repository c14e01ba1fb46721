/**
 * The edge's configuration and its allow-list, through nginx as a client sees it (nginx.conf,
 * deploy/nginx/): the variables rendered into its configuration (a malformed one stops the
 * container, naming it); the public paths (every spelling of an internal path is nginx's own
 * 404 in the error shape); HTTP/0.9 refused with a complete HTTP/1.1 answer; the header-size
 * status. The capacity bounds and the rate limit are edge-capacity.test.ts.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { BASE_URL, errorCode, firstHeader as one, rawExchange, REPO_ROOT } from '@inflow/test-support';
import { edgeHeaderProblems, nginxImage, openStream, renderedConf, send } from './edge.ts';

// The defaults of nginx.conf, restated.
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
        'run', '--rm', '--network', 'none',
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

t.test('only the public paths are proxied; every spelling of an internal path is nginx\'s own 404', async (t) => {
  const publicPaths: [string, number][] = [
    ['/', 200],
    ['/index.html', 200],
    ['/main.js', 200],
    ['/styles.css', 200],
    ['/favicon.svg', 200],
    ['/api/entries?limit=1', 200],
    ['/api/entries/0190d2a0-0000-7000-8000-000000000000', 404],
    ['/api/entries/not-an-id', 400],
    ['/api/instance', 200],
    ['/api/stats', 200],
    ['/healthz', 200],
    ['/readyz', 200],
  ];
  for (const [path, status] of publicPaths) {
    const answer = await send(path);
    t.equal(answer.status, status, `${path}: ${status}`);
    t.match(one(answer, 'x-instance-id'), /^web[123]$/, `${path}: answered by a replica`);
  }
  const stream = await openStream();
  t.equal(stream.status, 200, '/api/events: a stream from a replica');
  stream.close();

  const internal = [
    '/metrics', '/metrics/', '/Metrics', '/METRICS', '/mEtRiCs', '/metrics?format=text', '/metrics;x', '/metrics.txt',
    '/%2Fmetrics', '/%2fmetrics', '/%6Detrics', '/%6d%65%74%72%69%63%73', '//metrics', '/./metrics', '/api/../metrics',
    '/api/%2E%2E/metrics', '/api/..%2Fmetrics', '/metrics/../api/instance', '/./api/instance', '/api//instance', '/api/instance/',
    '/API/INSTANCE', '/api/metrics', '/api', '/api/', '/api/entries/', '/api/entries/x/..', '/api/entries/%30', '/api/entries/a/b',
    '/readyz/', '/healthz/details', '/ops', '/internal', '/admin', '/favicon.ico', '/index.html/', '/_edge/404', '/_edge/502',
  ];
  const wrong: string[] = [];
  for (const path of internal) {
    for (const method of ['GET', 'POST']) {
      const answer = await send(path, method === 'POST' ? { method, headers: { 'content-type': 'application/json' }, body: '{}' } : { method });
      const problems = [...(answer.status === 404 ? [] : [`status ${answer.status}`]), ...(errorCode(answer) === 'not_found' ? [] : ['not the error shape']), ...edgeHeaderProblems(answer)];
      if (problems.length > 0) wrong.push(`${method} ${path}: ${problems.join(', ')} (${answer.text.slice(0, 80)})`);
    }
  }
  t.same(wrong, [], `${internal.length * 2} requests for internal or unknown paths: all nginx's 404 in the error shape`);

  // A path that climbs above the root is not a path at all: nginx's 400.
  const above = await send('/%2e%2e/%2e%2e/etc/passwd');
  t.equal(above.status, 400, '/%2e%2e/%2e%2e/etc/passwd: 400');
  t.equal(errorCode(above), 'bad_request');
  t.same(edgeHeaderProblems(above), [], 'made by nginx, with its headers');
});

t.test('HTTP/0.9 is refused with a complete HTTP/1.1 400; the connection is closed', async (t) => {
  for (const line of ['GET /api/instance\r\n', 'GET /metrics\r\n', 'GET /\r\n']) {
    const { answers, bytes } = await rawExchange(BASE_URL, line);
    t.match(bytes, /^HTTP\/1\.1 400 Bad Request\r\n/, `${JSON.stringify(line)}: a status line, not a bare body`);
    t.equal(answers.length, 1, 'one answer, then the server closed the connection');
    const [answer] = answers;
    if (answer === undefined) continue;
    t.equal(errorCode(answer), 'bad_request', 'the error shape');
    t.same(edgeHeaderProblems(answer), [], 'the headers of every nginx answer');
    t.equal(Buffer.byteLength(answer.text), Number(one(answer, 'content-length')), 'Content-Length is the body\'s length');
  }
});

t.test('headers too large: 431 headers_too_large, from nginx for one line over 8 KiB, from the API for over 16 KiB in all', async (t) => {
  const line = await send('/api/instance', { headers: { 'x-huge': 'h'.repeat(10_000) } });
  t.equal(line.status, 431, 'one 10 KB header line: 431');
  t.equal(errorCode(line), 'headers_too_large');
  t.same(edgeHeaderProblems(line), [], 'made by nginx, with its headers');

  const many: Record<string, string> = {};
  for (let i = 0; i < 5; i += 1) many[`x-big-${i}`] = 'b'.repeat(4_000);
  const total = await send('/api/instance', { headers: many });
  t.equal(total.status, 431, 'five 4 KB header lines (20 KB): 431');
  t.equal(errorCode(total), 'headers_too_large', 'the same code');
  t.match(one(total, 'x-instance-id'), /^web[123]$/, "the API's parser answered (nginx takes 4 lines of 8 KiB)");

  const uri = await send(`/api/entries/${'a'.repeat(10_000)}`);
  t.equal(uri.status, 414, 'a request line over 8 KiB: 414');
  t.equal(errorCode(uri), 'uri_too_long');
});

