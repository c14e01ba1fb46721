/**
 * Issue 15: Node's own deadlines (http/server.ts, HTTP_TIMEOUTS), so that a client sending its
 * headers or its body slowly cannot hold a connection for as long as it likes: 408 in the error
 * shape. What they must not do: cut a slow response, an event stream, or an idle keep-alive
 * connection that nginx's pool holds between requests.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { Agent, request, type RequestListener } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REPO_ROOT } from '@inflow/test-support';
import t from 'tap';
import { createApp } from '../src/app.ts';
import { HTTP_TIMEOUTS, startHttpServer, type HttpTimeouts } from '../src/http/server.ts';
import { startDependencies } from './utils/real-app.ts';

// Short versions of the real numbers, in the same proportions.
const SHORT: HttpTimeouts = { requestMs: 800, headersMs: 400, checkIntervalMs: 50, keepAliveMs: 5_000 };

/** `timeouts` null: the real ones (HTTP_TIMEOUTS). */
async function start(t: { teardown: (fn: () => unknown) => void }, app: RequestListener, timeouts: HttpTimeouts | null = SHORT) {
  const http = await startHttpServer({ app, port: 0, instanceId: 'api-test', drainState: { draining: false }, onDrain: () => undefined, ...(timeouts ? { timeouts } : {}) });
  t.teardown(() => {
    http.server.closeAllConnections();
    http.server.close();
  });
  return { http, port: (http.server.address() as AddressInfo).port };
}

/** A raw connection: what it received, and when it was closed. */
function rawClient(port: number) {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close').then(() => Date.now());
  return { socket, closed, received: () => received, ready: once(socket, 'connect') };
}

function parse(raw: string) {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  return { status: Number(head.split(' ')[1]), head, body: body === '' ? undefined : (JSON.parse(body) as unknown) };
}

/** The keepalive_timeout of nginx.conf's upstream block: how long nginx keeps an idle upstream connection. */
function nginxUpstreamKeepAliveMs(): number {
  const conf = readFileSync(join(REPO_ROOT, 'nginx.conf'), 'utf8');
  const seconds = /upstream\s+\w+\s*\{[^}]*?\bkeepalive_timeout\s+(\d+)s;/.exec(conf)?.[1];
  if (seconds === undefined) throw new Error('nginx.conf has no keepalive_timeout in an upstream block');
  return Number(seconds) * 1000;
}

t.test('the server listens with HTTP_TIMEOUTS, and keeps idle connections longer than nginx', async (t) => {
  t.ok(Object.isFrozen(HTTP_TIMEOUTS));
  const { http } = await start(t, (_req, res) => res.end(), null);
  t.equal(http.server.requestTimeout, HTTP_TIMEOUTS.requestMs, 'a whole request');
  t.equal(http.server.headersTimeout, HTTP_TIMEOUTS.headersMs, 'the headers');
  t.equal(http.server.keepAliveTimeout, HTTP_TIMEOUTS.keepAliveMs, 'an idle keep-alive connection');
  // nodejs/node#27363: nginx reusing a socket Node just closed answers 502.
  t.ok(http.server.keepAliveTimeout > nginxUpstreamKeepAliveMs(), "above nginx's upstream keepalive_timeout");
  t.ok(http.server.headersTimeout <= http.server.requestTimeout, 'Node requires headers <= request');
});

