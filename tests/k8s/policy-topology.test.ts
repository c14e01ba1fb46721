/**
 * How the rendered objects fit together, per target (the base and each overlay): selectors and
 * ports across Deployments, StatefulSets and Services, PodDisruptionBudgets, autoscalers (the
 * KEDA list against the queue contract), the data stores, the password Secret, and the
 * NetworkPolicies' flows. lib/context.ts renders and describes the targets.
 */
import { ENTRIES_QUEUE } from '@inflow/shared';
import { QueueKeys } from 'bullmq';
import t from 'tap';
import { containerEnv, type EnvValue } from './lib/env.ts';
import { renderAll } from './lib/kustomize.ts';
import { allowedFlows, firstHost, type Peer } from './lib/netpol.ts';
import {
  allContainers,
  containerPort,
  named,
  ofKind,
  quantityBytes,
  redisBytes,
  selects,
  selectsMap,
  type Workload,
} from './lib/objects.ts';
import { repoFile } from './lib/repo.ts';
import {
  NAMESPACE,
  RESERVED_CONNECTIONS,
  contextOf,
  selected,
  minReplicas,
  maxReplicas,
  sorted,
} from './lib/context.ts';

for (const [target, objects] of renderAll()) {
  const context = contextOf(target, objects);
  const { api, worker } = context;


  t.test(`${target}: Deployments, StatefulSets and Services select each other and agree on ports`, async (t) => {
    for (const workload of context.workloads) {
      t.ok(selects(workload.selector, workload.labels), `${workload.name}: its selector selects its own pod template`);
      t.same(selected(context, workload.selector).map((other) => other.name), [workload.name], `${workload.name}: and no other workload's pods`);
    }
    for (const service of ofKind(objects, 'Service')) {
      const matching = context.workloads.filter((workload) => selectsMap(service.spec?.selector, workload.labels));
      t.equal(matching.length, 1, `Service ${service.metadata.name} selects exactly one workload`);
      const workload = matching[0];
      for (const port of service.spec?.ports ?? []) {
        const resolved = workload === undefined ? undefined : containerPort(allContainers(workload.template), port.targetPort ?? port.port);
        t.ok(resolved, `Service ${service.metadata.name}: targetPort ${port.targetPort ?? port.port} is a port of ${workload?.name ?? '?'}`);
        t.equal(resolved?.protocol, port.protocol ?? 'TCP', `Service ${service.metadata.name}: same protocol`);
      }
    }
    for (const statefulSet of ofKind(objects, 'StatefulSet')) {
      const service = named(objects, 'Service', statefulSet.spec?.serviceName ?? '');
      t.equal(service.spec?.clusterIP, 'None', `StatefulSet ${statefulSet.metadata.name}: its governing Service is headless`);
      t.ok(selectsMap(service.spec?.selector, statefulSet.spec?.template.metadata?.labels ?? {}), `and selects its pods`);
    }
    // The hosts and ports in the apps' environment are the in-cluster Services (when they exist).
    if (context.inClusterData) {
      const addresses = [['DB_HOST', 'DB_PORT', 'postgres']] as [string, string, string][];
      if (api.env.has('REDIS_HOST')) addresses.push(['REDIS_HOST', 'REDIS_PORT', 'redis']);
      // With sentinels: each one is a pod of the sentinels' StatefulSet by its stable name in the
      // governing Service (<pod>.<service>), on that Service's port.
      for (const entry of (api.env.get('REDIS_SENTINELS')?.value ?? '').split(',').filter((item) => item !== '')) {
        const [, pod = '', serviceName = '', port = ''] = /^([^.]+)\.([^.:]+):(\d+)$/.exec(entry) ?? [];
        const statefulSet = ofKind(objects, 'StatefulSet').find((candidate) => candidate.spec?.serviceName === serviceName);
        const ordinal = Number(pod.slice((statefulSet?.metadata.name.length ?? 0) + 1));
        t.equal(statefulSet?.spec?.template.metadata?.labels?.['app.kubernetes.io/component'], 'redis-sentinel', `REDIS_SENTINELS ${entry}: a pod of the sentinels' StatefulSet, by its governing Service`);
        t.ok(pod.startsWith(`${statefulSet?.metadata.name ?? '?'}-`) && Number.isInteger(ordinal) && ordinal >= 0 && ordinal < (statefulSet?.spec?.replicas ?? 1), `REDIS_SENTINELS ${entry}: a pod that exists (ordinal below replicas)`);
        t.ok(named(objects, 'Service', serviceName).spec?.ports?.some((servicePort) => String(servicePort.port) === port), `REDIS_SENTINELS ${entry}: that Service's port`);
      }
      for (const [host, portVariable, component] of addresses) {
        const service = named(objects, 'Service', api.env.get(host)?.value ?? '');
        const target = context.workloads.find((workload) => selectsMap(service.spec?.selector, workload.labels));
        t.equal(target?.labels['app.kubernetes.io/component'], component, `${host} is the Service of the ${component} StatefulSet`);
        t.ok(service.spec?.ports?.some((port) => String(port.port) === api.env.get(portVariable)?.value), `${portVariable} is that Service's port`);
      }
    }
    // The edge's Service reaches nginx's public port, not its health port.
    const apiService = named(objects, 'Service', 'inflow-api');
    t.same(apiService.spec?.ports?.map((port) => containerPort([api.container], port.targetPort ?? port.port)?.containerPort), [api.config.port], 'the api Service publishes PORT only, not OPS_PORT');
    const edge = named(objects, 'Service', 'inflow-edge');
    t.same(edge.spec?.ports?.map((port) => port.targetPort), ['http'], 'the edge Service publishes only the http port');
  });

  t.test(`${target}: PodDisruptionBudgets never block a drain`, async (t) => {
    const budgets = ofKind(objects, 'PodDisruptionBudget');
    t.ok(budgets.length > 0, 'there are PodDisruptionBudgets');
    for (const budget of budgets) {
      const name = budget.metadata.name;
      const matching = selected(context, budget.spec?.selector);
      t.equal(matching.length, 1, `PDB ${name} selects exactly one workload`);
      const workload = matching[0];
      if (workload === undefined) continue;
      const { maxUnavailable, minAvailable } = budget.spec ?? {};
      t.ok(typeof maxUnavailable === 'number' || typeof minAvailable === 'number', `PDB ${name}: a whole number (a percentage can round to 0)`);
      const allowed = typeof maxUnavailable === 'number' ? maxUnavailable : minReplicas(context, workload) - (typeof minAvailable === 'number' ? minAvailable : 0);
      t.ok(allowed >= 1, `PDB ${name}: at least one pod of ${workload.name} may go at its fewest replicas (${allowed})`);
      t.equal(budget.spec?.unhealthyPodEvictionPolicy, 'AlwaysAllow', `PDB ${name}: pods that are not ready never hold a drain`);
    }
  });

  t.test(`${target}: autoscaling`, async (t) => {
    const hpas = ofKind(objects, 'HorizontalPodAutoscaler');
    const scaledObjects = ofKind(objects, 'ScaledObject');
    if (target !== 'overlays/autoscale') {
      t.same([hpas.length, scaledObjects.length], [0, 0], 'no autoscaler outside the autoscale overlay');
      t.equal(api.workload.replicas, 3, 'the api runs three replicas');
      t.equal(worker.workload.replicas, 1, 'one worker');
      return;
    }
    t.same(hpas.map((hpa) => hpa.spec.scaleTargetRef.name), [api.workload.name], 'one HPA, on the api; none on the worker (KEDA makes its own)');
    for (const hpa of hpas) {
      const targetRef = hpa.spec.scaleTargetRef;
      t.same([targetRef.apiVersion, targetRef.kind], ['apps/v1', 'Deployment'], 'targets a Deployment');
      t.same(hpa.spec.metrics?.map((metric) => [metric.type, metric.resource?.name, metric.resource?.target.type]), [['Resource', 'cpu', 'Utilization']], 'on CPU utilisation');
      t.ok(api.container.resources?.requests?.['cpu'], 'the api requests CPU (utilisation is of the request)');
      t.equal(api.workload.replicas, undefined, 'the api Deployment leaves replicas to the HPA');
    }
    t.equal(scaledObjects.length, 1, 'one ScaledObject');
    for (const scaled of scaledObjects) {
      const spec = scaled.spec;
      t.same([spec.scaleTargetRef.apiVersion, spec.scaleTargetRef.kind, spec.scaleTargetRef.name], ['apps/v1', 'Deployment', worker.workload.name], 'targets the worker Deployment');
      t.equal(spec.minReplicaCount, 1, 'minReplicaCount 1');
      t.equal(worker.workload.replicas, undefined, 'the worker Deployment leaves replicas to KEDA');
      t.equal(spec.triggers.length, 1, 'one trigger');
      const trigger = spec.triggers[0];
      t.equal(trigger?.type, 'redis', 'a Redis list trigger');
      const metadata = trigger?.metadata ?? {};
      t.equal(metadata['listName'], `bull:${ENTRIES_QUEUE}:wait`, 'the list is bull:<ENTRIES_QUEUE>:wait (ENTRIES_QUEUE from shared/src/queue.ts)');
      t.equal(metadata['listName'], new QueueKeys().toKey(ENTRIES_QUEUE, 'wait'), "and BullMQ's own name for the queue's wait list");
      t.ok(Number(metadata['listLength']) > 0, 'a target list length');
      for (const [key, variable] of [['hostFromEnv', 'REDIS_HOST'], ['portFromEnv', 'REDIS_PORT']] as const) {
        t.equal(metadata[key], variable, `${key} reads ${variable}`);
        t.ok(worker.env.has(variable), `which the worker's container sets`);
      }
    }
  });

  t.test(`${target}: data stores`, async (t) => {
    const statefulSets = ofKind(objects, 'StatefulSet');
    if (!context.inClusterData) {
      t.same(statefulSets, [], 'no StatefulSet');
      t.same(ofKind(objects, 'Service').map((service) => service.metadata.name).sort(), ['inflow-api', 'inflow-edge'], 'no Service for Redis or PostgreSQL');
      for (const variable of ['REDIS_HOST', 'DB_HOST']) {
        const host = api.env.get(variable)?.value ?? '';
        t.notOk(ofKind(objects, 'Service').some((service) => service.metadata.name === host.split('.')[0]), `${variable} (${host}) is outside the cluster`);
      }
      return;
    }
    const redis = context.workloads.find((workload) => workload.labels['app.kubernetes.io/component'] === 'redis');
    const postgres = context.workloads.find((workload) => workload.labels['app.kubernetes.io/component'] === 'postgres');
    t.same([redis?.kind, postgres?.kind], ['StatefulSet', 'StatefulSet'], 'Redis and PostgreSQL are StatefulSets');
    if (redis === undefined || postgres === undefined) return;

    /** The entry script a Redis workload runs from a ConfigMap (`sh <mount>/redis.sh`), if it does. */
    const redisScript = (workload: Workload): string | undefined => {
      const container = workload.template.spec?.containers[0];
      const path = container?.command?.find((part) => part.endsWith('/redis.sh'));
      if (path === undefined) return undefined;
      const mount = container?.volumeMounts?.find((candidate) => path.startsWith(`${candidate.mountPath}/`));
      const volume = workload.template.spec?.volumes?.find((candidate) => candidate.name === mount?.name);
      return named(objects, 'ConfigMap', volume?.configMap?.name ?? '').data?.['redis.sh'];
    };
    const claims = (workload: Workload) => new Set((named(objects, 'StatefulSet', workload.name).spec?.volumeClaimTemplates ?? []).map((claim) => claim.metadata?.name));
    const redisContainer = redis.template.spec?.containers[0];
    const args = redisContainer?.args ?? [];
    // The flags are the container's args, or (the replicated layout) deploy/redis/redis.sh's, with
    // maxmemory from REDIS_MAXMEMORY.
    const script = redisScript(redis);
    const option = (name: string) => {
      const index = args.indexOf(`--${name}`);
      if (index !== -1) return args[index + 1];
      if (script === undefined) return undefined;
      if (name === 'maxmemory' && script.includes('--maxmemory "$REDIS_MAXMEMORY"')) {
        return redisContainer?.env?.find((variable) => variable.name === 'REDIS_MAXMEMORY')?.value ?? /REDIS_MAXMEMORY:=([^}]+)\}/.exec(script)?.[1];
      }
      return new RegExp(`--${name} (\\S+)`).exec(script)?.[1];
    };
    t.equal(option('appendonly'), 'yes', 'Redis: appendonly yes');
    t.equal(option('appendfsync'), 'always', 'Redis: appendfsync always');
    t.equal(option('maxmemory-policy'), 'noeviction', 'Redis: maxmemory-policy noeviction');
    const maxmemory = option('maxmemory');
    t.ok(maxmemory !== undefined && redisBytes(maxmemory) > 0, `Redis: maxmemory is set (${maxmemory})`);
    const limit = redisContainer?.resources?.limits?.['memory'];
    t.ok(maxmemory !== undefined && limit !== undefined && redisBytes(maxmemory) < quantityBytes(limit), `Redis: maxmemory ${maxmemory} is below the container's memory limit ${limit}`);
    const dataDir = option('dir') ?? '/data';
    const redisMount = redisContainer?.volumeMounts?.find((mount) => mount.mountPath === dataDir);
    t.ok(redisMount && claims(redis).has(redisMount.name), `Redis: ${dataDir} is a PersistentVolumeClaim`);

    const pg = postgres.template.spec?.containers[0];
    const pgEnv = pg === undefined ? new Map<string, EnvValue>() : containerEnv(pg, objects, 'postgres-0');
    const dataMount = pg?.volumeMounts?.find((mount) => claims(postgres).has(mount.name));
    const pgdata = pgEnv.get('PGDATA')?.value ?? '';
    t.ok(dataMount, 'PostgreSQL: its data is a PersistentVolumeClaim');
    t.ok(dataMount !== undefined && pgdata.startsWith(`${dataMount.mountPath}/`) && pgdata.length > dataMount.mountPath.length + 1, `PostgreSQL: PGDATA (${pgdata}) is a subdirectory of the volume`);
    t.same(pgEnv.get('POSTGRES_PASSWORD')?.ref, api.env.get('DB_PASS')?.ref, 'PostgreSQL: its password is the apps’ DB_PASS');
    t.same(pgEnv.get('POSTGRES_DB')?.ref, api.env.get('DB_NAME')?.ref, 'PostgreSQL: its database is the apps’ DB_NAME');
    t.same(pgEnv.get('POSTGRES_USER')?.ref, api.env.get('DB_USER')?.ref, 'PostgreSQL: its user is the apps’ DB_USER');
    const initdb = pg?.volumeMounts?.find((mount) => mount.mountPath === '/docker-entrypoint-initdb.d');
    const initVolume = postgres.template.spec?.volumes?.find((volume) => volume.name === initdb?.name);
    const initConfig = named(objects, 'ConfigMap', initVolume?.configMap?.name ?? '');
    t.same(Object.values(initConfig.data ?? {}), [repoFile('init.sql')], 'PostgreSQL: init.sql comes from a ConfigMap equal to the repository’s init.sql (cp init.sql deploy/k8s/base/)');

    // Every pool at its largest fits in max_connections.
    const pgArgs = pg?.args ?? [];
    const setting = pgArgs.map((arg) => /^max_connections=(\d+)$/.exec(arg)?.[1]).find((value) => value !== undefined);
    const maxConnections = Number(setting ?? 100);
    const needed = maxReplicas(context, api.workload) * api.config.db.poolMax + maxReplicas(context, worker.workload) * worker.config.db.poolMax;
    t.ok(needed <= maxConnections - RESERVED_CONNECTIONS, `PostgreSQL: ${needed} pooled connections at most fit in max_connections ${maxConnections}`);
  });

  t.test(`${target}: the password Secret holds no committed value`, async (t) => {
    const ref = api.env.get('DB_PASS')?.ref;
    const secret = named(objects, 'Secret', ref?.name ?? '');
    t.same(Object.keys(secret.data ?? {}), ['DB_PASS'], 'the Secret holds DB_PASS only');
    t.equal(secret.data?.['DB_PASS'], '', 'and it is empty: set it in your own overlay (deploy/k8s/README.md)');
    t.equal(secret.stringData, undefined, 'no stringData');
    t.same(ofKind(objects, 'Secret').map((candidate) => candidate.metadata.name), [secret.metadata.name], 'no other Secret');
  });

  t.test(`${target}: NetworkPolicies deny by default and allow exactly the flows needed`, async (t) => {
    const policies = ofKind(objects, 'NetworkPolicy');
    t.ok(
      policies.some((policy) => Object.keys(policy.spec?.podSelector ?? { x: 1 }).length === 0 && policy.spec?.ingress === undefined && policy.spec?.egress === undefined && (policy.spec?.policyTypes ?? []).length === 2),
      'a default-deny policy (every pod, both directions, no rule)',
    );
    for (const policy of policies) {
      if (Object.keys(policy.spec?.podSelector ?? {}).length === 0) continue;
      t.ok(selected(context, policy.spec?.podSelector).length > 0, `NetworkPolicy ${policy.metadata.name} selects pods`);
    }

    const component = (workload: Workload) => workload.labels['app.kubernetes.io/component'] ?? workload.name;
    const peers: Peer[] = context.workloads.map((workload) => ({
      kind: 'pod',
      name: component(workload),
      namespace: NAMESPACE,
      namespaceLabels: { 'kubernetes.io/metadata.name': NAMESPACE },
      labels: workload.labels,
      ports: allContainers(workload.template).flatMap((container) =>
        (container.ports ?? []).map((port) => ({ ...(port.name === undefined ? {} : { name: port.name }), port: port.containerPort, protocol: port.protocol ?? 'TCP' })),
      ),
    }));
    const elsewhere = (name: string, namespace: string, labels: Record<string, string>, ports: Peer['ports']): Peer => ({
      kind: 'pod', name, namespace, namespaceLabels: { 'kubernetes.io/metadata.name': namespace }, labels, ports,
    });
    peers.push(
      elsewhere('kube-dns', 'kube-system', { 'k8s-app': 'kube-dns' }, [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }]),
      elsewhere('prometheus', 'monitoring', { 'app.kubernetes.io/name': 'prometheus' }, [{ port: 9090, protocol: 'TCP' }]),
      elsewhere('keda-operator', 'keda', { 'app.kubernetes.io/name': 'keda-operator' }, [{ port: 8080, protocol: 'TCP' }]),
      elsewhere('other-app', 'other', { app: 'other' }, [{ port: 8080, protocol: 'TCP' }]),
      { kind: 'ip', name: 'internet', ip: '203.0.113.7', ports: [{ port: 443, protocol: 'TCP' }] },
    );
    // Managed services (external-data): one address in each ipBlock, on the ports their rules name.
    const blocks = policies.flatMap((policy) => (policy.spec?.egress ?? []).flatMap((rule) => (rule.to ?? []).flatMap((to) => (to.ipBlock === undefined ? [] : [{ cidr: to.ipBlock.cidr, ports: rule.ports ?? [] }]))));
    for (const { cidr, ports } of blocks) {
      if (peers.some((peer) => peer.name === `ipBlock ${cidr}`)) continue;
      peers.push({ kind: 'ip', name: `ipBlock ${cidr}`, ip: firstHost(cidr), ports: ports.map((port) => ({ port: Number(port.port), protocol: port.protocol ?? 'TCP' })) });
    }

    const expected = new Set<string>();
    const flow = (from: string, to: string, port: number, protocol = 'TCP') => expected.add(`${from} -> ${to}:${port}/${protocol}`);
    // The public edge: anyone outside the namespace may connect to nginx's public port.
    for (const peer of peers) if (!(peer.kind === 'pod' && peer.namespace === NAMESPACE)) flow(peer.name, 'edge', 8080);
    flow('edge', 'api', api.config.port);
    for (const client of ['edge', 'api', 'worker']) {
      flow(client, 'kube-dns', 53, 'UDP');
      flow(client, 'kube-dns', 53, 'TCP');
    }
    flow('prometheus', 'api', api.config.opsPort);
    flow('prometheus', 'worker', worker.config.healthPort);
    for (const client of ['api', 'worker']) {
      if (context.inClusterData) {
        flow(client, 'redis', 6379);
        flow(client, 'postgres', 5432);
      } else {
        for (const { cidr, ports } of blocks) for (const port of ports) flow(client, `ipBlock ${cidr}`, Number(port.port));
      }
    }
    if (context.inClusterData && ofKind(objects, 'ScaledObject').length > 0) flow('keda-operator', 'redis', 6379);
    // The replicated Redis (components/replicated-redis): the apps ask the sentinels; the servers
    // replicate and ask the sentinels their role at start; the sentinels check the servers and
    // vote among themselves; both name each other by hostname (DNS).
    if (context.workloads.some((workload) => component(workload) === 'redis-sentinel')) {
      for (const client of ['api', 'worker', 'redis', 'redis-sentinel']) flow(client, 'redis-sentinel', 26379);
      for (const client of ['redis', 'redis-sentinel']) {
        flow(client, 'redis', 6379);
        flow(client, 'kube-dns', 53, 'UDP');
        flow(client, 'kube-dns', 53, 'TCP');
      }
    }
    if (!context.inClusterData) {
      const blockPorts = [...new Set(blocks.flatMap(({ ports }) => ports.map((port) => Number(port.port))))].sort((a, b) => a - b);
      t.same(blockPorts, [5432, 6379], 'the managed services are reached on 5432 and 6379 only');
    }

    const actual = allowedFlows(NAMESPACE, policies, peers);
    t.same(
      { unexpected: sorted([...actual].filter((entry) => !expected.has(entry))), missing: sorted([...expected].filter((entry) => !actual.has(entry))) },
      { unexpected: [], missing: [] },
      'allowed flows = needed flows',
    );
  });
}
