/**
 * A logger whose lines a test can read: pino, configured as createLogger's is not (no stdout,
 * every level), writing each JSON line into an array.
 */
import { Writable } from 'node:stream';
import type { Logger } from '@inflow/shared';
import { pino } from 'pino';

export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A logger writing parsed JSON lines into `logs`. */
export function captureLogger(logs: LogLine[]): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  return pino({ level: 'debug' }, sink);
}
