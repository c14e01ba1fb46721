/**
 * The edge's capacity bounds, through nginx as a client sees it: event streams per address and
 * in total, slow uploads held per address and ended by the API's whole-request deadline, the
 * client address from X-Forwarded-For only behind a trusted proxy (with a bucket of its own),
 * and the default rate limit out of reach of a legitimate burst. The flood side of the rate
 * limit is chaos scenario 10 (tests/chaos/scenarios/10-rate-limit.ts). Every load here is bounded by count.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT); one test
 * recreates its nginx with other variables, and restores it.
 */
import { randomUUID } from 'node:crypto';
import { Agent } from 'node:http';
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { docker, errorCode, firstHeader as one, PROJECT, serviceLogLines, waitFor } from '@inflow/test-support';
import { HOST, PORT, edgeHeaderProblems, openStream, recreateNginx, renderedConf, send, type Answer } from './edge.ts';

// The bounds of deploy/nginx/edge/ (routes.conf, request-bounds.conf) and the rate's default, restated: the tests below show each one.
const STREAMS_PER_ADDRESS = 32;
const STREAMS_TOTAL = 128;
const BODIES_PER_ADDRESS = 512;
const DEFAULT_RATE = 2000;

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
  const [edge] = JSON.parse(await docker(['network', 'inspect', `${PROJECT}_edge`])) as [{ IPAM: { Config: { Gateway?: string }[] } }];
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
  t.match(await renderedConf(), new RegExp(`set_real_ip_from ${gateway.replaceAll('.', '\\.')};`), `the gateway ${gateway} is trusted`);

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
  t.match(await renderedConf(), new RegExp(`rate=${DEFAULT_RATE}r/s`), 'nginx runs with the default limit');
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
