/**
 * The Docker engine's HTTP API, asked directly (node:http) for what the benchmark measures of
 * its containers: their CPU time and memory (GET /containers/{id}/stats, one-shot: the engine's
 * own reading of the container's cgroup, without the CLI's two-sample wait) and their processes
 * (GET /containers/{id}/top). The engine is the one the docker CLI talks to: its current
 * context's endpoint (DOCKER_HOST or the context's), a unix socket or plain tcp.
 * https://docs.docker.com/reference/api/engine/version/v1.41/#tag/Container/operation/ContainerStats
 */
import { execFileSync } from 'node:child_process';
import { request, type RequestOptions } from 'node:http';

let endpoint: RequestOptions | undefined;

function engineEndpoint(): RequestOptions {
  if (endpoint !== undefined) return endpoint;
  const host = execFileSync('docker', ['context', 'inspect', '--format', '{{.Endpoints.docker.Host}}'], { encoding: 'utf8' }).trim();
  if (host.startsWith('unix://')) endpoint = { socketPath: host.slice('unix://'.length) };
  else if (host.startsWith('tcp://')) {
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    endpoint = { host: url.hostname, port: Number(url.port || 2375) };
  } else throw new Error(`the benchmark reads the Docker engine's API over a unix socket or plain tcp; the docker context's endpoint is ${host}`);
  return endpoint;
}

/** GET `path` of the engine's API; its JSON answer. */
export function engineGet<T>(path: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = request({ ...engineEndpoint(), path, method: 'GET', timeout: 30_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => {
        if (response.statusCode !== 200) {
          reject(new Error(`GET ${path}: ${response.statusCode} ${body.slice(0, 300)}`));
          return;
        }
        try {
          resolve(JSON.parse(body) as T);
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: no answer in 30 s`)));
    req.on('error', reject);
    req.end();
  });
}

export interface ContainerStats {
  /** CPU time the container has used since it started, ns. */
  cpuNs: number;
  /**
   * Its anonymous memory (its processes' memory without the page cache), bytes: cgroup v1's
   * total_rss, v2's anon, as the engine reports its cgroup's memory.stat.
   */
  anonBytes: number;
}

interface StatsAnswer {
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
  memory_stats?: { stats?: Record<string, number> };
}

/** One reading of a running container's cgroup by the engine. */
export async function containerStats(id: string): Promise<ContainerStats> {
  const stats = await engineGet<StatsAnswer>(`/containers/${id}/stats?stream=false&one-shot=true`);
  const memory = stats.memory_stats?.stats ?? {};
  const cpuNs = stats.cpu_stats?.cpu_usage?.total_usage;
  if (cpuNs === undefined) throw new Error(`container ${id} is not running`);
  return { cpuNs, anonBytes: memory['total_rss'] ?? memory['anon'] ?? 0 };
}

/** The processes of a running container as the engine's `ps` sees them: RSS (KiB) and command line. */
export async function containerProcesses(id: string): Promise<{ rssKiB: number; args: string }[]> {
  // The engine needs the pid column to tell the container's processes apart.
  const top = await engineGet<{ Processes: string[][] }>(`/containers/${id}/top?ps_args=${encodeURIComponent('-o pid,rss,args')}`);
  return top.Processes.map(([, rss = '0', ...args]) => ({ rssKiB: Number(rss), args: args.join(' ') }));
}
