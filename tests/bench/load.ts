/**
 * The benchmark's load: wrk runs (wrk/*.lua), each for a fixed time or until stopped, reduced to
 * the figures the report shows. wrk runs in a container of the tools image (tests/tools/Dockerfile)
 * joined to the network namespace of the nginx container under test (`--network container:…`),
 * against nginx's own port 80: every load, the stack's and every ceiling's, takes the same path,
 * and none goes through docker-proxy, whose userland copying would cost as much CPU as a replica
 * and be measured as the stack's. No root, no host binary. POST runs record the id of every 202
 * (files in a mounted temporary folder) so that the run can prove afterwards that each accepted
 * entry was persisted exactly once.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exec, PROJECT, REPO_ROOT, ownerLabelArgs, toolsImage } from '@inflow/test-support';
import { BENCH_LABEL } from './containers.ts';

const SCRIPTS = join(REPO_ROOT, 'tests', 'bench', 'wrk');
// wrk's threads: one per core of this 2-core machine; a load of fewer connections gets fewer.
const THREADS = 2;
// /proc/self/stat and /proc/stat count in clock ticks, 100 per second on Linux.
const TICKS_PER_SECOND = 100;

/**
 * What to load: an nginx container (its id), whose network namespace wrk joins, or a URL wrk
 * reaches from the engine's host network as it is (a published port).
 */
export type LoadTarget = { container: string } | { url: string };

export interface LoadFigures {
  connections: number;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Requests by HTTP status ("202": 10234); empty for plain loads (wrk parses no responses). */
  statuses: Record<string, number>;
  /** Everything that is not the expected answer, by kind: "HTTP 503", "timeout", "connect"… */
  errors: Record<string, number>;
  /** CPU seconds wrk itself used (all its threads), from its /proc/self/stat. */
  loadGeneratorCpuSeconds: number;
  /** CPU seconds the whole machine was busy meanwhile (/proc/stat, read by wrk), wrk included. */
  machineCpuSeconds: number;
}

export interface LoadOptions {
  path: string;
  connections: number;
  /** Seconds; a load given `stop` runs until it resolves instead. */
  durationSeconds: number;
  /** Ends the load early (wrk stops on SIGINT and still reports). */
  stop?: Promise<unknown>;
  /** A JSON body: POSTs it with every request instead of a GET. */
  body?: string;
}

export interface PostLoadOptions extends LoadOptions {
  /** The author of every entry, so the run's rows can be found. */
  author: string;
  /** Requests per second for the whole load, paced (wrk/entries.lua); as fast as answered without. */
  rate?: number;
}

interface WrkSummary {
  requests: number;
  durationUs: number;
  statuses: Record<string, number>;
  errors: { connect: number; read: number; write: number; timeout: number; status: number };
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  cpuTicks: number;
  machineTicks: number;
}

// wrk's CPU seconds over every load so far: run.ts sets it beside each measurement's total.
let loadGeneratorTotal = 0;
export const loadGeneratorCpuSeconds = (): number => loadGeneratorTotal;

// The host's user for the wrk container, so that the id files it writes into the mounted folder
// are the host's to read and delete (no such thing on Windows, whose mounts do not check).
const HOST_USER = process.getuid === undefined || process.getgid === undefined ? [] : ['--user', `${process.getuid()}:${process.getgid()}`];

