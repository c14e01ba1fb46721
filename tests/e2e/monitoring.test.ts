/**
 * The `monitoring` profile, live: Prometheus (deploy/prometheus/) started on top of the stack
 * that e2e/run.ts started, reached through its loopback-only port (PROMETHEUS_PORT, 9090 by
 * default), and removed again afterwards with its volume. Every scrape target is up, the gauges
 * the alert rules read are there, and stopping the worker makes InflowWorkerNotReady pending
 * (then it clears once the worker is back). Every wait is bounded and polls.
 */
import t from 'tap';
import { compose, containerId, docker, PROJECT, SERVICES, waitFor, waitHealthy } from '@inflow/test-support';

const PROMETHEUS = `http://127.0.0.1:${process.env['PROMETHEUS_PORT'] ?? '9090'}`;
const PROFILE = ['--profile', 'monitoring'];

interface Target {
  labels: Record<string, string>;
  health: string;
  lastError: string;
}
interface Alert {
  labels: Record<string, string>;
  state: string;
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`${PROMETHEUS}${path}`);
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  const body = (await response.json()) as { status: string; data: T };
  if (body.status !== 'success') throw new Error(`GET ${path}: ${JSON.stringify(body)}`);
  return body.data;
}

const targets = () => api<{ activeTargets: Target[] }>('/api/v1/targets?state=active').then((data) => data.activeTargets);
const alerts = () => api<{ alerts: Alert[] }>('/api/v1/alerts').then((data) => data.alerts);
const query = (expr: string) =>
  api<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(`/api/v1/query?query=${encodeURIComponent(expr)}`).then((data) => data.result);

t.before(async () => {
  // Only Prometheus: the services it scrapes are running already, and compose leaves them be.
  await compose([...PROFILE, 'up', '-d', '--no-deps', 'prometheus']);
  await waitHealthy([...SERVICES, 'prometheus']);
});
t.teardown(async () => {
  await compose([...PROFILE, 'rm', '--stop', '--force', 'prometheus']);
  await docker(['volume', 'rm', `${PROJECT}_prometheus-data`]);
});

t.test('Prometheus is hardened like the other services and published on loopback only', async (t) => {
  const [info] = JSON.parse(await docker(['inspect', containerId('prometheus')])) as [
    {
      Config: { User: string };
      HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] | null; SecurityOpt: string[] | null; PortBindings: Record<string, { HostIp: string; HostPort: string }[] | null> };
      NetworkSettings: { Networks: Record<string, unknown> };
      Mounts: { Type: string; Destination: string; RW: boolean }[];
    },
  ];
  t.equal(info.HostConfig.ReadonlyRootfs, true, 'read-only root fs');
  t.same(info.HostConfig.CapDrop, ['ALL'], 'cap_drop ALL');
  t.ok((info.HostConfig.SecurityOpt ?? []).includes('no-new-privileges:true'), 'no-new-privileges');
  t.equal(info.Config.User, '65534:65534', 'runs as nobody');
  const bindings = Object.values(info.HostConfig.PortBindings).flatMap((list) => list ?? []);
  t.ok(bindings.length > 0 && bindings.every((binding) => binding.HostIp === '127.0.0.1'), `published on 127.0.0.1 only: ${JSON.stringify(bindings)}`);
  t.ok(info.Mounts.some((mount) => mount.Type === 'volume' && mount.Destination === '/prometheus' && mount.RW), 'data in a named volume');
  t.ok(Object.keys(info.NetworkSettings.Networks).some((name) => name.endsWith('_backend')), 'on the backend network');
});

t.test('Prometheus scrapes web1, web2, web3 and the worker: every target up', async (t) => {
  const seen = await waitFor(
    async () => {
      const active = await targets().catch(() => []);
      return active.length === 4 && active.every((target) => target.health === 'up') ? active : false;
    },
    { timeoutMs: 60_000, what: 'four targets up', intervalMs: 1_000 },
  );
  t.same(seen.map((target) => `${target.labels['job']}/${target.labels['instance']}`).sort(), ['api/web1', 'api/web2', 'api/web3', 'worker/worker']);
});

t.test('the gauges the alert rules read are scraped', async (t) => {
  const ready = await waitFor(async () => {
    const [api, worker, database, oldest] = await Promise.all([
      query('inflow_api_ready'),
      query('inflow_worker_ready'),
      query('inflow_worker_database_available'),
      query('inflow_queue_oldest_waiting_age_seconds'),
    ]);
    return api.length === 3 && worker.length === 1 && database.length === 1 && oldest.length === 3 ? { api, worker, database } : false;
  }, { timeoutMs: 30_000, what: 'the inflow gauges in Prometheus', intervalMs: 1_000 });
  t.same(ready.api.map((sample) => sample.value[1]), ['1', '1', '1'], 'every replica ready');
  t.equal(ready.worker[0]?.value[1], '1', 'the worker ready');
  t.equal(ready.database[0]?.value[1], '1', 'the database available to the worker');
  const rules = await api<{ groups: { rules: { name: string; health: string }[] }[] }>('/api/v1/rules');
  const loaded = rules.groups.flatMap((group) => group.rules);
  t.ok(loaded.length >= 8, `${loaded.length} rules loaded`);
  t.ok(loaded.every((rule) => rule.health !== 'err'), 'no rule fails to evaluate');
});

t.test('stopping the worker makes InflowWorkerNotReady pending; it clears when the worker is back', async (t) => {
  t.same((await alerts()).filter((alert) => alert.labels['alertname'] === 'InflowWorkerNotReady'), [], 'not active before');
  await compose(['stop', 'worker']);
  const alert = await waitFor(
    async () => (await alerts()).find((candidate) => candidate.labels['alertname'] === 'InflowWorkerNotReady'),
    { timeoutMs: 60_000, what: 'InflowWorkerNotReady in /api/v1/alerts', intervalMs: 1_000 },
  );
  t.equal(alert.state, 'pending', 'pending (its for: is 1m)');
  t.equal(alert.labels['instance'], 'worker');
  await compose(['start', 'worker']);
  await waitHealthy(['worker']);
  await waitFor(
    async () => !(await alerts()).some((candidate) => candidate.labels['alertname'] === 'InflowWorkerNotReady'),
    { timeoutMs: 60_000, what: 'InflowWorkerNotReady to clear', intervalMs: 1_000 },
  );
  t.pass('cleared once the worker is ready again');
});
