/**
 * Floods of GET requests from this one address, for the rate-limit scenario (scenarios/10-…):
 * back to back, each until nginx has refused FLOOD_REFUSALS of them, every answer recorded with
 * the local port it came on (so the connections can be counted) and the 429's shape.
 */
import { Agent, request as httpRequest } from 'node:http';
import { BASE_URL } from '@inflow/test-support';

const FLOOD_REFUSALS = 50;
const FLOOD_MAX = 1_000;

interface Answer {
  status: number;
  localPort: number;
  retryAfter: string | undefined;
  instance: string | undefined;
  code: string | undefined;
}

function get(path: string, agent: Agent | false, headers: Record<string, string>): Promise<Answer> {
  const { hostname, port } = new URL(BASE_URL);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: hostname, port: Number(port), path, agent, headers }, (res) => {
      const localPort = res.socket.localPort ?? 0;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        let code: string | undefined;
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { error?: { code?: unknown; message?: unknown } };
          if (typeof body.error?.code === 'string' && typeof body.error.message === 'string') code = body.error.code;
        } catch {
          code = undefined;
        }
        const instance = res.headers['x-instance-id'];
        resolve({
          status: res.statusCode ?? 0,
          localPort,
          retryAfter: res.headers['retry-after'],
          instance: Array.isArray(instance) ? instance.join(',') : instance,
          code,
        });
      });
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error('no answer in 20 s')));
    req.on('error', reject);
    req.end();
  });
}

export type FloodMode = 'one keep-alive connection' | 'a new connection per request' | 'a new connection and a forged X-Forwarded-For per request';

export interface Flood {
  mode: FloodMode;
  requests: number;
  served: number;
  refused: number;
  other: number;
  connections: number;
  elapsedMs: number;
  /** 429s without the error shape, Retry-After: 1 or X-Instance-Id: nginx. */
  malformed: number;
}

/** Requests GET /api/instance back to back until FLOOD_REFUSALS were refused (at most FLOOD_MAX). */
export async function flood(mode: FloodMode): Promise<Flood> {
  const agent = mode === 'one keep-alive connection' ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
  const answers: Answer[] = [];
  // From before the first request is sent to after the last answer came: at least the time
  // nginx saw the flood for, so the bound below is never too tight.
  const startedAt = performance.now();
  try {
    let refused = 0;
    for (let i = 0; i < FLOOD_MAX && refused < FLOOD_REFUSALS; i += 1) {
      const headers: Record<string, string> = agent === false ? { connection: 'close' } : {};
      if (mode === 'a new connection and a forged X-Forwarded-For per request') headers['x-forwarded-for'] = `203.0.113.${(i % 254) + 1}`;
      const answer = await get('/api/instance', agent, headers);
      answers.push(answer);
      if (answer.status === 429) refused += 1;
    }
  } finally {
    if (agent !== false) agent.destroy();
  }
  const elapsedMs = performance.now() - startedAt;
  const refused = answers.filter((answer) => answer.status === 429);
  return {
    mode,
    requests: answers.length,
    served: answers.filter((answer) => answer.status === 200).length,
    refused: refused.length,
    other: answers.filter((answer) => answer.status !== 200 && answer.status !== 429).length,
    connections: new Set(answers.map((answer) => answer.localPort)).size,
    elapsedMs,
    malformed: refused.filter((answer) => answer.code !== 'rate_limited' || answer.retryAfter !== '1' || answer.instance !== 'nginx').length,
  };
}