t.test('a body that arrives too slowly: 408 request_timeout once the whole-request deadline passes', async (t) => {
  const { deps } = await startDependencies(t);
  const { port } = await start(t, createApp(deps));
  const body = JSON.stringify({ author: 'slow', message: 'x'.repeat(200) });
  const client = rawClient(port);
  await client.ready;
  const startedAt = Date.now();
  client.socket.write(`POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${String(body.length)}\r\n\r\n`);
  // One byte every 100 ms: never idle for long, so only a deadline for the whole request ends it.
  const drip = setInterval(() => client.socket.write(body[Math.floor((Date.now() - startedAt) / 100)] ?? ' '), 100);
  t.teardown(() => { clearInterval(drip); });
  const closedAt = await client.closed;
  clearInterval(drip);
  const answer = parse(client.received());
  t.equal(answer.status, 408, `408 (${client.received().slice(0, 120)})`);
  t.same(answer.body, { error: { code: 'request_timeout', message: 'the request took too long to arrive' } });
  t.match(answer.head, /X-Instance-Id: api-test/);
  t.match(answer.head, /Connection: close/);
  const ms = closedAt - startedAt;
  t.ok(ms >= SHORT.requestMs - 50 && ms < SHORT.requestMs + 1_000, `ended after ${String(ms)} ms (deadline ${String(SHORT.requestMs)} ms)`);
  t.same(await deps.queue.counts(), { waiting: 0, active: 0, delayed: 0, failed: 0 }, 'nothing enqueued');
  // The server is fine afterwards.
  const after = await fetch(`http://127.0.0.1:${String(port)}/healthz`);
  t.equal(after.status, 200);
});

t.test('headers that arrive too slowly: 408 once the header deadline passes', async (t) => {
  const { port } = await start(t, (_req, res) => res.end('ok'));
  const client = rawClient(port);
  await client.ready;
  const startedAt = Date.now();
  client.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => client.socket.write('X-Slow: y\r\n'), 100);
  t.teardown(() => { clearInterval(drip); });
  const closedAt = await client.closed;
  clearInterval(drip);
  t.equal(parse(client.received()).status, 408);
  t.match(parse(client.received()).body, { error: { code: 'request_timeout' } });
  const ms = closedAt - startedAt;
  t.ok(ms >= SHORT.headersMs - 50 && ms < SHORT.requestMs + 500, `ended after ${String(ms)} ms (deadline ${String(SHORT.headersMs)} ms)`);
});

t.test('a connection that sends nothing at all is closed too', async (t) => {
  const { port } = await start(t, (_req, res) => res.end('ok'));
  const client = rawClient(port);
  await client.ready;
  const startedAt = Date.now();
  const closedAt = await client.closed;
  t.ok(closedAt - startedAt < SHORT.requestMs + 1_000, `closed after ${String(closedAt - startedAt)} ms`);
});

t.test('a slow response and a long stream are not cut: the deadline ends when the request has arrived', async (t) => {
  const { port } = await start(t, (req, res) => {
    if (req.url === '/slow') {
      setTimeout(() => res.end('late but fine'), SHORT.requestMs * 2);
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    let n = 0;
    const tick = setInterval(() => {
      n += 1;
      res.write(`data: ${String(n)}\n\n`);
      if (n === 12) {
        clearInterval(tick);
        res.end();
      }
    }, 200);
  });
  const slow = await fetch(`http://127.0.0.1:${String(port)}/slow`);
  t.equal(slow.status, 200);
  t.equal(await slow.text(), 'late but fine');
  const startedAt = Date.now();
  const stream = await fetch(`http://127.0.0.1:${String(port)}/events`);
  const text = await stream.text();
  t.ok(Date.now() - startedAt > SHORT.requestMs * 2, 'the stream outlived the request deadline');
  t.match(text, /data: 12\n\n$/, 'and ended by itself, complete');
});

t.test('an idle keep-alive connection outlives the header deadline and still serves the next request', async (t) => {
  const { http, port } = await start(t, (_req, res) => res.end('ok'));
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => { agent.destroy(); });
  const sockets = new Set<unknown>();
  http.server.on('connection', (socket) => sockets.add(socket));
  const send = () =>
    new Promise<number>((resolve, reject) => {
      request({ port, host: '127.0.0.1', path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => { resolve(res.statusCode ?? 0); });
      }).on('error', reject).end();
    });
  t.equal(await send(), 200);
  // Idle for three header deadlines (and more than the request deadline): nginx's pool holds its
  // upstream connections like this for up to 60 s.
  await sleep(SHORT.headersMs * 3);
  t.equal(await send(), 200, 'answered on the same connection');
  t.equal(sockets.size, 1, 'one connection for both');
});
