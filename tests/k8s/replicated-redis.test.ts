/**
 * The replicated Redis overlay (deploy/k8s/components/replicated-redis): what only a static check
 * can see without a cluster. Scheduling rules (two servers and three sentinels, each on its own
 * node), the names every part knows the others by (they must agree: a pod's address changes, its
 * name in the headless Service does not), the quorum against the number of sentinels, the API's
 * replica acknowledgement against the replicas there are, and the entry scripts against the
 * repository's. The servers' durability flags and the flows are checked with every target
 * (policy-topology.test.ts).
 */
import { join } from 'node:path';
import t from 'tap';
import { K8S_DIR, render } from './lib/kustomize.ts';
import { appOf, API_IMAGE, WORKER_IMAGE } from './lib/context.ts';
import { containerEnv } from './lib/env.ts';
import { named, ofKind, selects, workloads, type IStatefulSet, type Workload } from './lib/objects.ts';
import { repoFile } from './lib/repo.ts';

const objects = render(join(K8S_DIR, 'overlays', 'replicated-redis'));
const byComponent = (component: string): Workload => {
  const found = workloads(objects).filter((workload) => workload.labels['app.kubernetes.io/component'] === component);
  if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one workload of component ${component}, found ${found.length}`);
  return found[0];
};
const redis = byComponent('redis');
const sentinel = byComponent('redis-sentinel');
const serviceOf = (workload: Workload): string => (workload.object as IStatefulSet).spec?.serviceName ?? '';
const envOf = (workload: Workload) => {
  const container = workload.template.spec?.containers[0];
  if (container === undefined) throw new Error(`${workload.name}: no container`);
  return containerEnv(container, objects, `${workload.name}-0`);
};
const api = appOf(objects, API_IMAGE);
const worker = appOf(objects, WORKER_IMAGE);

/** Whether a workload's pods must each be on a node of their own (required anti-affinity by hostname on its own pods). */
function onePerNode(workload: Workload): boolean {
  const terms = workload.template.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? [];
  return terms.some((term) => term.topologyKey === 'kubernetes.io/hostname' && selects(term.labelSelector, workload.labels));
}

t.test('two Redis servers and three sentinels, each on a node of its own (required anti-affinity)', async (t) => {
  t.same([redis.kind, redis.replicas], ['StatefulSet', 2], 'Redis: a StatefulSet of 2 (primary and replica)');
  t.ok(onePerNode(redis), 'Redis: required anti-affinity by hostname from its own pods: primary and replica never share a node');
  t.same([sentinel.kind, sentinel.replicas], ['StatefulSet', 3], 'sentinels: a StatefulSet of 3');
  t.ok(onePerNode(sentinel), 'sentinels: one per node, so losing a node loses one sentinel');
  const quorum = Number(envOf(sentinel).get('SENTINEL_QUORUM')?.value);
  const sentinels = sentinel.replicas ?? 0;
  t.ok(quorum > sentinels / 2 && quorum < sentinels, `quorum ${quorum} of ${sentinels}: a majority, reachable with one sentinel lost`);
});

t.test('every part knows the others by their stable names in the headless Services', async (t) => {
  const redisService = serviceOf(redis);
  const sentinelService = serviceOf(sentinel);
  for (const name of [redisService, sentinelService]) {
    const service = named(objects, 'Service', name);
    t.equal(service.spec?.clusterIP, 'None', `${name}: headless`);
    t.equal(service.spec?.publishNotReadyAddresses, true, `${name}: a pod is named in DNS before it is ready (a replica still syncing, a sentinel waiting)`);
  }
  const redisEnv = envOf(redis);
  const sentinelEnv = envOf(sentinel);
  t.equal(redisEnv.get('POD_NAME')?.from, 'field', 'Redis: POD_NAME from the downward API');
  t.equal(redisEnv.get('REDIS_ANNOUNCE_HOSTNAME')?.value, `$(POD_NAME).${redisService}`, `Redis: announces <pod>.${redisService}`);
  t.equal(redisEnv.get('REDIS_PRIMARY_HOST')?.value, `${redis.name}-0.${redisService}`, `Redis: ${redis.name}-0 is the first primary`);
  t.equal(sentinelEnv.get('SENTINEL_MASTER_HOST')?.value, redisEnv.get('REDIS_PRIMARY_HOST')?.value, 'the sentinels monitor that first primary');
  t.equal(sentinelEnv.get('SENTINEL_ANNOUNCE_HOSTNAME')?.value, `$(POD_NAME).${sentinelService}`, `sentinels: announce <pod>.${sentinelService}`);
  t.same(sentinelEnv.get('SENTINEL_MASTER_NAME')?.ref, api.env.get('REDIS_SENTINEL_MASTER')?.ref, "the sentinels' master name is the apps' REDIS_SENTINEL_MASTER (one ConfigMap key)");
  for (const [name, env] of [['Redis', redisEnv], ['worker', worker.env]] as const) {
    t.equal(env.get('REDIS_SENTINELS')?.value, api.env.get('REDIS_SENTINELS')?.value, `${name}: the same sentinels as the API`);
  }
  const listed = (api.env.get('REDIS_SENTINELS')?.value ?? '').split(',').map((entry) => entry.split(':')[0]).sort();
  const pods = Array.from({ length: sentinel.replicas ?? 0 }, (_, i) => `${sentinel.name}-${i}.${sentinelService}`);
  t.same(listed, pods, 'REDIS_SENTINELS names every sentinel pod, each once');
  t.notOk(api.env.has('REDIS_HOST') || worker.env.has('REDIS_HOST'), 'no REDIS_HOST: the apps follow the sentinels only');
});

t.test("the API's 202 waits for a replica that exists", async (t) => {
  const acks = Number(api.env.get('REDIS_REPLICA_ACKS')?.value);
  t.ok(acks >= 1 && acks <= (redis.replicas ?? 1) - 1, `REDIS_REPLICA_ACKS ${acks}: at least one, at most the replicas there are (${(redis.replicas ?? 1) - 1})`);
  t.notOk(worker.env.has('REDIS_REPLICA_ACKS'), 'the worker does not read it');
});

// That those files are deploy/redis/*.sh rendered (npm run render): edge-source.test.ts.
t.test('the servers and sentinels run the rendered entry scripts', async (t) => {
  const scripts = ofKind(objects, 'ConfigMap').filter((map) => map.metadata.name.startsWith('inflow-redis-scripts'));
  t.equal(scripts.length, 1, 'one ConfigMap of scripts');
  t.equal(scripts[0]?.data?.['redis.sh'], repoFile('deploy/k8s/components/replicated-redis/redis.sh'), 'redis.sh');
  t.equal(scripts[0]?.data?.['sentinel.sh'], repoFile('deploy/k8s/components/replicated-redis/sentinel.sh'), 'sentinel.sh');
  for (const [workload, script] of [[redis, 'redis.sh'], [sentinel, 'sentinel.sh']] as const) {
    const container = workload.template.spec?.containers[0];
    const mount = container?.volumeMounts?.find((candidate) => candidate.name === 'scripts');
    t.same(container?.command, ['sh', `${mount?.mountPath ?? '?'}/${script}`], `${workload.name}: runs ${script} from that ConfigMap`);
    t.equal(workload.template.spec?.volumes?.find((volume) => volume.name === 'scripts')?.configMap?.name, scripts[0]?.metadata.name, `${workload.name}: mounts it`);
  }
});