/** Runs wrk with `script` against `target`; `ids`: a host folder the script writes the 202s' ids into. */
async function wrk(target: LoadTarget, script: string, options: LoadOptions, env: Record<string, string> = {}, ids?: string): Promise<WrkSummary> {
  const threads = Math.min(THREADS, options.connections);
  const args = ['-t', String(threads), '-c', String(options.connections)];
  // A load that `stop` ends gets a duration it cannot reach first.
  args.push('-d', `${options.stop === undefined ? options.durationSeconds : 3_600}s`, '--timeout', '10s', '--latency', '-s', `/bench/wrk/${script}`);
  const name = `${PROJECT}-wrk-${randomBytes(4).toString('hex')}`;
  const settings = { ...env, BENCH_THREADS: String(threads), ...(ids === undefined ? {} : { BENCH_IDS: '/ids/ids' }) };
  const child = spawn(
    'docker',
    [
      'run', '--rm', '--init', '--name', name, ...ownerLabelArgs(), '--label', BENCH_LABEL,
      '--network', 'container' in target ? `container:${target.container}` : 'host', ...HOST_USER,
      '-v', `${SCRIPTS}:/bench/wrk:ro`, ...(ids === undefined ? [] : ['-v', `${ids}:/ids`]),
      ...Object.entries(settings).flatMap(([key, value]) => ['-e', `${key}=${value}`]),
      await toolsImage(), 'wrk', ...args, `${'container' in target ? 'http://127.0.0.1:80' : target.url}${options.path}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // wrk stops on SIGINT and still reports (docker-init passes the signal on).
  void options.stop?.then(() => exec('docker', ['kill', '--signal', 'INT', name]));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const line = /^wrk-summary (.*)$/m.exec(stdout)?.[1];
  if (code !== 0 || line === undefined) throw new Error(`wrk ${options.path} failed (${code}):\n${stderr}\n${stdout}`);
  const summary = JSON.parse(line) as WrkSummary;
  loadGeneratorTotal += summary.cpuTicks / TICKS_PER_SECOND;
  return summary;
}

function figures(summary: WrkSummary, connections: number, expect?: number): LoadFigures {
  const errors: Record<string, number> = {};
  for (const [status, count] of Object.entries(summary.statuses)) if (Number(status) !== expect) errors[`HTTP ${status}`] = count;
  // Without a response() callback wrk counts statuses above 399 only, as one figure.
  if (Object.keys(summary.statuses).length === 0 && summary.errors.status > 0) errors['HTTP 4xx/5xx'] = summary.errors.status;
  for (const kind of ['connect', 'read', 'write', 'timeout'] as const) if (summary.errors[kind] > 0) errors[kind] = summary.errors[kind];
  const seconds = summary.durationUs / 1e6;
  const ms = (us: number) => round(us / 1000, 1);
  return {
    connections,
    requests: summary.requests,
    seconds: round(seconds, 2),
    requestsPerSecond: round(summary.requests / seconds, 0),
    latencyMs: { p50: ms(summary.latencyUs.p50), p90: ms(summary.latencyUs.p90), p99: ms(summary.latencyUs.p99), max: ms(summary.latencyUs.max) },
    statuses: summary.statuses,
    errors,
    loadGeneratorCpuSeconds: summary.cpuTicks / TICKS_PER_SECOND,
    machineCpuSeconds: round(summary.machineTicks / TICKS_PER_SECOND, 2),
  };
}

/** GETs `path` (or POSTs `body` to it), the cheapest load wrk generates (no response parsing). */
export async function runLoad(target: LoadTarget, options: LoadOptions): Promise<LoadFigures> {
  return figures(await wrk(target, 'plain.lua', options, options.body === undefined ? {} : { BENCH_BODY: options.body }), options.connections);
}

/**
 * POSTs entries of one author, a fresh message each, and returns the figures together with the
 * ids of the entries that got a 202.
 */
export async function postEntries(target: LoadTarget, options: PostLoadOptions): Promise<{ figures: LoadFigures; acceptedIds: string[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-bench-ids-'));
  try {
    const env = { BENCH_AUTHOR: options.author, ...(options.rate === undefined ? {} : { BENCH_RATE: String(options.rate) }) };
    const summary = await wrk(target, 'entries.lua', options, env, dir);
    const acceptedIds = readdirSync(dir).flatMap((file) => readFileSync(join(dir, file), 'utf8').split('\n').filter(Boolean));
    return { figures: figures(summary, options.connections, 202), acceptedIds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;
