import pino, { type Logger } from 'pino';
import type { LogLevel } from './config.ts';

export type { Logger } from 'pino';

export interface LoggerOptions {
  /** Which program writes: "api" or "worker". */
  service: string;
  /** Which replica writes; on every line, so interleaved logs can be told apart. */
  instanceId: string;
  level: LogLevel;
  /**
   * Write through pino's asynchronous destination (the default). Tests that read stdout line
   * by line right after an event can ask for synchronous writes.
   */
  sync?: boolean;
}

/**
 * The one logger factory. Lines are JSON on stdout with an ISO time, the level as a word and the
 * instance id; modules take children (`logger.child({ module: 'queue' })`).
 * For a human view, pipe the output through `npx pino-pretty`.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service, instance: options.instanceId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    pino.destination({ dest: 1, sync: options.sync ?? false }),
  );
}
