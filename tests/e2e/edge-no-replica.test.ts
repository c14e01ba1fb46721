/**
 * nginx's answer when no replica answers, in the API's error shape (bad_gateway, Retry-After: 1,
 * the edge's headers): every replica refusing the connection, and every replica taking it and
 * never answering, which nginx ends after proxy_read_timeout (30 s, server-limits.conf) as a 504
 * and answers as the catalogue's 502 (server-errors.conf).
 *
 * The real nginx with compose's configuration (nginx.conf and deploy/nginx/, mounted as
 * docker-compose.yml mounts them), on a labelled network of this test where web1, web2 and web3
 * name one container of the tools image: first nothing listens on 8080 in it, then a listener
 * that accepts and never reads or answers. Everything made here is removed, even on failure.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { docker, errorCode, firstHeader as one, ownerLabelArgs, rawRequest, REPO_ROOT, sweepOrphans, toolsImage, waitFor } from '@inflow/test-support';
import { edgeHeaderProblems, nginxImage, type Answer } from './edge.ts';

const RUN = `inflow-edge-no-replica-${randomUUID().slice(0, 8)}`;
const LABELS = [...ownerLabelArgs(), '--label', `org.inflow.test.run=${RUN}`];
const REPLICAS = `${RUN}-replicas`;
const NGINX = `${RUN}-nginx`;

/** Accepts every connection and holds it, never reading or writing: a replica that hangs. */
const HANG = [
  'import socket',
  'server = socket.socket()',
  'server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  "server.bind(('0.0.0.0', 8080))",
  'server.listen(64)',
  'held = []',
  'while True:',
  '    held.append(server.accept()[0])',
].join('\n');
const LISTENING = "import socket; socket.create_connection(('127.0.0.1', 8080), 1)";

async function removeAll(): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=org.inflow.test.run=${RUN}`])).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => undefined);
  await docker(['network', 'rm', RUN]).catch(() => undefined);
}

const file = (...parts: string[]) => join(REPO_ROOT, ...parts);

t.before(async () => {
  await sweepOrphans();
  await docker(['network', 'create', ...LABELS, RUN]);
  const aliases = ['web1', 'web2', 'web3'].flatMap((name) => ['--network-alias', name]);
  await docker(['run', '-d', '--name', REPLICAS, ...LABELS, '--network', RUN, ...aliases, await toolsImage(), 'sleep', 'infinity']);
  await docker([
    'run', '-d', '--name', NGINX, ...LABELS, '--network', RUN, '-p', '127.0.0.1::80',
    '-v', `${file('nginx.conf')}:/etc/nginx/nginx.conf:ro`,
    '-v', `${file('deploy', 'nginx', 'edge')}:/etc/nginx/edge:ro`,
    '-v', `${file('deploy', 'nginx', 'templates')}:/etc/nginx/templates:ro`,
    '-v', `${file('deploy', 'nginx', '15-inflow-edge.envsh')}:/docker-entrypoint.d/15-inflow-edge.envsh:ro`,
    await nginxImage(),
  ]);
});
t.teardown(removeAll);

/** The problems of `answer` as nginx's bad_gateway answer; none when it is one. */
function badGatewayProblems(answer: Answer): string[] {
  return [
    ...(answer.status === 502 ? [] : [`status ${answer.status}`]),
    ...(errorCode(answer) === 'bad_gateway' ? [] : [`not bad_gateway: ${answer.text.slice(0, 120)}`]),
    ...(one(answer, 'retry-after') === '1' ? [] : ['no Retry-After: 1']),
    ...edgeHeaderProblems(answer),
  ];
}

t.test('no replica answers: 502 bad_gateway in the error shape, whether refused or silent', async (t) => {
  const published = (await docker(['port', NGINX, '80/tcp'])).split('\n')[0]?.trim() ?? '';
  const base = `http://${published}`;
  await waitFor(async () => (await rawRequest(`${base}/nginx-health`).catch(() => undefined))?.status === 200, {
    timeoutMs: 60_000,
    what: 'nginx to answer /nginx-health',
    intervalMs: 500,
  });

  // Nothing listens: each replica refuses the connection.
  t.same(badGatewayProblems(await rawRequest(`${base}/api/instance`)), [], 'every replica refuses: 502 bad_gateway');

  // A listener that takes the connection and never answers.
  await docker(['exec', '-d', REPLICAS, 'python3', '-c', HANG]);
  await waitFor(() => docker(['exec', REPLICAS, 'python3', '-c', LISTENING]).then(() => true, () => false), {
    timeoutMs: 30_000,
    what: 'the hanging replica to listen',
    intervalMs: 200,
  });
  const started = Date.now();
  const silent = await rawRequest(`${base}/api/instance`, { timeoutMs: 120_000 });
  t.comment(`nginx gave up on the silent replica after ${((Date.now() - started) / 1000).toFixed(1)} s`);
  t.same(badGatewayProblems(silent), [], 'a replica that never answers: 502 bad_gateway (nginx timed out: 504, answered as the catalogue says)');
});
