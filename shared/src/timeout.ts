/**
 * What withTimeout rejects with: a type, so that callers tell a deadline from the dependency's
 * own errors without reading the message (describeCheckFailure, classifyDatabaseError).
 */
export class TimeoutError extends Error {
  readonly ms: number;

  constructor(what: string, ms: number) {
    super(`${what} within ${ms} ms`);
    this.name = 'TimeoutError';
    this.ms = ms;
  }
}

/** Rejects with a TimeoutError when `promise` has not settled after `ms`; the timer never outlives it. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new TimeoutError(message, ms));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
