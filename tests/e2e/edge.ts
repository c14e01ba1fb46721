/**
 * What the edge tests share: requests to nginx with the path exactly as written, the headers of
 * every answer nginx makes itself, event streams held open, and nginx's rendered configuration.
 */
import { request as httpRequest, type ClientRequest } from 'node:http';
import { BASE_URL, compose, containerId, docker, forgetContainers, headerValuesOf, rawRequest, waitFor, waitHealthy, type RawResult } from '@inflow/test-support';

export const { hostname: HOST, port: PORT_TEXT } = new URL(BASE_URL);
export const PORT = Number(PORT_TEXT);

export type Answer = Pick<RawResult, 'status' | 'headerValues' | 'text'>;

/** One request to nginx, `path` sent exactly as written, on a connection of its own unless an agent is given. */
export const send = (path: string, options: Parameters<typeof rawRequest>[1] = {}): Promise<RawResult> => rawRequest(`${BASE_URL}${path}`, options);

export { edgeHeaderProblems } from './edge-cases.ts';

/** An open GET /api/events: its status, and close() for a 200 that is still streaming. */
export interface Stream {
  status: number;
  answer?: Answer;
  close: () => void;
}

export function openStream(headers: Record<string, string> = {}): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const req: ClientRequest = httpRequest({ host: HOST, port: PORT, path: '/api/events', agent: false, headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const close = () => req.destroy();
      if (res.statusCode === 200) {
        res.resume();
        res.on('error', () => undefined);
        resolve({ status: 200, close });
        return;
      }
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, answer: { status: res.statusCode ?? 0, headerValues: headerValuesOf(res.rawHeaders), text: Buffer.concat(chunks).toString('utf8') }, close });
      });
    });
    req.setTimeout(30_000, () => req.destroy(new Error('no answer to GET /api/events in 30 s')));
    req.on('error', reject);
    req.end();
  });
}

export const nginxImage = async (): Promise<string> => (JSON.parse(await docker(['inspect', containerId('nginx')])) as [{ Config: { Image: string } }])[0].Config.Image;

export const renderedConf = (): Promise<string> =>
  docker(['exec', containerId('nginx'), 'sh', '-c', 'cat /etc/nginx/conf.d/inflow-edge-http.conf /etc/nginx/conf.d/inflow-edge-server.conf']);

/** Recreates the stack's nginx with these variables on top of this process's environment, and waits until it serves. */
export async function recreateNginx(variables: Record<string, string>): Promise<void> {
  await compose(['up', '-d', '--no-deps', 'nginx'], { env: { ...process.env, ...variables } });
  // A new container: the cached id of the old one names nothing now.
  forgetContainers();
  await waitHealthy(['nginx'], 120_000);
  await waitFor(async () => (await send('/api/instance').catch(() => undefined))?.status === 200, {
    timeoutMs: 120_000,
    what: 'the recreated nginx to proxy /api/instance',
    intervalMs: 500,
  });
}
