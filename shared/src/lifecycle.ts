import { ConfigError } from './config.ts';
import type { Logger } from './logger.ts';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

export interface Shutdown {
  /** Runs the steps once, in order; later calls return the same promise. */
  (reason: string): Promise<void>;
  readonly started: boolean;
}

/**
 * An ordered, idempotent shutdown. Every step runs even when an earlier one failed (a dead Redis
 * must not keep the pool open), and the whole sequence has a deadline, after which the process
 * exits anyway: Compose sends SIGKILL 10 s after SIGTERM.
 */
export function createShutdown(
  steps: readonly ShutdownStep[],
  options: { logger: Logger; timeoutMs: number; exit?: (code: number) => void },
): Shutdown {
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let closing: Promise<void> | undefined;

  const shutdown = (reason: string): Promise<void> => {
    closing ??= (async () => {
      const { logger } = options;
      logger.info({ reason }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ timeoutMs: options.timeoutMs }, 'shutdown deadline passed, exiting now');
        logger.flush();
        exit(1);
      }, options.timeoutMs);
      deadline.unref();

      let failed = false;
      for (const step of steps) {
        const startedAt = performance.now();
        try {
          await step.run();
          logger.debug({ step: step.name, ms: Math.round(performance.now() - startedAt) }, 'shutdown step done');
        } catch (error) {
          failed = true;
          logger.error({ err: error, step: step.name }, 'shutdown step failed');
        }
      }
      logger.info({ clean: !failed }, 'shutdown complete');
      // Asynchronous writes may still be queued: exit only once they are out, so the last lines
      // are neither lost nor reordered (flush() alone returned while a write was in progress).
      // If stdout never drains, the deadline above still ends the process.
      await new Promise<void>((resolve) => {
        logger.flush(() => {
          resolve();
        });
      });
      clearTimeout(deadline);
      exit(failed ? 1 : 0);
    })();
    return closing;
  };

  return Object.defineProperty(shutdown, 'started', { get: () => closing !== undefined }) as Shutdown;
}

/** Calls `shutdown` on SIGTERM and SIGINT; a second signal while closing is logged and ignored. */
export function handleShutdownSignals(shutdown: Shutdown, logger: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      if (shutdown.started) {
        logger.warn({ signal }, 'already shutting down');
        return;
      }
      void shutdown(signal);
    });
  }
}

/**
 * Reads the configuration or stops the process with one JSON line that names the bad variable:
 * no stack trace, since the fix is in the environment, not in the code.
 */
export function loadConfigOrExit<T>(load: () => T, service: string): T {
  try {
    return load();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(
      `${JSON.stringify({ level: 'fatal', time: new Date().toISOString(), service, variable: error.variable, msg: `invalid configuration: ${error.message}` })}\n`,
    );
    process.exit(78); // EX_CONFIG from sysexits.h
  }
}
