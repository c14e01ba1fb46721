/**
 * The edge's test cases, run by the real nginx with each platform's configuration: compose's
 * nginx.conf (edge-paths.test.ts, against the compose stack) and the rendered Swarm and
 * Kubernetes ones (edge-platforms.test.ts, the same replicas behind them). Each case takes the
 * edge's base URL and returns what is wrong, so every platform is held to the same answers.
 */
import { connect } from 'node:net';
import { errorCode, firstHeader as one, headerValuesOf, rawExchange, rawRequest, type RawResult } from '@inflow/test-support';

type Answer = Pick<RawResult, 'status' | 'headerValues' | 'text'>;

/** What is wrong with the headers of one of nginx's own answers. */
export function edgeHeaderProblems(answer: Answer): string[] {
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
    const values = answer.headerValues.get(name) ?? [];
    if (values.length !== 1 || !pattern.test(values[0] ?? '')) problems.push(`${name}: ${JSON.stringify(values)}`);
  }
  return problems;
}

const json = { 'content-type': 'application/json' };

/** The paths the allow-list publishes, and what a replica answers to a GET of each. */
export const PUBLIC_PATHS: readonly (readonly [string, number])[] = [
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

/** Internal or unknown paths, in every spelling that could slip past a naive allow-list. */
export const INTERNAL_PATHS: readonly string[] = [
  '/metrics', '/metrics/', '/Metrics', '/METRICS', '/mEtRiCs', '/metrics?format=text', '/metrics;x', '/metrics.txt',
  '/%2Fmetrics', '/%2fmetrics', '/%6Detrics', '/%6d%65%74%72%69%63%73', '//metrics', '/./metrics', '/api/../metrics',
  '/api/%2E%2E/metrics', '/api/..%2Fmetrics', '/metrics/../api/instance', '/./api/instance', '/api//instance', '/api/instance/',
  '/API/INSTANCE', '/api/metrics', '/api', '/api/', '/api/entries/', '/api/entries/x/..', '/api/entries/%30', '/api/entries/a/b',
  '/api/entriesx', '/api/events/', '/readyz/', '/healthz/details', '/ops', '/internal', '/admin', '/favicon.ico', '/index.html/',
  '/main.js.map', '/.env', '/package.json', '/_edge/404', '/_edge/502', '/_edge/http09',
];

/**
 * A chunked POST /api/entries whose first chunk line carries an extension of `extensionBytes`,
 * written 64 KiB at a time until the answer arrives (or all of it is written): nginx's one answer,
 * as soon as it is complete. The connection is then closed here.
 */
function chunkedPost(base: string, extensionBytes: number): Promise<Answer> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let data = Buffer.alloc(0);
    let written = 0;
    let answered = false;
    const piece = Buffer.alloc(64 * 1024, 'e');
    const writeMore = () => {
      while (!answered && written < extensionBytes) {
        const size = Math.min(piece.length, extensionBytes - written);
        written += size;
        if (!socket.write(piece.subarray(0, size))) {
          socket.once('drain', writeMore);
          return;
        }
      }
      if (!answered && written >= extensionBytes) socket.write('\r\n{}\r\n0\r\n\r\n');
    };
    socket.setTimeout(30_000, () => socket.destroy(new Error(`no answer to a chunked POST with a ${extensionBytes}-byte extension in 30 s`)));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0 || answered) return;
      const [statusLine = '', ...lines] = data.subarray(0, end).toString('latin1').split('\r\n');
      const headerValues = headerValuesOf(lines.flatMap((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1).trim()]));
      const length = Number(headerValues.get('content-length')?.[0] ?? '0');
      if (data.length < end + 4 + length) return;
      answered = true;
      socket.destroy();
      resolve({ status: Number(statusLine.split(' ')[1]), headerValues, text: data.subarray(end + 4, end + 4 + length).toString('utf8') });
    });
    // Once answered, a reset from nginx (it stops reading a refused body) is expected.
    socket.on('error', (error) => {
      if (!answered) reject(error);
    });
    socket.on('close', () => {
      if (!answered) reject(new Error(`a chunked POST with a ${extensionBytes}-byte extension: closed without an answer (${data.toString('latin1').slice(0, 80)})`));
    });
    socket.write('POST /api/entries HTTP/1.1\r\nHost: inflow\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2;x=', writeMore);
  });
}

export type EdgeCase = (base: string) => Promise<string[]>;

