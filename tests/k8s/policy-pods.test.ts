/**
 * The pods, per rendered target (the base and each overlay): namespace and Pod Security Standard,
 * the images the Dockerfile builds, the environment against the config loader, the api's rollout,
 * the probes, and each pod's security context. lib/context.ts renders and describes the targets.
 */
import t from 'tap';
import { renderAll } from './lib/kustomize.ts';
import { allContainers, containerPort, imageRepository, imageTag, named, selects, workloads } from './lib/objects.ts';
import {
  NAMESPACE,
  API_IMAGE,
  WORKER_IMAGE,
  NODE_UID,
  docker,
  compose,
  contextOf,
  minReplicas,
  sorted,
} from './lib/context.ts';

for (const [target, objects] of renderAll()) {
  const context = contextOf(target, objects);
  const { api, worker } = context;


  t.test(`${target}: every namespaced object is in ${NAMESPACE}, which enforces the restricted Pod Security Standard`, async (t) => {
    for (const object of objects) {
      if (object.kind === 'Namespace') continue;
      t.equal(object.metadata.namespace, NAMESPACE, `${object.kind} ${object.metadata.name}`);
    }
    const namespace = named(objects, 'Namespace', NAMESPACE);
    t.equal(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce'], 'restricted');
  });

  t.test(`${target}: the images are the ones the Dockerfile builds`, async (t) => {
    const version = docker.args.get('VERSION');
    t.ok(version, 'the Dockerfile has ARG VERSION with a default');
    for (const [image, stageName] of [[API_IMAGE, 'api'], [WORKER_IMAGE, 'worker']] as const) {
      const stage = docker.stages.get(stageName);
      t.ok(stage, `the Dockerfile has a stage "${stageName}"`);
      t.equal(stage?.user, 'node', `stage ${stageName} runs as USER node (uid ${NODE_UID} in the official node image)`);
      // Compose builds that target as PREFIX-NAME:local; Kubernetes runs NAME:VERSION.
      const built = compose.filter((service) => service.target === stageName).map((service) => imageRepository(service.image));
      t.same([...new Set(built)], [image], `docker-compose.yml builds target ${stageName} as ${image}`);
      const app = image === API_IMAGE ? api : worker;
      t.equal(imageTag(app.container.image ?? ''), version, `${image} is tagged with the Dockerfile's VERSION`);
      t.equal(app.workload.template.spec?.containers.length, 1, `${app.workload.name} runs one container`);
      // The image's CMD carries the heap bounds: the pod must not replace it.
      t.equal(app.container.command, undefined, `${image}: no command override`);
      t.equal(app.container.args, undefined, `${image}: no args override`);
    }
    t.ok(docker.stages.get('api')?.expose.includes(api.config.port), 'the api stage EXPOSEs the port the api listens on');
    t.ok(docker.stages.get('worker')?.expose.includes(worker.config.healthPort), 'the worker stage EXPOSEs the health port');

    // The data stores run the images compose runs (the same major versions read the same data).
    const composeImages = new Set(compose.map((service) => service.image));
    for (const workload of context.workloads) {
      for (const container of allContainers(workload.template)) {
        const image = container.image ?? '';
        t.ok(imageTag(image) !== undefined && imageTag(image) !== 'latest', `${workload.name}/${container.name}: ${image} has a tag, not latest`);
        t.equal(container.imagePullPolicy, 'IfNotPresent', `${workload.name}/${container.name}: imagePullPolicy IfNotPresent`);
        if (workload.kind === 'StatefulSet') t.ok(composeImages.has(image), `${workload.name}: ${image} is the image compose runs`);
      }
    }
  });

  t.test(`${target}: each program's environment is exactly what the config loader reads`, async (t) => {
    for (const app of [api, worker]) {
      const set = new Set(app.env.keys());
      t.same(
        { missing: sorted([...app.read].filter((name) => !set.has(name))), extra: sorted([...set].filter((name) => !app.read.has(name))) },
        { missing: [], extra: [] },
        `${app.workload.name}: the variables set are those ${app === api ? 'loadApiConfig' : 'loadWorkerConfig'} reads (shared/src/config.ts)`,
      );
      t.equal(app.env.get('INSTANCE_ID')?.from, 'field', `${app.workload.name}: INSTANCE_ID is the pod's name (downward API)`);
      t.equal(app.env.get('DB_PASS')?.from, 'secret', `${app.workload.name}: DB_PASS comes from a Secret`);
      t.equal(app.workload.template.spec?.enableServiceLinks, false, `${app.workload.name}: no service-link variables (REDIS_PORT=tcp://… would clash)`);
    }
    t.same(api.env.get('DB_PASS')?.ref, worker.env.get('DB_PASS')?.ref, 'the api and the worker read the same password');
  });

  t.test(`${target}: the api rolls out without losing capacity and drains before it stops`, async (t) => {
    const deployment = named(objects, 'Deployment', api.workload.name);
    const strategy = deployment.spec?.strategy;
    t.equal(strategy?.type, 'RollingUpdate');
    t.equal(strategy?.rollingUpdate?.maxUnavailable, 0, 'maxUnavailable 0');
    t.ok(minReplicas(context, api.workload) >= 3, 'at least three replicas');
    const preStop = api.container.lifecycle?.preStop?.sleep?.seconds ?? 0;
    t.ok(preStop >= 1, `a preStop sleep (${preStop} s) so endpoints are removed before SIGTERM`);
    const grace = api.workload.template.spec?.terminationGracePeriodSeconds ?? 30;
    t.ok(grace > preStop + api.config.shutdownTimeoutMs / 1000, `terminationGracePeriodSeconds ${grace} > preStop ${preStop} + SHUTDOWN_TIMEOUT_MS ${api.config.shutdownTimeoutMs / 1000} s`);
    const workerGrace = worker.workload.template.spec?.terminationGracePeriodSeconds ?? 30;
    t.ok(workerGrace > worker.config.shutdownTimeoutMs / 1000, `worker: terminationGracePeriodSeconds ${workerGrace} > SHUTDOWN_TIMEOUT_MS`);
  });

  t.test(`${target}: placement: the api spreads over nodes; the api and the worker keep away from the data stores' node`, async (t) => {
    const spread = api.workload.template.spec?.topologySpreadConstraints ?? [];
    t.match(spread, [{ topologyKey: 'kubernetes.io/hostname', maxSkew: 1, labelSelector: { matchLabels: api.workload.template.metadata?.labels ?? {} } }], 'api: spread over hostnames, its own pods');
    const data = ['postgres', 'redis'].map((component) => ({ 'app.kubernetes.io/name': 'inflow', 'app.kubernetes.io/component': component }));
    // The selectors must match the pods the data stores really run (where the target runs them:
    // an overlay with external data has none, and the rule then finds nothing to avoid).
    const stores = workloads(objects).filter((workload) => workload.kind === 'StatefulSet');
    for (const labels of stores.length > 0 ? data : []) {
      const runs = stores.some((workload) => selects({ matchLabels: labels }, workload.template.metadata?.labels ?? {}));
      t.ok(runs, `a StatefulSet's pods carry ${JSON.stringify(labels)}`);
    }
    for (const app of [api, worker]) {
      const terms = app.workload.template.spec?.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
      for (const labels of data) {
        const away = terms.some((term) => term.podAffinityTerm.topologyKey === 'kubernetes.io/hostname' && selects(term.podAffinityTerm.labelSelector, labels));
        t.ok(away, `${app.workload.name}: anti-affinity by hostname from the ${labels['app.kubernetes.io/component']} pods`);
      }
    }
  });

  t.test(`${target}: probes: /healthz for liveness and startup, /readyz for readiness, on the configured ports`, async (t) => {
    const expectations = [
      { app: api, port: api.config.port, probes: { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' } },
      { app: worker, port: worker.config.healthPort, probes: { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' } },
    ] as const;
    for (const { app, port, probes } of expectations) {
      for (const [kind, path] of Object.entries(probes) as [keyof typeof probes, string][]) {
        const probe = app.container[kind]?.httpGet;
        t.equal(probe?.path, path, `${app.workload.name}: ${kind} GET ${path}`);
        const resolved = probe === undefined ? undefined : containerPort([app.container], probe.port);
        t.equal(resolved?.containerPort, port, `${app.workload.name}: ${kind} on port ${port} (PORT / HEALTH_PORT)`);
      }
      t.ok(containerPort([app.container], port), `${app.workload.name}: declares containerPort ${port}`);
    }
    t.ok(containerPort([api.container], api.config.opsPort), `${api.workload.name}: declares its ops port (OPS_PORT ${api.config.opsPort})`);
    // Every probe of every container names a port that container has.
    for (const workload of context.workloads) {
      for (const container of allContainers(workload.template)) {
        t.ok(container.readinessProbe && container.livenessProbe, `${workload.name}/${container.name}: readiness and liveness probes`);
        for (const probe of [container.startupProbe, container.livenessProbe, container.readinessProbe]) {
          const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
          if (port !== undefined) t.ok(containerPort([container], port), `${workload.name}/${container.name}: probe port ${port} exists`);
        }
      }
    }
  });

  t.test(`${target}: every pod runs unprivileged, read-only, with a writable /tmp`, async (t) => {
    for (const workload of context.workloads) {
      const pod = workload.template.spec;
      const label = workload.name;
      t.equal(pod?.automountServiceAccountToken, false, `${label}: no service account token`);
      t.notOk(pod?.hostNetwork ?? pod?.hostPID ?? pod?.hostIPC, `${label}: no host namespaces`);
      t.notOk(pod?.volumes?.some((volume) => volume.hostPath !== undefined), `${label}: no hostPath volume`);
      for (const container of allContainers(workload.template)) {
        const at = `${label}/${container.name}`;
        const own = container.securityContext;
        const podContext = pod?.securityContext;
        const runAsUser = own?.runAsUser ?? podContext?.runAsUser;
        t.equal(own?.runAsNonRoot ?? podContext?.runAsNonRoot, true, `${at}: runAsNonRoot`);
        t.ok(Number.isInteger(runAsUser) && (runAsUser ?? 0) > 0, `${at}: a numeric, non-root runAsUser (${runAsUser})`);
        if ([API_IMAGE, WORKER_IMAGE].includes(imageRepository(container.image ?? ''))) {
          t.equal(runAsUser, NODE_UID, `${at}: runs as the image's node user, ${NODE_UID}`);
        }
        t.equal((own?.seccompProfile ?? podContext?.seccompProfile)?.type, 'RuntimeDefault', `${at}: seccomp RuntimeDefault`);
        t.equal(own?.allowPrivilegeEscalation, false, `${at}: allowPrivilegeEscalation false`);
        t.equal(own?.readOnlyRootFilesystem, true, `${at}: readOnlyRootFilesystem`);
        t.notOk(own?.privileged, `${at}: not privileged`);
        t.same(own?.capabilities?.drop, ['ALL'], `${at}: drops ALL capabilities`);
        t.same(own?.capabilities?.add ?? [], [], `${at}: adds none`);
        const tmp = container.volumeMounts?.find((mount) => mount.mountPath === '/tmp');
        const volume = pod?.volumes?.find((candidate) => candidate.name === tmp?.name);
        t.ok(volume?.emptyDir, `${at}: /tmp is an emptyDir`);
        for (const resource of ['cpu', 'memory']) {
          t.ok(container.resources?.requests?.[resource] !== undefined, `${at}: requests ${resource}`);
          t.ok(container.resources?.limits?.[resource] !== undefined, `${at}: limits ${resource}`);
        }
      }
    }
  });
}
