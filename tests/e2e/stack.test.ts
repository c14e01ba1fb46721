/**
 * The real stack, end to end: images built from our Dockerfile, started by our
 * docker-compose.yml, reached only through nginx (INFLOW_URL) as a user would: the stack that
 * e2e/run.ts started.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import {
  acceptEntry,
  BASE_URL,
  composeEnv,
  containerId,
  containerInfo,
  docker,
  persistedEntries,
  REPO_ROOT,
  SERVICES,
  serviceLogLines,
  waitFor,
} from '@inflow/test-support';

t.test('every container reaches healthy', async (t) => {
  for (const service of SERVICES) {
    t.match(await containerInfo(service), { status: 'running', health: 'healthy' }, service);
  }
});

t.test('nginx balances across web1, web2 and web3', async (t) => {
  const counts = new Map<string, number>();
  for (let i = 0; i < 60; i += 1) {
    const response = await fetch(`${BASE_URL}/api/instance`);
    t.equal(response.status, 200);
    const { instanceId } = (await response.json()) as { instanceId: string };
    t.equal(response.headers.get('x-instance-id'), instanceId, 'header and body name the same instance');
    counts.set(instanceId, (counts.get(instanceId) ?? 0) + 1);
  }
  t.same([...counts.keys()].sort(), ['web1', 'web2', 'web3']);
  for (const [instance, count] of counts) t.ok(count >= 12, `${instance} answered ${count} of 60 (at least a fifth)`);
});

// The entries the test below accepts; the logs test looks for each of them in the worker's lines.
const acceptedIds: string[] = [];

t.test('entries POSTed through nginx are all persisted and readable', async (t) => {
  const accepted = await Promise.all(Array.from({ length: 30 }, (_, i) => acceptEntry(BASE_URL, 'e2e', `entry ${i}`)));
  acceptedIds.push(...accepted.map(({ id }) => id));
  t.same(new Set(accepted.map((entry) => entry.acceptedBy)), new Set(['web1', 'web2', 'web3']), 'all replicas accepted some');
  for (const { id } of accepted) {
    const entry = await waitFor(
      async () => {
        const response = await fetch(`${BASE_URL}/api/entries/${id}`);
        const body = (await response.json()) as { status: string };
        return body.status === 'persisted' ? body : undefined;
      },
      { timeoutMs: 30_000, what: `entry ${id} to be persisted` },
    );
    t.match(entry, { id, status: 'persisted', persistedBy: 'worker', author: 'e2e' });
  }
  const list = (await (await fetch(`${BASE_URL}/api/entries?limit=200`)).json()) as { entries: { id: string }[] };
  const listed = new Set(list.entries.map((entry) => entry.id));
  t.ok(accepted.every(({ id }) => listed.has(id)), 'every entry is in the newest-first list');
});

t.test('logs are JSON lines tagged with each instance, and nginx shows all three upstreams', async (t) => {
  for (const service of ['web1', 'web2', 'web3']) {
    const lines = serviceLogLines(service);
    t.ok(lines.length > 0, `${service} wrote JSON lines`);
    t.ok(lines.every((line) => line['instance'] === service), `every ${service} line carries instance=${service}`);
    t.ok(lines.some((line) => line['msg'] === 'GET /api/instance 200'), `${service} logged the requests it served`);
  }
  const persisted = new Set(serviceLogLines('worker').flatMap(persistedEntries).map((entry) => entry.id));
  t.ok(acceptedIds.length > 0 && acceptedIds.every((id) => persisted.has(id)), 'the worker logged every entry it persisted');
  const upstreams = new Set(serviceLogLines('nginx').map((line) => line['upstream']).filter((value) => value !== '' && value !== undefined));
  t.ok(upstreams.size >= 3, `nginx logged ${upstreams.size} distinct upstream addresses`);
});

t.test('nothing but nginx on its one port is published, and the data stores are off the edge network', async (t) => {
  const networksOf = async (service: string) => {
    const [info] = JSON.parse(await docker(['inspect', containerId(service)])) as [
      { NetworkSettings: { Ports: Record<string, { HostPort: string }[] | null>; Networks: Record<string, unknown> } },
    ];
    return info.NetworkSettings;
  };
  for (const service of SERVICES) {
    const published = Object.entries((await networksOf(service)).Ports)
      .filter(([, bindings]) => bindings !== null && bindings.length > 0)
      .flatMap(([port, bindings]) => (bindings ?? []).map((binding) => `${binding.HostPort}->${port}`));
    t.same([...new Set(published)], service === 'nginx' ? [`${new URL(BASE_URL).port}->80/tcp`] : [], `${service} publishes ${published.join(', ') || 'nothing'}`);
  }
  const nginxNetworks = Object.keys((await networksOf('nginx')).Networks);
  for (const service of ['postgres', 'redis']) {
    const shared = Object.keys((await networksOf(service)).Networks).filter((network) => nginxNetworks.includes(network));
    t.same(shared, [], `${service} shares no network with nginx`);
  }
});

t.test('deploy/verify-persistence.sh passes against the running stack', async (t) => {
  const result = spawnSync('bash', [join(REPO_ROOT, 'deploy/verify-persistence.sh')], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...composeEnv(), INFLOW_URL: BASE_URL },
    timeout: 15 * 60_000,
  });
  t.comment(result.stdout);
  if (result.status !== 0) t.comment(result.stderr);
  t.equal(result.status, 0, 'the script exits 0');
  t.match(result.stdout, /PASS/);
});
