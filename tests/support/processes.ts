/**
 * The real API and worker programs (their built dist/main.js), each a child process with its own
 * environment, captured JSON log lines and helpers to signal it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { freePort } from './ports.ts';
import type { Teardown } from './containers.ts';
import { REPO_ROOT } from './services.ts';
import { waitFor } from './wait.ts';

export type LogLine = Record<string, unknown> & { msg?: string; level?: string };

export interface AppProcess {
  readonly child: ChildProcess;
  /** The HTTP port: the API's, or the worker's health port. */
  readonly port: number;
  readonly url: string;
  /**
   * The internal ops server (/metrics, the detailed /readyz): the API's OPS_PORT, or the
   * worker's health port (its only server).
   */
  readonly opsUrl: string;
  /** Every stdout line parsed as JSON, in order. */
  readonly logs: LogLine[];
  /** Raw stdout and stderr text. */
  output(): string;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  /**
   * Resolves with the exit code (or signal name) once the process has exited and its output has
   * been read to the end: every line it wrote is in `logs`. (`exited` can come first: a child's
   * 'exit' may be seen before the last of its stdout.)
   */
  readonly closed: Promise<number | string>;
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  signal(signal: NodeJS.Signals): void;
  stop(): Promise<number | string>;
}

export const API_MAIN = join(REPO_ROOT, 'apps/api/dist/main.js');
export const WORKER_MAIN = join(REPO_ROOT, 'apps/worker/dist/main.js');

/**
 * The command that runs `main` on this Node without inheriting NODE_OPTIONS. Under tap, every
 * spawned process gets tap's process-tracking loader through NODE_OPTIONS; the programs under
 * test need none of it, and it costs start-up time on a small machine. `env` execs node, so the
 * child's pid is node's and signals reach it directly.
 */
export function nodeCommand(main: string): [string, string[]] {
  return ['env', ['-u', 'NODE_OPTIONS', process.execPath, main]];
}

/** Starts `main` with `env` (nothing inherited but PATH) and waits until /readyz answers 200. */
export async function startProcess(
  t: Teardown,
  main: string,
  env: Record<string, string>,
  options: { portVariable: 'PORT' | 'HEALTH_PORT'; opsPortVariable?: 'OPS_PORT'; waitReady?: boolean },
): Promise<AppProcess> {
  const port = await freePort();
  // A free ops port of its own unless the test chose one: two APIs on one host cannot share it.
  const ops = options.opsPortVariable === undefined ? {} : { [options.opsPortVariable]: env[options.opsPortVariable] ?? String(await freePort()) };
  const opsPort = options.opsPortVariable === undefined ? String(port) : (ops[options.opsPortVariable] ?? String(port));
  const [command, args] = nodeCommand(main);
  const child = spawn(command, args, {
    env: { PATH: process.env['PATH'] ?? '', LOG_LEVEL: 'debug', ...env, ...ops, [options.portVariable]: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const logs: LogLine[] = [];
  let text = '';
  let pending = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        logs.push({ msg: line, unparsed: true });
      }
    }
    for (const wake of waiters) wake();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    text += chunk.toString();
  });
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      process.removeListener('exit', killOnExit);
      resolve(code ?? signal ?? 'unknown');
    });
  });

  const closed = new Promise<number | string>((resolve) => {
    child.once('close', (code, signal) => {
      resolve(code ?? signal ?? 'unknown');
    });
  });

  const app: AppProcess = {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    opsUrl: `http://127.0.0.1:${opsPort}`,
    logs,
    output: () => text,
    exited,
    closed,
    waitForLog: (predicate, timeoutMs = 10_000) =>
      waitFor(() => logs.find(predicate), { timeoutMs, what: `a log line from ${main}`, intervalMs: 20 }),
    signal: (signal) => child.kill(signal),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });

  if (options.waitReady !== false) {
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`${main} exited early:\n${text}`);
        const response = await fetch(`${app.url}/readyz`).catch(() => undefined);
        return response?.status === 200;
      },
      { timeoutMs: 20_000, what: `${main} to be ready` },
    );
  }
  return app;
}

export const startApi = (t: Teardown, env: Record<string, string>, options: { waitReady?: boolean } = {}) =>
  startProcess(t, API_MAIN, env, { portVariable: 'PORT', opsPortVariable: 'OPS_PORT', ...options });

export const startWorker = (t: Teardown, env: Record<string, string>, options: { waitReady?: boolean } = {}) =>
  startProcess(t, WORKER_MAIN, env, { portVariable: 'HEALTH_PORT', ...options });
