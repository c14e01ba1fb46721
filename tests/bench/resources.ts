/**
 * What each container of the stack uses while the benchmark runs, read from the kernel on the
 * Docker host (the benchmark runs there, as root, like the chaos suite) rather than through
 * `docker stats`, whose every sample costs the engine a second of CPU on a 2-core machine:
 * - CPU: the container's cgroup CPU time, as a share of one core between samples, and on average;
 * - memory: the cgroup's anonymous memory (its processes' RSS without the page cache), which the
 *   targets are about, and for the node services the node process's own resident set size.
 * cgroup v1 (Docker's cgroupfs driver) and v2 (the systemd driver) are both understood.
 */
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { containerId, SERVICES } from '@inflow/test-support';
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

interface CgroupFiles {
  procs: string;
  /** Returns CPU time used so far, in nanoseconds. */
  cpuNs: () => number;
  /** Returns anonymous memory in bytes. */
  anonBytes: () => number;
}

const statField = (file: string, field: string): number => {
  const match = new RegExp(`^${field} (\\d+)$`, 'm').exec(readFileSync(file, 'utf8'));
  return Number(match?.[1] ?? 0);
};

function cgroupOf(id: string): CgroupFiles | undefined {
  const v1 = `/sys/fs/cgroup/cpuacct/docker/${id}`;
  if (existsSync(v1)) {
    const memory = `/sys/fs/cgroup/memory/docker/${id}`;
    return {
      procs: `${memory}/cgroup.procs`,
      cpuNs: () => Number(readFileSync(`${v1}/cpuacct.usage`, 'utf8')),
      anonBytes: () => statField(`${memory}/memory.stat`, 'total_rss'),
    };
  }
  for (const v2 of [`/sys/fs/cgroup/system.slice/docker-${id}.scope`, `/sys/fs/cgroup/docker/${id}`]) {
    if (existsSync(`${v2}/cpu.stat`)) {
      return {
        procs: `${v2}/cgroup.procs`,
        cpuNs: () => statField(`${v2}/cpu.stat`, 'usage_usec') * 1000,
        anonBytes: () => statField(`${v2}/memory.stat`, 'anon'),
      };
    }
  }
  return undefined;
}

/** RSS of the service's node process (not docker-init, not a health probe), bytes. */
function nodeRssBytes(cgroup: CgroupFiles): number | undefined {
  for (const pid of readFileSync(cgroup.procs, 'utf8').split('\n').filter(Boolean)) {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (!command[0]?.endsWith('node') || command.some((part) => part.includes('healthcheck'))) continue;
      return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
    } catch {
      // The process ended between the listing and the read (a health probe).
    }
  }
  return undefined;
}

/** CPU seconds the whole machine has been busy since boot (/proc/stat: every state but idle and iowait). */
export function machineCpuSeconds(): number {
  const fields = (/^cpu\s+(.*)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? '').split(/\s+/).map(Number);
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
  // /proc/stat counts in USER_HZ, 100 per second on Linux.
  return (user + nice + system + irq + softirq + steal) / 100;
}

export interface ResourceSampler {
  /** CPU seconds each service has used since sampling began, read now. */
  cpuSeconds(): Record<string, number>;
  /** Samples one more container from now on (the benchmark's own, e.g. the synchronous peer's). */
  track(service: string, containerId: string): void;
  /** Stops sampling (may be called more than once) and returns the usage over the run. */
  stop(): Promise<Record<string, ServiceUsage>>;
}

/** Samples every service's cgroup until stopped. */
export function sampleResources(intervalMs = 500): ResourceSampler {
  const tracked: { service: string; cgroup: CgroupFiles | undefined }[] = SERVICES.map((service) => ({ service, cgroup: cgroupOf(containerId(service)) }));
  const usage: Record<string, ServiceUsage> = {};
  // CPU time used since the start; a container restarted meanwhile (the drain measurement stops
  // the worker) starts its counter again from zero.
  const used = new Map<string, number>();
  const last = new Map<string, { cpuNs: number; at: number }>();
  const startedAt = performance.now();

  const read = (): void => {
    const now = performance.now();
    for (const { service, cgroup } of tracked) {
      if (cgroup === undefined) continue;
      const entry = (usage[service] ??= { peakMemoryMiB: 0, peakCpuPercent: 0, averageCpuPercent: 0 });
      try {
        const cpuNs = cgroup.cpuNs();
        const previous = last.get(service);
        if (previous !== undefined && now > previous.at) {
          const delta = cpuNs >= previous.cpuNs ? cpuNs - previous.cpuNs : cpuNs;
          used.set(service, (used.get(service) ?? 0) + delta);
          entry.peakCpuPercent = Math.max(entry.peakCpuPercent, Math.round((delta / 1e6 / (now - previous.at)) * 100));
        }
        last.set(service, { cpuNs, at: now });
        entry.averageCpuPercent = Math.round(((used.get(service) ?? 0) / 1e6 / (now - startedAt)) * 100);
        entry.endMemoryMiB = Math.round(cgroup.anonBytes() / MIB);
        entry.peakMemoryMiB = Math.max(entry.peakMemoryMiB, entry.endMemoryMiB);
        if (isNodeService(service)) {
          const rss = nodeRssBytes(cgroup);
          if (rss !== undefined) {
            entry.endRssMiB = Math.round(rss / MIB);
            entry.peakRssMiB = Math.max(entry.peakRssMiB ?? 0, entry.endRssMiB);
          }
        }
      } catch {
        // The container is being restarted (the drain measurement stops the worker).
      }
    }
  };

  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      read();
      await sleep(intervalMs);
    }
  })();
  let stopped: Promise<Record<string, ServiceUsage>> | undefined;
  const stop = async () => {
    state.stopped = true;
    await loop;
    read();
    return usage;
  };
  return {
    cpuSeconds: () => {
      read();
      return Object.fromEntries([...used].map(([service, ns]) => [service, round(ns / 1e9, 2)]));
    },
    track: (service, id) => {
      tracked.push({ service, cgroup: cgroupOf(id) });
    },
    stop: () => (stopped ??= stop()),
  };
}
