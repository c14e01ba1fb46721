/**
 * The edge, through nginx as a client sees it (nginx.conf, deploy/nginx/): the variables rendered
 * into its configuration; the allow-list of public paths (every spelling of an internal path is
 * nginx's own 404 in the error shape); HTTP/0.9 refused with a complete HTTP/1.1 answer; the
 * header-size status; the capacity bounds that keep one client from starving the others (event
 * streams per address and in total, slow uploads ended by the API's whole-request deadline); the
 * client address from X-Forwarded-For only behind a trusted proxy, with a bucket of its own; and
 * the default rate limit out of reach of a legitimate burst. The flood side of the rate limit is
 * chaos scenario 10 (tests/chaos/scenarios/10-rate-limit.ts).
 *
 * Every load here is bounded by count. INFLOW_URL set: runs against that stack as it is (no
 * compose up/down); INFLOW_E2E_PROJECT must then name its compose project, since two tests
 * recreate its nginx (and restore it).
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { Agent, request as httpRequest, type ClientRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { BASE_URL, containerId, docker, down, inspectState, PROJECT, REPO_ROOT, runCompose, serviceLogLines, up, waitFor } from '@inflow/test-support';

const OWN_STACK = process.env['INFLOW_URL'] === undefined;
const { hostname: HOST, port: PORT_TEXT } = new URL(BASE_URL);
const PORT = Number(PORT_TEXT);

// The bounds of nginx.conf, restated: the tests below show each one.
const STREAMS_PER_ADDRESS = 32;
const STREAMS_TOTAL = 128;
const BODIES_PER_ADDRESS = 512;
const DEFAULT_RATE = 2000;
const DEFAULT_BURST = 4000;

interface Answer {
  status: number;
  /** Header names (lower case) with every value sent, in order. */
  headers: Map<string, string[]>;
  text: string;
}

const one = (answer: Answer, name: string): string | undefined => answer.headers.get(name)?.[0];

function headerMap(raw: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    headers.set(name, [...(headers.get(name) ?? []), raw[i + 1] ?? '']);
  }
  return headers;
}

/**
 * One request with `path` sent exactly as written (no URL parsing, which would resolve dot
 * segments and re-encode), on a connection of its own unless an agent is given.
 */
function send(path: string, options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest(
      {
        host: HOST,
        port: PORT,
        path,
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
        headers: { ...(body === undefined ? {} : { 'content-length': String(body.length) }), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, headers: headerMap(res.rawHeaders), text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer to ${path} in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `raw` on a new connection and parses what comes back until the server closes it. */
function rawExchange(raw: string): Promise<{ answers: Answer[]; bytes: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(PORT, HOST);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(30_000, () => socket.destroy(new Error('the server did not close the connection in 30 s')));
    socket.on('close', () => {
      const data = Buffer.concat(chunks);
      const answers: Answer[] = [];
      let at = 0;
      while (at < data.length) {
        const end = data.indexOf('\r\n\r\n', at);
        if (end < 0) break;
        const [statusLine = '', ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
        const flat = lines.flatMap((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon), line.slice(colon + 1).trim()];
        });
        const headers = headerMap(flat);
        const length = Number(headers.get('content-length')?.[0] ?? '0');
        answers.push({ status: Number(statusLine.split(' ')[1]), headers, text: data.subarray(end + 4, end + 4 + length).toString('utf8') });
        at = end + 4 + length;
      }
      resolve({ answers, bytes: data.toString('latin1') });
    });
    socket.write(raw);
  });
}

function errorCode(answer: Answer): string | undefined {
  try {
    const { error } = JSON.parse(answer.text) as { error?: { code?: unknown; message?: unknown } };
    return typeof error?.code === 'string' && typeof error.message === 'string' ? error.code : undefined;
  } catch {
    return undefined;
  }
}

/** What is wrong with the headers of one of nginx's own answers. */
function edgeHeaderProblems(answer: Answer): string[] {
  const problems: string[] = [];
  const expected: Record<string, RegExp> = {
    'x-content-type-options': /^nosniff$/,
    'referrer-policy': /^no-referrer$/,
    'content-security-policy': /^default-src 'none'/,
    'x-frame-options': /^DENY$/,
    'x-instance-id': /^nginx$/,
    'x-request-id': /^[A-Za-z0-9._:-]{1,128}$/,
    'content-type': /^application\/json/,
    server: /^nginx$/,
  };
  for (const [name, pattern] of Object.entries(expected)) {
    const values = answer.headers.get(name) ?? [];
    if (values.length !== 1 || !pattern.test(values[0] ?? '')) problems.push(`${name}: ${JSON.stringify(values)}`);
  }
  return problems;
}

/** An open GET /api/events: its status, and close() for a 200 that is still streaming. */
interface Stream {
  status: number;
  answer?: Answer;
  close: () => void;
}

function openStream(headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest({ host: HOST, port: PORT, path: '/api/events', agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const close = () => req.destroy();
      if (res.statusCode === 200) {
        res.resume();
        res.on('error', () => undefined);
        resolve({ status: 200, close });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, answer: { status: res.statusCode ?? 0, headers: headerMap(res.rawHeaders), text: Buffer.concat(chunks).toString('utf8') }, close });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer to GET /api/events in 30 s')));
    req.on('error', reject);
    req.end();
  });
}

