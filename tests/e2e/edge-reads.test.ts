/**
 * What large reads cost, through nginx (issue 20, findings 2 and 3): pages of 200 maximal entries
 * (80 × 😀 author, 2,000 × 😀 message: about 1.6 MB a page), read by one client as fast as it
 * can, and by many that never read. Meanwhile another client's small reads and readiness must
 * get 200, and the host's TCP memory must stay below the kernel's pressure threshold.
 *
 * Two client addresses: the heavy and the slow readers run in containers of the tools image in
 * nginx's network namespace, so nginx sees them as 127.0.0.x; the test process reaches nginx from
 * the host (through docker-proxy: the edge network's gateway). Every load is bounded by count, and
 * every container is labelled and removed, even on failure; the seeded rows are deleted.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { REPO_ROOT, containerId, docker, errorCode, firstHeader as one, literal, ownerLabelArgs, psql, toolsImage } from '@inflow/test-support';
import { send } from './edge.ts';

const RUN = `inflow-edge-reads-${randomUUID().slice(0, 8)}`;
const LABELS = [...ownerLabelArgs(), '--label', `org.inflow.test.run=${RUN}`];
const READERS = join(import.meta.dirname, 'readers');

/** The seeded entries: more than a page, each as large as the entry rules allow. */
const SEEDED = 220;
const PAGE = '/api/entries?limit=200';
/** A `limit_conn <zone> <n>;` bound of the edge, read from the one source every platform renders. */
function edgeBound(zone: string): number {
  const limits = readFileSync(join(REPO_ROOT, 'deploy/nginx/edge/server-limits.conf'), 'utf8');
  const bound = new RegExp(`^limit_conn ${zone} (\\d+);`, 'm').exec(limits)?.[1];
  if (bound === undefined) throw new Error(`deploy/nginx/edge/server-limits.conf has no limit_conn ${zone}`);
  return Number(bound);
}
/** The bounds on list reads in progress, per address and in all. */
const LISTS_PER_ADDRESS = edgeBound('lists_per_address');
const LISTS_TOTAL = edgeBound('lists_total');

t.before(async () => {
  // Straight into PostgreSQL: 220 POSTs would go through the queue and the worker for nothing
  // this test looks at. Newest first, as the list reads them, so every page is of these rows.
  await psql(`
    INSERT INTO entries (id, author, message, accepted_by, persisted_by, created_at)
    SELECT gen_random_uuid(), repeat('😀', 80), repeat('😀', 2000), ${literal(RUN)}, ${literal(RUN)}, now() + make_interval(secs => g / 1000.0)
    FROM generate_series(1, ${SEEDED}) AS g`);
});

t.teardown(async () => {
  const ids = (await docker(['ps', '-aq', '--filter', `label=org.inflow.test.run=${RUN}`]).catch(() => '')).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => undefined);
  await psql(`DELETE FROM entries WHERE accepted_by = ${literal(RUN)}`);
});

/** A reader container: its JSON lines as they come, and how it ended. */
interface Reader {
  /** The first line that has `key`; rejects if the container ends without one. */
  line: (key: string) => Promise<Record<string, unknown>>;
  /** Resolves with the exit code once the container has ended. */
  exited: Promise<number>;
  ended: () => boolean;
}

