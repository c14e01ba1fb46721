/**
 * The edge on every platform: the real nginx (NGINX_IMAGE, the compose stack's nginx image) with
 * Swarm's and with Kubernetes' configuration (both rendered from nginx.conf and deploy/nginx/edge/
 * by deploy/nginx/render.ts), in front of the compose stack's API replicas, answers the same edge
 * cases (edge-cases.ts) as compose's nginx does in edge-paths.test.ts.
 *
 * The replicas join a labelled network of this test under the names each configuration looks
 * for: `tasks.web` (Swarm: resolved at run time through Docker's DNS, as in a stack) and
 * `inflow-api` (Kubernetes: the api Service's name, resolved at start; here to the three
 * replicas instead of one cluster IP). Each nginx runs as its platform runs it: Swarm's with the
 * image's entrypoint hooks (the templates, deploy/swarm/40-inflow-swarm-upstream.sh), Kubernetes'
 * as the Deployment runs it (`nginx -c` on the ConfigMap's file, uid 101, read-only root, /tmp).
 * The full Swarm stack on nodes is tests/swarm. Everything made here is removed, even on failure.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import t from 'tap';
import { containerId, docker, ownerLabelArgs, rawRequest, REPO_ROOT, sweepOrphans, waitFor } from '@inflow/test-support';
import { EDGE_CASES } from './edge-cases.ts';
import { nginxImage } from './edge.ts';

const RUN = `inflow-edge-platforms-${randomUUID().slice(0, 8)}`;
// The owner too: a run killed before its teardown is swept by the next (containers.ts).
const LABELS = [...ownerLabelArgs(), '--label', `org.inflow.test.run=${RUN}`];
const REPLICAS = ['web1', 'web2', 'web3'];

interface Platform {
  name: string;
  port: number;
  args: (image: string) => string[];
}

const file = (...parts: string[]) => join(REPO_ROOT, ...parts);

const PLATFORMS: Platform[] = [
  {
    name: 'swarm',
    port: 80,
    args: (image) => [
      '-v', `${file('deploy', 'swarm', 'nginx.conf')}:/etc/nginx/nginx.conf:ro`,
      '-v', `${file('deploy', 'nginx', 'templates')}:/etc/nginx/templates:ro`,
      '-v', `${file('deploy', 'nginx', '15-inflow-edge.envsh')}:/docker-entrypoint.d/15-inflow-edge.envsh:ro`,
      '-v', `${file('deploy', 'swarm', '40-inflow-swarm-upstream.sh')}:/docker-entrypoint.d/40-inflow-swarm-upstream.sh:ro`,
      image,
    ],
  },
  {
    name: 'k8s',
    port: 8080,
    // deploy/k8s/base/edge.yaml: uid 101, read-only root filesystem, /tmp an emptyDir, `nginx -c`.
    args: (image) => [
      '--user', '101:101', '--read-only', '--tmpfs', '/tmp', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges:true',
      '-v', `${file('deploy', 'k8s', 'base', 'nginx.conf')}:/etc/nginx/inflow/nginx.conf:ro`,
      image, 'nginx', '-c', '/etc/nginx/inflow/nginx.conf',
    ],
  },
];

async function removeAll(): Promise<void> {
  const ids = (await docker(['ps', '-aq', '--filter', `label=org.inflow.test.run=${RUN}`])).split('\n').filter(Boolean);
  if (ids.length > 0) await docker(['rm', '-f', ...ids]).catch(() => undefined);
  for (const replica of REPLICAS) await docker(['network', 'disconnect', '-f', RUN, containerId(replica)]).catch(() => undefined);
  await docker(['network', 'rm', RUN]).catch(() => undefined);
}

t.before(async () => {
  await sweepOrphans();
  await docker(['network', 'create', ...LABELS, RUN]);
  for (const replica of REPLICAS) {
    await docker(['network', 'connect', '--alias', 'tasks.web', '--alias', 'inflow-api', RUN, containerId(replica)]);
  }
});
t.teardown(removeAll);

const image = await nginxImage();
for (const platform of PLATFORMS) {
  t.test(`${platform.name}: nginx with its rendered configuration answers the edge cases as compose's does`, async (t) => {
    const name = `${RUN}-${platform.name}`;
    await docker(['run', '-d', '--name', name, ...LABELS, '--network', RUN, '-p', `127.0.0.1::${platform.port}`, ...platform.args(image)]);
    const published = (await docker(['port', name, `${platform.port}/tcp`])).split('\n')[0]?.trim() ?? '';
    const base = `http://${published}`;
    await waitFor(async () => (await rawRequest(`${base}/api/instance`).catch(() => undefined))?.status === 200, {
      timeoutMs: 60_000,
      what: `${platform.name}'s nginx to proxy /api/instance`,
      intervalMs: 500,
    });
    // Every replica is reached, not just one (the names resolve to all three).
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const id = (await rawRequest(`${base}/api/instance`)).headerValues.get('x-instance-id')?.[0];
        if (id !== undefined && id !== '') seen.add(id);
        return seen.size >= REPLICAS.length;
      },
      { timeoutMs: 30_000, what: `${platform.name}: answers from all three replicas`, intervalMs: 50 },
    );
    t.pass(`answered by ${[...seen].sort().join(', ')}`);
    for (const [caseName, check] of Object.entries(EDGE_CASES)) t.same(await check(base), [], caseName);
  });
}
