/**
 * What a replica's acknowledgement costs (docs/performance.md, "Replicated Redis"): the compose
 * stack with one Redis and then with the replicated layout (deploy/compose/replicated-redis.yml:
 * a replica, three sentinels, REDIS_REPLICA_ACKS=1), loaded the same way in the same run (wrk
 * POSTs through nginx, load.ts), each accepted entry looked up in PostgreSQL afterwards. Prints
 * one table (accepted/s and latency per layout and concurrency), writes
 * test-results/bench-replicated.json, removes the stack, and exits non-zero when an entry was
 * lost or duplicated or a request failed. Separate from run.ts: it builds and starts the stack
 * twice, which the benchmark's smoke run in `npm test` cannot afford.
 *
 *   npm run bench:replicated            (from the repository root; about 6 minutes)
 *   node bench/replicated.ts [--seconds N]     (from tests/)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { down, REPO_ROOT, up } from '@inflow/test-support';
import { stackTarget } from './containers.ts';
import { postEntries, type LoadFigures } from './load.ts';
import { reconcileEntries, type Ledger } from './measure.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '10' } } });
const seconds = Number(values.seconds);
if (!(seconds > 0)) throw new Error('--seconds must be a positive number');

// As run.ts: every client of this host shares one nginx rate-limit bucket; measure the stack.
process.env['RATE_LIMIT_PER_SECOND'] ??= '1000000';
process.env['RATE_LIMIT_BURST'] ??= '1000000';

const LAYOUTS = {
  single: ['docker-compose.yml'],
  replicated: ['docker-compose.yml', 'deploy/compose/replicated-redis.yml'],
} as const;
const CONCURRENCIES = [16, 64] as const;
const runId = Date.now().toString(36);

interface Row {
  layout: keyof typeof LAYOUTS;
  connections: number;
  figures: LoadFigures;
  ledger: Ledger;
}

const say = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
};

const rows: Row[] = [];
let failure: unknown;
try {
  for (const [layout, files] of Object.entries(LAYOUTS) as [keyof typeof LAYOUTS, readonly string[]][]) {
    process.env['COMPOSE_FILE'] = files.join(process.platform === 'win32' ? ';' : ':');
    say(`${layout}: starting the stack (${files.join(' + ')})`);
    down();
    await up();
    for (const connections of CONCURRENCIES) {
      const author = `bench-${runId}-${layout}-c${String(connections)}`;
      const { figures, acceptedIds } = await postEntries(stackTarget(), { path: '/api/entries', connections, durationSeconds: seconds, author });
      const ledger = await reconcileEntries(author, acceptedIds);
      rows.push({ layout, connections, figures, ledger });
      say(`${layout} c=${String(connections)}: ${figures.requestsPerSecond.toFixed(0)} accepted/s, p50 ${String(figures.latencyMs.p50)} ms, p99 ${String(figures.latencyMs.p99)} ms, ${String(ledger.lost)} lost`);
    }
  }
} catch (error) {
  failure = error;
  process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
} finally {
  down();
}

const table = [
  '| layout | connections | accepted/s | p50 ms | p99 ms | errors | lost | duplicated |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map(
    ({ layout, connections, figures, ledger }) =>
      `| ${layout} | ${String(connections)} | ${figures.requestsPerSecond.toFixed(0)} | ${String(figures.latencyMs.p50)} | ${String(figures.latencyMs.p99)} | ${String(Object.values(figures.errors).reduce((a, b) => a + b, 0))} | ${String(ledger.lost)} | ${String(ledger.duplicated)} |`,
  ),
].join('\n');
process.stdout.write(`\n${table}\n`);
mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
writeFileSync(join(REPO_ROOT, 'test-results', 'bench-replicated.json'), `${JSON.stringify({ seconds, rows }, null, 2)}\n`);

const broken = rows.filter(({ figures, ledger }) => ledger.lost > 0 || ledger.duplicated > 0 || Object.values(figures.errors).some((count) => count > 0));
if (failure !== undefined || broken.length > 0 || rows.length !== CONCURRENCIES.length * Object.keys(LAYOUTS).length) process.exitCode = 1;