/** Runs `command` in a labelled container of the tools image in nginx's network namespace (removed when it ends). */
async function startReader(name: string, command: readonly string[]): Promise<Reader> {
  const args = ['run', '--rm', '--name', `${RUN}-${name}`, ...LABELS, '--network', `container:${containerId('nginx')}`, '-v', `${READERS}:/readers:ro`, await toolsImage(), ...command];
  const child = spawn('docker', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Record<string, unknown>[] = [];
  let stdout = '';
  let stderr = '';
  let done = false;
  const waiting: (() => void)[] = [];
  const wake = () => {
    for (const waiter of waiting.splice(0)) waiter();
  };
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString('utf8');
    const complete = stdout.split('\n');
    stdout = complete.pop() ?? '';
    for (const text of complete) if (text.startsWith('{')) lines.push(JSON.parse(text) as Record<string, unknown>);
    wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number>((resolve) => {
    child.on('close', (code) => {
      done = true;
      wake();
      resolve(code ?? -1);
    });
  });
  t.teardown(() => {
    if (!done) child.kill();
  });
  const line = async (key: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = lines.find((candidate) => key in candidate);
      if (found !== undefined) return found;
      if (done) throw new Error(`${name} ended without a "${key}" line:\n${stderr.slice(-2_000)}`);
      await new Promise<void>((resolve) => waiting.push(resolve));
    }
  };
  return { line, exited, ended: () => done };
}

/** The statuses a client got, counted: {"200": n, …}. */
const tally = (statuses: readonly number[]) => Object.fromEntries([...new Set(statuses)].sort().map((status) => [status, statuses.filter((s) => s === status).length]));

/**
 * Another client's small requests, round after round, until `ended()` (or 2,000 rounds): each
 * round a small list read, the public readiness and /api/instance, at once. Their statuses and
 * the slowest answer.
 */
async function othersWhile(ended: () => boolean): Promise<{ statuses: number[]; rounds: number; slowestMs: number; refusals: string[] }> {
  const statuses: number[] = [];
  const refusals: string[] = [];
  let slowestMs = 0;
  let rounds = 0;
  const timed = async (path: string) => {
    const startedAt = performance.now();
    const answer = await send(path);
    slowestMs = Math.max(slowestMs, performance.now() - startedAt);
    if (answer.status !== 200) refusals.push(`${path}: ${answer.status} ${errorCode(answer) ?? ''} from ${one(answer, 'x-instance-id') ?? '?'}`);
    return answer.status;
  };
  for (; rounds < 2_000 && !ended(); rounds += 1) statuses.push(...(await Promise.all([timed('/api/entries?limit=5'), timed('/readyz'), timed('/api/instance')])));
  return { statuses, rounds, slowestMs, refusals };
}

t.test('the seeded page is as large as a list page can be', async (t) => {
  const page = await send(PAGE);
  t.equal(page.status, 200);
  const bytes = Buffer.byteLength(page.text);
  t.ok(bytes > 1_600_000, `GET ${PAGE}: ${(bytes / 1e6).toFixed(2)} MB`);
});

t.test('heavy reads: one address opening 1,000 pages at once gets 200, 429 or 503; another address gets only 200 meanwhile', async (t) => {
  const requests = 1_000;
  const heavy = await startReader('heavy', ['node', '/readers/heavy-reads.ts', `http://127.0.0.1${PAGE}`, String(requests)]);
  await heavy.line('started');
  const others = await othersWhile(heavy.ended);
  t.equal(await heavy.exited, 0, 'the heavy reader ran to its end');
  const end = (await heavy.line('statuses')) as { statuses: Record<string, number>; errors: number; seconds: number };
  const counted = Object.values(end.statuses).reduce((sum, n) => sum + n, 0);
  t.comment(`heavy reader (127.0.0.1): ${JSON.stringify(end.statuses)} in ${end.seconds} s`);
  t.comment(`other client (the host): ${others.rounds} rounds, ${JSON.stringify(tally(others.statuses))}, slowest answer ${others.slowestMs.toFixed(0)} ms`);
  t.equal(end.errors, 0, 'every heavy read got an answer');
  t.equal(counted, requests, `${requests} answers`);
  t.same(Object.keys(end.statuses).filter((status) => !['200', '429', '503'].includes(status)), [], 'the heavy reader got 200, 429 or 503 only');
  // nginx lets one address have LISTS_PER_ADDRESS list reads in progress; the rest of a burst of 1,000 is refused.
  t.ok((end.statuses['429'] ?? 0) > 0, `reads over its ${LISTS_PER_ADDRESS} in progress refused (429)`);
  t.ok(others.rounds > 0, 'the other client was served while the heavy reads ran');
  t.same(others.refusals.slice(0, 10), [], 'the other client: a small list read, /readyz and /api/instance, 200 every time');
});