export const EDGE_CASES: Record<string, EdgeCase> = {
  'the public paths are proxied to a replica': async (base) => {
    const wrong: string[] = [];
    for (const [path, status] of PUBLIC_PATHS) {
      const answer = await rawRequest(`${base}${path}`);
      if (answer.status !== status) wrong.push(`${path}: ${answer.status}, not ${status}`);
      if (!/^web[123]$/.test(one(answer, 'x-instance-id') ?? '')) wrong.push(`${path}: answered by ${one(answer, 'x-instance-id') ?? '?'}`);
    }
    return wrong;
  },

  "every other path, in any spelling, is nginx's own 404 in the error shape": async (base) => {
    const wrong: string[] = [];
    for (const path of INTERNAL_PATHS) {
      for (const method of ['GET', 'POST']) {
        const answer = await rawRequest(`${base}${path}`, method === 'POST' ? { method, headers: json, body: '{}' } : { method });
        const problems = [...(answer.status === 404 ? [] : [`status ${answer.status}`]), ...(errorCode(answer) === 'not_found' ? [] : ['not the error shape']), ...edgeHeaderProblems(answer)];
        if (problems.length > 0) wrong.push(`${method} ${path}: ${problems.join(', ')} (${answer.text.slice(0, 80)})`);
      }
    }
    // A path that climbs above the root is not a path at all: nginx's 400.
    const above = await rawRequest(`${base}/%2e%2e/%2e%2e/etc/passwd`);
    if (above.status !== 400 || errorCode(above) !== 'bad_request') wrong.push(`/%2e%2e/%2e%2e/etc/passwd: ${above.status} ${errorCode(above) ?? ''}`);
    return [...wrong, ...edgeHeaderProblems(above).map((problem) => `/%2e%2e/...: ${problem}`)];
  },

  'every route answers other methods 405 with Allow: static files, /nginx-health, TRACE anywhere': async (base) => {
    const wrong: string[] = [];
    const expect = async (method: string, path: string, allow: string, byNginx: boolean) => {
      const answer = await rawRequest(`${base}${path}`, method === 'TRACE' ? { method } : { method, headers: json, body: '{}' });
      const problems = [
        ...(answer.status === 405 ? [] : [`status ${answer.status}`]),
        ...(errorCode(answer) === 'method_not_allowed' ? [] : [`code ${errorCode(answer) ?? 'none'}`]),
        ...(JSON.stringify(answer.headerValues.get('allow')) === JSON.stringify([allow]) ? [] : [`Allow ${JSON.stringify(answer.headerValues.get('allow'))}`]),
        ...(answer.text.includes(`${method} is not allowed here`) ? [] : [`message ${answer.text.slice(0, 100)}`]),
        ...(byNginx ? edgeHeaderProblems(answer) : /^web[123]$/.test(one(answer, 'x-instance-id') ?? '') ? [] : ['not from a replica']),
      ];
      if (problems.length > 0) wrong.push(`${method} ${path}: ${problems.join(', ')}`);
    };
    for (const path of ['/', '/index.html', '/main.js', '/styles.css', '/favicon.svg']) {
      for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']) await expect(method, path, 'GET, HEAD', false);
    }
    for (const method of ['POST', 'PUT', 'DELETE', 'OPTIONS']) await expect(method, '/nginx-health', 'GET, HEAD', true);
    await expect('DELETE', '/api/entries', 'GET, POST, HEAD', false);
    await expect('TRACE', '/api/entries', 'GET, POST, HEAD', true);
    await expect('TRACE', '/main.js', 'GET, HEAD', true);
    for (const method of ['GET', 'HEAD']) {
      const health = await rawRequest(`${base}/nginx-health`, { method });
      if (health.status !== 200) wrong.push(`${method} /nginx-health: ${health.status}`);
    }
    return wrong;
  },

  'HTTP/0.9 is refused with a complete HTTP/1.1 400, then the connection is closed': async (base) => {
    const wrong: string[] = [];
    for (const line of ['GET /api/instance\r\n', 'GET /metrics\r\n', 'GET /\r\n']) {
      const { answers, bytes } = await rawExchange(base, line);
      const [answer] = answers;
      if (!bytes.startsWith('HTTP/1.1 400 Bad Request\r\n')) wrong.push(`${JSON.stringify(line)}: ${JSON.stringify(bytes.slice(0, 40))}`);
      if (answers.length !== 1 || answer === undefined) {
        wrong.push(`${JSON.stringify(line)}: ${answers.length} answers`);
        continue;
      }
      if (errorCode(answer) !== 'bad_request') wrong.push(`${JSON.stringify(line)}: not the error shape`);
      wrong.push(...edgeHeaderProblems(answer).map((problem) => `${JSON.stringify(line)}: ${problem}`));
      if (Buffer.byteLength(answer.text) !== Number(one(answer, 'content-length'))) wrong.push(`${JSON.stringify(line)}: Content-Length is not the body's length`);
    }
    return wrong;
  },

  // nginx 1.22 skips chunk extensions without a bound (issue 20: a 50 MB one was answered 202).
  'a body without a Content-Length (chunked) is 411 before nginx reads it, whatever its chunk extensions': async (base) => {
    const wrong: string[] = [];
    for (const extensionBytes of [16, 8 * 1024 * 1024]) {
      const answer = await chunkedPost(base, extensionBytes);
      const what = `a chunked POST with a ${extensionBytes}-byte extension`;
      if (answer.status !== 411 || errorCode(answer) !== 'length_required') wrong.push(`${what}: ${answer.status} ${errorCode(answer) ?? answer.text.slice(0, 60)}`);
      wrong.push(...edgeHeaderProblems(answer).map((problem) => `${what}: ${problem}`));
    }
    return wrong;
  },

  "nginx's size limits: 413 body, 414 request line, 431 header line, in the error shape": async (base) => {
    const wrong: string[] = [];
    const cases: [string, Promise<RawResult>, number, string][] = [
      ['a 20 KB body', rawRequest(`${base}/api/entries`, { method: 'POST', headers: json, body: 'x'.repeat(20_000) }), 413, 'payload_too_large'],
      ['a 10 KB request line', rawRequest(`${base}/api/entries/${'a'.repeat(10_000)}`), 414, 'uri_too_long'],
      ['a 10 KB header line', rawRequest(`${base}/api/instance`, { headers: { 'x-huge': 'h'.repeat(10_000) } }), 431, 'headers_too_large'],
    ];
    for (const [what, pending, status, code] of cases) {
      const answer = await pending;
      if (answer.status !== status || errorCode(answer) !== code) wrong.push(`${what}: ${answer.status} ${errorCode(answer) ?? answer.text.slice(0, 60)}`);
      wrong.push(...edgeHeaderProblems(answer).map((problem) => `${what}: ${problem}`));
    }
    return wrong;
  },
};