const nginxImage = (): string => (JSON.parse(docker(['inspect', containerId('nginx')]).stdout) as [{ Config: { Image: string } }])[0].Config.Image;

const renderedConf = (): string =>
  docker(['exec', containerId('nginx'), 'sh', '-c', 'cat /etc/nginx/conf.d/inflow-edge-http.conf /etc/nginx/conf.d/inflow-edge-server.conf']).stdout;

/** Recreates the stack's nginx with these variables on top of this process's environment, and waits until it serves. */
async function recreateNginx(variables: Record<string, string>): Promise<void> {
  runCompose(['up', '-d', '--no-deps', 'nginx'], { env: { ...process.env, ...variables } });
  await waitFor(
    async () => {
      const state = (() => {
        try {
          return inspectState('nginx');
        } catch {
          return undefined;
        }
      })();
      if (state?.status !== 'running' || state.health !== 'healthy') return false;
      return (await send('/api/instance').catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 120_000, what: 'the recreated nginx to be healthy and to proxy /api/instance', intervalMs: 500 },
  );
}

t.before(async () => {
  if (OWN_STACK) {
    down();
    await up();
  }
});
t.teardown(() => {
  if (OWN_STACK) down();
});

t.test('nginx renders its templates with the defaults; a malformed variable stops the container, naming it', async (t) => {
  const conf = renderedConf();
  t.match(conf, new RegExp(`limit_req_zone \\$binary_remote_addr zone=per_address_rate:10m rate=${DEFAULT_RATE}r/s;`), 'rate: the default');
  t.match(conf, new RegExp(`limit_req zone=per_address_rate burst=${DEFAULT_BURST} nodelay;`), 'burst: the default');
  t.notMatch(conf, /set_real_ip_from/, 'no trusted proxy by default');
  t.notMatch(conf, /\$\{/, 'every ${VARIABLE} was substituted');

  const image = nginxImage();
  const check = (variables: Record<string, string>) =>
    spawnSync(
      'docker',
      [
        'run', '--rm', '--network', 'none',
        ...['web1', 'web2', 'web3'].flatMap((name) => ['--add-host', `${name}:127.0.0.1`]),
        ...Object.entries(variables).flatMap(([name, value]) => ['-e', `${name}=${value}`]),
        '-v', `${join(REPO_ROOT, 'nginx.conf')}:/etc/nginx/nginx.conf:ro`,
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
    const { answers, bytes } = await rawExchange(line);
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

t.test(`event streams: one address holds at most ${STREAMS_PER_ADDRESS}; everything else is served meanwhile`, async (t) => {
  const streams = await Promise.all(Array.from({ length: STREAMS_PER_ADDRESS + 8 }, () => openStream()));
  t.teardown(() => {
    for (const stream of streams) stream.close();
  });
  const open = streams.filter((stream) => stream.status === 200);
  const refused = streams.filter((stream) => stream.status === 429);
  t.equal(open.length, STREAMS_PER_ADDRESS, `${STREAMS_PER_ADDRESS} of ${streams.length} streams open`);
  t.equal(refused.length, 8, 'the others refused');
  const first = refused[0]?.answer;
  if (first !== undefined) {
    t.equal(errorCode(first), 'rate_limited', '429 in the error shape');
    t.equal(one(first, 'retry-after'), '1', 'Retry-After: 1');
    t.same(edgeHeaderProblems(first), [], '429: the headers of every nginx answer');
  }

  // While this address holds every stream it may: the page, reads and writes still work.
  const others = [
    await send('/'),
    ...(await Promise.all(Array.from({ length: 10 }, () => send('/api/instance')))),
    await send('/api/entries?limit=5'),
    await send('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'edge', message: 'beside 32 streams' }) }),
  ];
  t.same(others.map((answer) => answer.status), [200, ...Array<number>(10).fill(200), 200, 202], 'the page, 10 reads of /api/instance, a list and a POST');

  for (const stream of streams) stream.close();
  // nginx frees a stream's place when its client goes away.
  await waitFor(
    async () => {
      const again = await openStream();
      again.close();
      return again.status === 200;
    },
    { timeoutMs: 30_000, what: 'a new stream once the others closed', intervalMs: 250 },
  );
  t.pass('a new stream opens once the others are closed');
});

/** How a slow upload ended: the HTTP status of its answer, or 0 when the connection closed without one. */
interface UploadEnd {
  status: number;
  instance: string | undefined;
  code: string | undefined;
}

/** A slow upload: headers of a 16 KiB POST, then one byte a second. */
interface Upload {
  ended: Promise<UploadEnd>;
  /** How it ended, once it has. */
  end: () => UploadEnd | undefined;
  written: Promise<void>;
  destroy: () => void;
}

function slowUpload(): Upload {
  const socket: Socket = connect(PORT, HOST);
  let data = '';
  let done = false;
  let result: UploadEnd | undefined;
  const timer = setInterval(() => {
    if (!done) socket.write(' ');
  }, 1_000);
  const written = new Promise<void>((resolve) => {
    socket.write('POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16384\r\n\r\n{', () => {
      resolve();
    });
  });
  const ended = new Promise<UploadEnd>((resolve) => {
    const finish = () => {
      if (done) return;
      done = true;
      clearInterval(timer);
      const head = data.split('\r\n\r\n')[0] ?? '';
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? '0');
      const instance = /\r\nX-Instance-Id: (\S+)/i.exec(head)?.[1];
      const code = /"code":"([a-z_]+)"/.exec(data)?.[1];
      socket.destroy();
      result = { status, instance, code };
      resolve(result);
    };
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      // One answer is all an upload gets; its body is short (the error shape).
      if (/\r\n\r\n[\s\S]*\}/.test(data)) finish();
    });
    socket.on('error', finish);
    socket.on('close', finish);
  });
  return { ended, written, end: () => result, destroy: () => socket.destroy() };
}

t.test(`slow uploads: at most ${BODIES_PER_ADDRESS} held per address, each ended by a deadline; reads are served meanwhile`, async (t) => {
  // Rarely, on a very slow machine, the API's deadline (10 s) could end the first uploads before
  // the reads below finished: the attempt then proves nothing, and is made again.
  for (let attempt = 1; attempt <= 3; attempt += 1) {
    const uploads = Array.from({ length: BODIES_PER_ADDRESS + 8 }, () => slowUpload());
    t.teardown(() => {
      for (const upload of uploads) upload.destroy();
    });
    await Promise.all(uploads.map((upload) => upload.written));
    // The extra uploads are refused at once; the others stay open, sending a byte a second.
    await waitFor(() => uploads.some((upload) => upload.end() !== undefined), { timeoutMs: 30_000, what: 'a refused upload', intervalMs: 100 });
    const refusedEarly = uploads.filter((upload) => upload.end()?.status === 429).length;

    const reads = [await send('/'), ...(await Promise.all(Array.from({ length: 10 }, () => send('/api/instance')))), await send('/api/entries?limit=5')];
    const stream = await openStream();
    stream.close();
    // Conclusive only if no admitted upload had ended yet: they held their places throughout.
    const heldThroughout = uploads.every((upload) => [undefined, 429].includes(upload.end()?.status));

    const ends = await Promise.all(uploads.map((upload) => upload.ended));
    const refused = ends.filter((end) => end.status === 429);
    const timedOut = ends.filter((end) => end.status === 408);
    const closed = ends.filter((end) => end.status === 0);
    const other = ends.filter((end) => ![0, 408, 429].includes(end.status));
    if (!heldThroughout || refusedEarly === 0) {
      t.comment(`attempt ${attempt}: the uploads did not all stay open while the reads ran (${refusedEarly} refused at first); again`);
      continue;
    }
    t.ok(refused.length >= 1 && refused.length <= 8, `${refused.length} of ${uploads.length} uploads refused with 429 (at most the 8 over ${BODIES_PER_ADDRESS})`);
    t.same(
      reads.map((answer) => answer.status),
      Array<number>(reads.length).fill(200),
      `while ${uploads.length - refused.length} slow uploads were open: the page and ${reads.length - 1} reads answered 200`,
    );
    t.equal(stream.status, 200, 'and an event stream opened');
    t.same(other.map((end) => end.status), [], 'no upload ended any other way (never accepted)');
    t.equal(refused.length + timedOut.length + closed.length, uploads.length, 'every upload ended, though it kept sending');
    t.ok(
      timedOut.every((end) => end.code === 'request_timeout' && /^web[123]$/.test(end.instance ?? '')),
      `${timedOut.length} ended by the API's whole-request deadline (408 request_timeout), ${closed.length} closed by nginx (a pause over client_body_timeout)`,
    );
    // Their places are free again: a POST from the same address is accepted.
    const post = await waitFor(
      async () => {
        const answer = await send('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ author: 'edge', message: 'after slow uploads' }) });
        return answer.status === 202 ? answer : undefined;
      },
      { timeoutMs: 30_000, what: 'a POST to be accepted after the uploads ended', intervalMs: 250 },
    );
    t.equal(post.status, 202, 'afterwards a POST is accepted again');
    return;
  }
  t.fail('three attempts in a row: the slow uploads ended before the reads were done');
});

t.test('behind a trusted proxy, each client has its own address: its own rate bucket, its own place in the totals', async (t) => {
  const [edge] = JSON.parse(docker(['network', 'inspect', `${PROJECT}_edge`]).stdout) as [{ IPAM: { Config: { Gateway?: string }[] } }];
  const gateway = edge.IPAM.Config.find((config) => config.Gateway !== undefined)?.Gateway;
  if (gateway === undefined) throw new Error(`no gateway address on ${PROJECT}_edge`);
  // Clients on this host reach nginx from the edge network's gateway (docker-proxy): trusting it
  // makes this test a trusted proxy that names its clients in X-Forwarded-For. A low rate shows
  // the buckets.
  const rate = 5;
  const burst = 5;
  await recreateNginx({ TRUSTED_PROXIES: gateway, RATE_LIMIT_PER_SECOND: String(rate), RATE_LIMIT_BURST: String(burst) });
  t.teardown(async () => {
    await recreateNginx({});
  });
  t.match(renderedConf(), new RegExp(`set_real_ip_from ${gateway.replaceAll('.', '\\.')};`), `the gateway ${gateway} is trusted`);

  // One client floods on a keep-alive connection: cut off at its own bucket.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => {
    agent.destroy();
  });
  const startedAt = performance.now();
  const flood: Answer[] = [];
  for (let i = 0; i < 40; i += 1) flood.push(await send('/api/instance', { agent, headers: { 'x-forwarded-for': '203.0.113.10' } }));
  const elapsedS = (performance.now() - startedAt) / 1000;
  const served = flood.filter((answer) => answer.status === 200).length;
  t.ok(flood.some((answer) => answer.status === 429), `203.0.113.10: ${flood.length - served} of ${flood.length} refused`);
  t.ok(served <= burst + 1 + rate * elapsedS + 1, `203.0.113.10: ${served} served in ${elapsedS.toFixed(2)} s, within burst + rate × time`);
  // Another client behind the same proxy is not affected.
  const other = await send('/api/instance', { headers: { 'x-forwarded-for': '203.0.113.11' } });
  t.equal(other.status, 200, '203.0.113.11, right after: served from its own bucket');

  // The address is the rightmost one that is not a trusted proxy; the API sees it too.
  const requestId = `edge-realip-${randomUUID()}`;
  const named = await send('/api/instance', { headers: { 'x-forwarded-for': '198.51.100.7, 203.0.113.12', 'x-request-id': requestId } });
  t.equal(named.status, 200);
  const nginxLine = await waitFor(() => serviceLogLines('nginx').find((line) => line['requestId'] === requestId), {
    timeoutMs: 10_000,
    what: `nginx's log line for ${requestId}`,
    intervalMs: 250,
  });
  t.equal(nginxLine['remoteAddr'], '203.0.113.12', 'nginx: the client is the rightmost untrusted address');
  t.equal(nginxLine['peerAddr'], gateway, 'nginx: the peer is the proxy');
  const instance = one(named, 'x-instance-id') ?? '';
  const apiLine = await waitFor(() => serviceLogLines(instance).find((line) => (line['req'] as { id?: string } | undefined)?.id === requestId), {
    timeoutMs: 10_000,
    what: `${instance}'s log line for ${requestId}`,
    intervalMs: 250,
  });
  t.equal((apiLine['req'] as { clientIp?: string }).clientIp, '203.0.113.12', 'the API: req.ip is the same client');

  // Event streams in total: one each from more clients than the total allows.
  const clients = STREAMS_TOTAL + 12;
  const streams = await Promise.all(Array.from({ length: clients }, (_, i) => openStream({ 'x-forwarded-for': `198.18.${Math.floor(i / 200)}.${(i % 200) + 1}` })));
  t.teardown(() => {
    for (const stream of streams) stream.close();
  });
  t.equal(streams.filter((stream) => stream.status === 200).length, STREAMS_TOTAL, `${STREAMS_TOTAL} of ${clients} clients' streams open: the total`);
  t.equal(streams.filter((stream) => stream.status === 429).length, clients - STREAMS_TOTAL, 'the others refused');
  for (const stream of streams) stream.close();
});

t.test('the default rate limit: a burst of 768 requests from 256 connections of one address gets no 429', async (t) => {
  t.match(renderedConf(), new RegExp(`rate=${DEFAULT_RATE}r/s`), 'nginx runs with the default limit');
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  t.teardown(() => {
    agent.destroy();
  });
  const statuses = await Promise.all(
    Array.from({ length: 256 }, async () => {
      const seen: number[] = [];
      for (let i = 0; i < 3; i += 1) seen.push((await send('/api/instance', { agent })).status);
      return seen;
    }),
  );
  const flat = statuses.flat();
  t.equal(flat.filter((status) => status === 429).length, 0, `no 429 among ${flat.length} requests`);
  t.equal(flat.filter((status) => status === 200).length, flat.length, 'all 200');
});
