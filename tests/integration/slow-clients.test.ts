/**
 * Issue 15, through the real API process and its real deadlines (apps/api/src/http/server.ts):
 * clients that send their headers or bodies slowly are answered 408 request_timeout after 5 s
 * (headers) or 10 s (the whole request), whatever their pace, while every other request keeps
 * being answered at once.
 */
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { freePort, http, startStack } from '@inflow/test-support';

t.setTimeout(90_000);

interface Slow {
  /** When the server closed the connection, in ms after the first byte. */
  closedAfterMs: Promise<number>;
  received: () => string;
}

/** Opens a connection that sends `head` and then one byte of `drip` every `everyMs`. */
function slowClient(port: number, head: string, drip: string, everyMs: number): Slow {
  const socket: Socket = connect(port, '127.0.0.1');
  let received = '';
  let startedAt = 0;
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString()));
  socket.on('error', () => undefined);
  socket.once('connect', () => {
    startedAt = Date.now();
    socket.write(head);
    let i = 0;
    timer = setInterval(() => {
      socket.write(drip[i % drip.length] ?? ' ');
      i += 1;
    }, everyMs);
  });
  const closedAfterMs = new Promise<number>((resolve) => {
    socket.once('close', () => {
      clearInterval(timer);
      resolve(Date.now() - startedAt);
    });
  });
  return { closedAfterMs, received: () => received };
}

t.test('slow headers and slow bodies end with 408; the API keeps answering everyone else', async (t) => {
  const stack = await startStack(t, { apis: 1, workers: 0, env: { OPS_PORT: String(await freePort()) } });
  const [api] = stack.apis;
  if (api === undefined) throw new Error('no API');

  const body = JSON.stringify({ author: 'slow', message: 'x'.repeat(16_000) });
  // 40 uploads at one byte every 250 ms (the 16 KiB body would take over an hour), and 10
  // clients that never finish their headers.
  const bodies = Array.from({ length: 40 }, () =>
    slowClient(api.port, `POST /api/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${String(body.length)}\r\n\r\n`, body, 250),
  );
  const headers = Array.from({ length: 10 }, () => slowClient(api.port, 'GET /api/instance HTTP/1.1\r\nHost: x\r\n', 'X-Slow: still coming\r\n', 250));

  // Meanwhile: ordinary requests, answered at once.
  const timings: number[] = [];
  const probe = (async () => {
    const deadline = Date.now() + 11_000;
    while (Date.now() < deadline) {
      const startedAt = Date.now();
      const answer = await http(`${api.url}/api/instance`);
      if (answer.status !== 200) throw new Error(`GET /api/instance answered ${String(answer.status)}`);
      timings.push(Date.now() - startedAt);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();

  const headerTimes = await Promise.all(headers.map((client) => client.closedAfterMs));
  const bodyTimes = await Promise.all(bodies.map((client) => client.closedAfterMs));
  await probe;

  for (const client of [...headers, ...bodies]) {
    const text = client.received();
    if (!text.startsWith('HTTP/1.1 408 ')) t.fail(`not a 408: ${text.slice(0, 80)}`);
    if (!text.includes('"code":"request_timeout"')) t.fail(`not request_timeout: ${text.slice(-120)}`);
  }
  t.ok(headerTimes.every((ms) => ms >= 4_900 && ms < 7_500), `slow headers ended after 5 s (${String(Math.min(...headerTimes))}-${String(Math.max(...headerTimes))} ms)`);
  t.ok(bodyTimes.every((ms) => ms >= 9_900 && ms < 12_500), `slow bodies ended after 10 s (${String(Math.min(...bodyTimes))}-${String(Math.max(...bodyTimes))} ms)`);
  t.ok(timings.length > 40, `${String(timings.length)} other requests answered meanwhile`);
  t.ok(Math.max(...timings) < 1_000, `each within a second (slowest ${String(Math.max(...timings))} ms)`);
  t.equal(await stack.redis.client.llen('bull:entries:wait'), 0, 'no slow upload was enqueued');
  t.equal(api.child.exitCode, null, 'the API is still running');
});