/** The TCP line's `mem` of /proc/net/sockstat: pages the kernel holds for TCP sockets, host-wide. */
const tcpMemPages = (): number => Number(/^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))?.[1] ?? Number.NaN);

t.test('slow readers: 1,000 sockets that never read are ended by nginx; the host TCP memory stays below pressure; others get 200', async (t) => {
  // tcp_mem: min, pressure, max (pages). Above the pressure threshold the kernel shrinks every
  // socket's buffers; at max, TCP allocations fail host-wide.
  const [, pressure = Number.NaN] = readFileSync('/proc/sys/net/ipv4/tcp_mem', 'utf8').trim().split(/\s+/).map(Number);
  const sockets = 1_000;
  // One address, as in the issue. Several would fill the totals (nginx's LISTS_TOTAL, a
  // replica's share), which is what a total is for: then everyone's list reads are refused.
  const sources = ['127.0.0.11'];
  const before = tcpMemPages();
  let peak = before;
  const sampler = setInterval(() => {
    peak = Math.max(peak, tcpMemPages());
  }, 100);
  t.teardown(() => {
    clearInterval(sampler);
  });
  // 120 polls of 0.5 s: a minute for nginx to end them (send_timeout is 10 s).
  const slow = await startReader('slow', ['python3', '/readers/slow-readers.py', '127.0.0.1', '80', PAGE, String(sockets), sources.join(','), '120']);
  await slow.line('holding');
  const atHold = tcpMemPages();
  const others = await othersWhile(slow.ended);
  t.equal(await slow.exited, 0, 'the slow readers ran to their end');
  clearInterval(sampler);
  peak = Math.max(peak, atHold);
  const end = (await slow.line('reset')) as { reset: number; closed: number; open: number; seconds: number };
  const held = Math.min(sockets, sources.length * LISTS_PER_ADDRESS);
  // Readers not answered in full held a page (or still do).
  const holding = sockets - end.closed;
  const perReaderKiB = holding === 0 ? 0 : ((peak - before) * 4096) / 1024 / holding;
  t.comment(`slow readers (${sources.join(', ')}): ${end.reset} reset by nginx (pages not read), ${end.closed} answered in full and closed (refused), ${end.open} still open, after ${end.seconds} s`);
  t.comment(`host TCP memory: ${before} pages before, ${atHold} when all were sent, ${peak} at its highest (${((peak * 4096) / 2 ** 20).toFixed(1)} MiB); pressure threshold ${pressure} pages (${((pressure * 4096) / 2 ** 20).toFixed(0)} MiB)`);
  t.comment(`about ${perReaderKiB.toFixed(0)} KiB per reader nginx held; at the total bound (${LISTS_TOTAL} list reads) about ${((perReaderKiB * LISTS_TOTAL) / 1024).toFixed(0)} MiB`);
  t.comment(`other client (the host): ${others.rounds} rounds, ${JSON.stringify(tally(others.statuses))}, slowest answer ${others.slowestMs.toFixed(0)} ms`);
  t.equal(end.open, 0, 'nginx ended every slow reader');
  t.equal(end.reset + end.closed, sockets, 'each was reset (a page it did not read) or answered in full and closed');
  t.ok(end.reset > 0, `readers that held a page until nginx reset them: ${end.reset} (nginx admits ${held}: ${LISTS_PER_ADDRESS} per address)`);
  t.ok(peak < pressure, `the host's TCP memory at its highest (${peak} pages) stayed below the pressure threshold (${pressure})`);
  t.ok(others.rounds > 0, 'the other client was served while the slow readers held');
  t.same(others.refusals.slice(0, 10), [], 'the other client: a small list read, /readyz and /api/instance, 200 every time');
});
