/**
 * What each container of the stack uses while the benchmark runs, as the Docker engine reports it
 * (engine.ts), so that the benchmark needs no access to the host's cgroup or /proc files and
 * measures the engine's machine wherever that runs:
 * - CPU: the container's CPU time, as a share of one core between samples, and on average;
 * - memory: the cgroup's anonymous memory (its processes' RSS without the page cache), which the
 *   targets are about, and for the node services the node process's own resident set size (the
 *   engine's `ps`, read less often: it runs a process on the engine's host).
 * The whole machine's busy time comes from /proc/stat read in a small container of the tools image
 * (the kernel the containers share), asked over its stdin whenever a figure needs it.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerId, SERVICES, ownerLabelArgs, toolsImage } from '@inflow/test-support';
import { BENCH_LABEL } from './containers.ts';
import { containerProcesses, containerStats } from './engine.ts';
import { round } from './load.ts';

export interface ServiceUsage {
  /**
   * The container's memory (its cgroup's anonymous memory: what its processes hold, without the
   * page cache and without the node binary's shared pages), highest seen and at the end, MiB.
   */
  peakMemoryMiB: number;
  endMemoryMiB?: number;
  /** Highest CPU use between two samples, % of one core. */
  peakCpuPercent: number;
  /** CPU use over the whole run, % of one core. */
  averageCpuPercent: number;
  /** Node services: the node process's resident set (including the binary's pages), MiB. */
  peakRssMiB?: number;
  endRssMiB?: number;
}

const isNodeService = (service: string): boolean => /(^|-)(web\d|worker)$/.test(service);
const MIB = 1024 ** 2;
// The node processes' RSS every this many samples.
const RSS_EVERY = 4;

/** RSS of the service's node process (not docker-init, not a health probe), bytes. */
async function nodeRssBytes(id: string): Promise<number | undefined> {
  const node = (await containerProcesses(id)).find(({ args }) => /^\S*node\s/.test(args) && !args.includes('healthcheck'));
  return node === undefined ? undefined : node.rssKiB * 1024;
}

// --- The machine ------------------------------------------------------------------------------

// Prints the first line of /proc/stat for every chunk read on stdin; ends with stdin.
const STAT_READER = "const fs=require('fs');process.stdin.on('data',(d)=>{for(let i=0;i<d.length;i+=1)process.stdout.write(fs.readFileSync('/proc/stat','utf8').split('\\n')[0]+'\\n');});";

let machine: Promise<(() => Promise<string>) & { end: () => void }> | undefined;

function machineProbe(): NonNullable<typeof machine> {
  machine ??= (async () => {
    const child = spawn('docker', ['run', '-i', '--rm', '--init', ...ownerLabelArgs(), '--label', BENCH_LABEL, '--network', 'none', await toolsImage(), 'node', '-e', STAT_READER], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const waiting: { resolve: (line: string) => void; reject: (error: Error) => void }[] = [];
    const fail = (error: Error) => {
      for (const pending of waiting.splice(0)) pending.reject(error);
    };
    createInterface({ input: child.stdout }).on('line', (line) => waiting.shift()?.resolve(line));
    child.on('error', fail);
    child.on('close', (code) => {
      fail(new Error(`the /proc/stat reader exited (${code})`));
    });
    const ask = () =>
      new Promise<string>((resolve, reject) => {
        waiting.push({ resolve, reject });
        child.stdin.write('\n');
      });
    return Object.assign(ask, { end: () => child.stdin.end() });
  })();
  return machine;
}

/** CPU seconds the whole machine has been busy since boot (/proc/stat: every state but idle and iowait). */
export async function machineCpuSeconds(): Promise<number> {
  const line = await (await machineProbe())();
  const fields = (/^cpu\s+(.*)$/.exec(line)?.[1] ?? '').split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  // /proc/stat counts in USER_HZ, 100 per second on Linux.
  return (user + nice + system + irq + softirq + steal) / 100;
}

/** Ends the /proc/stat reader (its container is removed as it exits). */
export async function stopMachineProbe(): Promise<void> {
  const probe = machine;
  machine = undefined;
  if (probe !== undefined) (await probe.catch(() => undefined))?.end();
}

// --- The containers ---------------------------------------------------------------------------

export interface ResourceSampler {
  /** CPU seconds each service has used since sampling began, read now. */
  cpuSeconds(): Promise<Record<string, number>>;
  /** Samples one more container from now on (the benchmark's own, e.g. the synchronous peer's). */
  track(service: string, containerId: string): void;
  /** Stops sampling (may be called more than once) and returns the usage over the run. */
  stop(): Promise<Record<string, ServiceUsage>>;
}

/** Samples every service's container through the engine until stopped. */
export function sampleResources(intervalMs = 500): ResourceSampler {
  const tracked: { service: string; id: string }[] = SERVICES.map((service) => ({ service, id: containerId(service) }));
  const usage: Record<string, ServiceUsage> = {};
  // CPU time used since the start; a container restarted meanwhile (the drain measurement stops
  // the worker) starts its counter again from zero.
  const used = new Map<string, number>();
  const last = new Map<string, { cpuNs: number; at: number }>();
  const startedAt = performance.now();
  let samples = 0;

  const readOne = async (service: string, id: string, withRss: boolean): Promise<void> => {
    const entry = (usage[service] ??= { peakMemoryMiB: 0, peakCpuPercent: 0, averageCpuPercent: 0 });
    try {
      const stats = await containerStats(id);
      const now = performance.now();
      const previous = last.get(service);
      if (previous !== undefined && now > previous.at) {
        const delta = stats.cpuNs >= previous.cpuNs ? stats.cpuNs - previous.cpuNs : stats.cpuNs;
        used.set(service, (used.get(service) ?? 0) + delta);
        entry.peakCpuPercent = Math.max(entry.peakCpuPercent, Math.round((delta / 1e6 / (now - previous.at)) * 100));
      }
      last.set(service, { cpuNs: stats.cpuNs, at: now });
      entry.averageCpuPercent = Math.round(((used.get(service) ?? 0) / 1e6 / (now - startedAt)) * 100);
      entry.endMemoryMiB = Math.round(stats.anonBytes / MIB);
      entry.peakMemoryMiB = Math.max(entry.peakMemoryMiB, entry.endMemoryMiB);
      if (withRss && isNodeService(service)) {
        const rss = await nodeRssBytes(id);
        if (rss !== undefined) {
          entry.endRssMiB = Math.round(rss / MIB);
          entry.peakRssMiB = Math.max(entry.peakRssMiB ?? 0, entry.endRssMiB);
        }
      }
    } catch {
      // The container is stopped or being restarted (the drain measurement stops the worker), or gone.
    }
  };

  // One reading at a time: each CPU delta is taken against the reading before it.
  let reading = Promise.resolve();
  const read = (withRss = false): Promise<void> => {
    reading = reading.then(() => Promise.all(tracked.map(({ service, id }) => readOne(service, id, withRss))).then(() => undefined));
    return reading;
  };

  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      samples += 1;
      await read(samples % RSS_EVERY === 1);
      await sleep(intervalMs);
    }
  })();
  let stopped: Promise<Record<string, ServiceUsage>> | undefined;
  const stop = async () => {
    state.stopped = true;
    await loop;
    await read(true);
    return usage;
  };
  return {
    cpuSeconds: async () => {
      await read();
      return Object.fromEntries([...used].map(([service, ns]) => [service, round(ns / 1e9, 2)]));
    },
    track: (service, id) => {
      tracked.push({ service, id });
    },
    stop: () => (stopped ??= stop()),
  };
}
