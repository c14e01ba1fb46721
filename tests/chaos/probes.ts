/**
 * What the chaos scenarios read from the stack besides the queue counts and rows of the kit:
 * the public and the internal /readyz, and Redis itself (memory, BullMQ's active list).
 */
import { BASE_URL, docker, idOf, waitFor } from '@inflow/test-support';

/** The public GET /readyz through nginx; status 0 and the error's text when nothing answered. */
export async function readyz(): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`${BASE_URL}/readyz`, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  } catch (error) {
    return { status: 0, text: String(error) };
  }
}

/** Waits until the public /readyz answers 200 (after an outage of a dependency). */
export async function waitPublicReady(): Promise<void> {
  await waitFor(async () => (await readyz()).status === 200, { timeoutMs: 60_000, what: '/readyz to answer 200 again', intervalMs: 250 });
}

/**
 * A service's detailed /readyz body, read inside its container: the ops port (8081 for the API
 * replicas and the worker) is internal, never published nor proxied by nginx.
 */
export async function opsReadyz(service: string): Promise<string> {
  const script = 'exec 3<>/dev/tcp/127.0.0.1/8081; printf "GET /readyz HTTP/1.0\\r\\n\\r\\n" >&3; cat <&3';
  return docker(['exec', idOf(service), 'bash', '-c', script]).catch((error: unknown) => String(error));
}

/** Runs redis-cli in the redis container; its output, trimmed. */
export async function redisCli(...args: string[]): Promise<string> {
  return (await docker(['exec', idOf('redis'), 'redis-cli', ...args])).trim();
}

export async function redisMemory(): Promise<{ used: number; max: number }> {
  const info = await redisCli('INFO', 'memory');
  const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
  return { used: field('used_memory'), max: field('maxmemory') };
}

/** The ids in BullMQ's active list, read straight from Redis. */
export async function activeJobIds(): Promise<string[]> {
  const output = await redisCli('LRANGE', 'bull:entries:active', '0', '-1');
  return output === '' ? [] : output.split('\n');
}
