/**
 * Drives deploy/swarm/stack.yml on the suite's own three-node swarm (tests/swarm/cluster.ts): the
 * images (built through compose, loaded into the nodes), the stack (deploy, convergence), its
 * tasks' containers on whichever node runs them (inspect, exec, psql), the queue and the logs.
 * Every command runs asynchronously: the fault tests run while a load in this process keeps
 * sending requests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, REPO_ROOT, runCompose, waitFor } from '@inflow/test-support';
import type { Cluster, Role, SwarmNode } from './cluster.ts';

/** The stack's name: its services are `${STACK}_web` and so on. */
export const STACK = process.env['INFLOW_SWARM_STACK'] ?? 'inflow-swarm';
/**
 * The port nginx publishes (host mode) on the edge node, inside it. The host reaches it through
 * a port of 127.0.0.1 that the edge node's container publishes (chosen by Docker: two runs never
 * collide).
 */
export const SWARM_PORT = Number(process.env['INFLOW_SWARM_PORT'] ?? '9997');
/**
 * The images: PREFIX-api:local and PREFIX-worker:local, built by this suite through compose. A
 * prefix of its own, not the e2e suite's: a run of the e2e suite may rebuild inflow-e2e-* at any
 * moment, and the nodes must get what this run built.
 */
export const IMAGE_PREFIX = process.env['INFLOW_SWARM_IMAGE_PREFIX'] ?? STACK;
const APP_IMAGES = [`${IMAGE_PREFIX}-api:local`, `${IMAGE_PREFIX}-worker:local`];
const POSTGRES_IMAGE = process.env['POSTGRES_IMAGE'] ?? 'postgres:15-bookworm';
const REDIS_IMAGE = process.env['REDIS_IMAGE'] ?? 'redis:7-bookworm';
const NGINX_IMAGE = process.env['NGINX_IMAGE'] ?? 'nginx:1.28-bookworm';

/** Where the stack file and the files it names are copied in the control node. */
const STACK_DIR = '/inflow';
const PASSWORD_FILE = `${STACK_DIR}/secrets/db_password`;

export const SERVICES = ['web', 'worker', 'postgres', 'redis-a', 'redis-b', 'sentinel-1', 'sentinel-2', 'sentinel-3', 'nginx'] as const;
export type Service = (typeof SERVICES)[number];
/** The two Redis servers, by service name (their hostnames on the stack's network). */
export const REDIS_SERVERS = ['redis-a', 'redis-b'] as const;
export const SENTINELS = ['sentinel-1', 'sentinel-2', 'sentinel-3'] as const;
/** The master name the sentinels monitor (the stack's REDIS_SENTINEL_MASTER). */
export const SENTINEL_MASTER = process.env['REDIS_SENTINEL_MASTER'] ?? 'inflow';

/**
 * The services pinned to a node by their placement (a volume, a published port, one sentinel per
 * node): they stay pending while it is down or drained, and come back with it. The others move.
 */
export const PINNED: Record<Role, readonly Service[]> = {
  edge: ['nginx', 'redis-b', 'sentinel-1'],
  data: ['postgres', 'redis-a', 'sentinel-2'],
  app: ['sentinel-3'],
};
/** Every service but those pinned to the given node: what must run again while it is away. */
export const servicesWithout = (role: Role): Service[] => SERVICES.filter((service) => !PINNED[role].includes(service));

export const serviceName = (service: string): string => `${STACK}_${service}`;

const lines = (text: string): string[] => text.split('\n').map((line) => line.trim()).filter((line) => line !== '');

/** Builds PREFIX-api:local and PREFIX-worker:local from the Dockerfile, through docker-compose.yml. */
export function buildImages(): void {
  runCompose(['build', 'web1', 'worker'], { env: { ...process.env, INFLOW_IMAGE_PREFIX: IMAGE_PREFIX }, timeoutMs: 30 * 60_000 });
}

/**
 * The variables `docker stack deploy` interpolates the stack file with: the suite's, and those of
 * the stack's header that the caller's environment sets.
 */
function stackEnv(): Record<string, string> {
  const passed = [
    'DB_NAME', 'DB_USER', 'LOG_LEVEL', 'WORKER_CONCURRENCY', 'REDIS_MAXMEMORY', 'QUEUE_MEMORY_LIMIT_PERCENT', 'IDEMPOTENCY_TTL_SECONDS',
    'ENTRY_JOB_ATTEMPTS', 'ENTRY_RETRY_DELAY_MS', 'RATE_LIMIT_PER_SECOND', 'RATE_LIMIT_BURST', 'TRUSTED_PROXIES',
    'REDIS_SENTINEL_MASTER', 'REDIS_REPLICA_ACK_TIMEOUT_MS',
  ];
  const env: Record<string, string> = {};
  for (const name of passed) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return {
    ...env,
    INFLOW_DB_PASSWORD_FILE: PASSWORD_FILE,
    INFLOW_IMAGE_PREFIX: IMAGE_PREFIX,
    INFLOW_SWARM_PORT: String(SWARM_PORT),
    POSTGRES_IMAGE,
    REDIS_IMAGE,
    NGINX_IMAGE,
  };
}

export interface ServiceSpec {
  ID: string;
  Spec: {
    Name: string;
    Mode: { Replicated?: { Replicas: number } };
    TaskTemplate: { Placement?: { Constraints?: string[]; Preferences?: { Spread?: { SpreadDescriptor: string } }[]; MaxReplicas?: number } };
    EndpointSpec?: { Mode?: string; Ports?: { TargetPort: number; PublishedPort: number; PublishMode: string }[] };
    UpdateConfig?: { Order?: string; FailureAction?: string };
  };
  UpdateStatus?: { State: string; Message?: string };
}

/** The fields of `docker inspect` that the tests read. */
export interface ContainerInspect {
  Id: string;
  State: { Status: string; Health?: { Status: string } };
  Config: { User: string; Env: string[]; Labels: Record<string, string> };
  HostConfig: { ReadonlyRootfs: boolean; CapDrop: string[] | null; CapAdd: string[] | null; Init: boolean | null };
  Mounts: { Type: string; Destination: string; Name?: string; RW: boolean }[];
  NetworkSettings: { Networks: Record<string, { IPAddress: string }> };
}

export interface TaskContainer {
  id: string;
  /** The node whose engine runs the container. */
  node: SwarmNode;
  taskId: string;
  slot: number;
  status: string;
  health: string | undefined;
  info: ContainerInspect;
}

/** The stack on a cluster. */
export class Stack {
  readonly cluster: Cluster;
  /** nginx's published port as the host reaches it. */
  url = '';

  constructor(cluster: Cluster) {
    this.cluster = cluster;
  }

  /** A docker command on the control node (a manager no test stops). */
  docker(args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    return this.cluster.docker(this.cluster.control, args, options);
  }

  /**
   * Loads the images into the nodes that may run them (the placement of the stack): the API,
   * the worker and Redis (a sentinel on every node) everywhere, nginx on the edge node,
   * PostgreSQL on the data node.
   */
  async loadImages(): Promise<void> {
    const { nodes } = this.cluster;
    await Promise.all([
      this.cluster.loadImages([...APP_IMAGES, REDIS_IMAGE], nodes),
      this.cluster.loadImages([POSTGRES_IMAGE], [this.cluster.node('data')]),
      this.cluster.loadImages([NGINX_IMAGE], [this.cluster.node('edge')]),
    ]);
  }

  /** Copies the stack file, the files it names and the password into the control node; deploys. */
  async deploy(password: string): Promise<string> {
    const control = this.cluster.control;
    await this.cluster.copyIn(control, ['deploy/swarm', 'deploy/nginx', 'deploy/redis', 'init.sql'], STACK_DIR);
    await this.cluster.writeFile(control, PASSWORD_FILE, password);
    const out = await this.docker(['stack', 'deploy', '--resolve-image', 'never', '-c', `${STACK_DIR}/deploy/swarm/stack.yml`, STACK], {
      env: stackEnv(),
      timeoutMs: 300_000,
    });
    this.url = `http://127.0.0.1:${await this.cluster.hostPort(SWARM_PORT)}`;
    return out;
  }

  async inspectService(service: string): Promise<ServiceSpec> {
    const [spec] = JSON.parse(await this.docker(['service', 'inspect', serviceName(service)])) as [ServiceSpec];
    return spec;
  }

  /** The tasks meant to run: task id, node name and current state. */
  async tasks(service: string): Promise<{ id: string; node: string; state: string }[]> {
    const out = await this.docker(['service', 'ps', serviceName(service), '--no-trunc', '--filter', 'desired-state=running', '--format', '{{.ID}}\t{{.Node}}\t{{.CurrentState}}']);
    return lines(out).map((line) => {
      const [id = '', node = '', state = ''] = line.split('\t');
      return { id, node, state };
    });
  }

  /** The containers of a service's tasks that exist now (running or not), on every node whose engine runs. */
  async taskContainers(service: string): Promise<TaskContainer[]> {
    const perNode = await Promise.all(
      this.cluster.nodes.map(async (node) => {
        const listed = await this.cluster.tryDocker(node, ['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${serviceName(service)}`]);
        const ids = listed.status === 0 ? lines(listed.stdout) : []; // a stopped node has none to show
        if (ids.length === 0) return [];
        const infos = JSON.parse(await this.cluster.docker(node, ['inspect', ...ids])) as ContainerInspect[];
        return infos.map((info) => ({
          id: info.Id,
          node,
          taskId: info.Config.Labels['com.docker.swarm.task.id'] ?? '',
          slot: Number(/\.(\d+)\./.exec(info.Config.Labels['com.docker.swarm.task.name'] ?? '')?.[1] ?? Number.NaN),
          status: info.State.Status,
          health: info.State.Health?.Status,
          info,
        }));
      }),
    );
    return perNode.flat();
  }

  /** The running containers of a service's tasks. */
  async runningTasks(service: string): Promise<TaskContainer[]> {
    return (await this.taskContainers(service)).filter((task) => task.status === 'running');
  }

  /** One running container of the service (for exec). */
  async oneTask(service: string): Promise<TaskContainer> {
    const [task] = await this.runningTasks(service);
    if (task === undefined) throw new Error(`no running container for ${serviceName(service)}`);
    return task;
  }

  /**
   * Whether a service has converged: as many tasks meant to run as it wants replicas, every one of
   * them running (past its health check: Swarm reports a task with a health check as running only
   * once it is healthy) in a container that its node's engine shows, and no other container of it
   * still running (an old task stopping). A task on a node that stopped answering has no
   * container to show, so a service is never taken as converged before Swarm has replaced it. An
   * explanation when not.
   */
  async serviceConverged(service: string): Promise<string | true> {
    const spec = await this.inspectService(service);
    const wanted = spec.Spec.Mode.Replicated?.Replicas ?? 1;
    if (spec.UpdateStatus !== undefined && !['completed', 'rollback_completed'].includes(spec.UpdateStatus.State)) {
      return `${service}: update ${spec.UpdateStatus.State}`;
    }
    const tasks = await this.tasks(service);
    const running = tasks.filter((task) => task.state.startsWith('Running '));
    const containers = (await this.runningTasks(service)).filter((task) => tasks.some((meant) => meant.id === task.taskId));
    const others = (await this.runningTasks(service)).length - containers.length;
    const healthy = containers.filter((task) => task.health === undefined || task.health === 'healthy');
    if (tasks.length !== wanted || running.length !== wanted || containers.length !== wanted || healthy.length !== wanted || others > 0) {
      return `${service}: ${wanted} wanted, ${tasks.length} meant to run, ${running.length} running, ${containers.length} containers running, ${healthy.length} healthy, ${others} other containers running`;
    }
    return true;
  }

  /** Waits until every service of the stack has converged; the last explanation when it does not. */
  async waitConverged(services: readonly string[] = SERVICES, timeoutMs = 300_000): Promise<void> {
    let last = '';
    try {
      await waitFor(
        async () => {
          const states = await Promise.all(services.map((service) => this.serviceConverged(service).catch((error: unknown) => String(error))));
          const pending = states.filter((state): state is string => state !== true);
          last = pending.join('; ');
          return pending.length === 0;
        },
        { timeoutMs, what: `the services of ${STACK} to run all their tasks, healthy`, intervalMs: 1_000 },
      );
    } catch (error) {
      throw new Error(`${String(error)}; last seen: ${last}`, { cause: error });
    }
  }

  /** Runs a command in a task's container, on its node; the result, never throwing. */
  execIn(task: TaskContainer, command: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
    return this.cluster.tryDocker(task.node, ['exec', task.id, ...command]);
  }

  /** SQL in the postgres task's container; rows as arrays of fields. */
  async psql(sql: string): Promise<string[][]> {
    const task = await this.oneTask('postgres');
    const stdout = await this.cluster.docker(task.node, ['exec', task.id, 'psql', '-U', DB_USER, '-d', DB_NAME, '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-c', sql]);
    return lines(stdout).map((line) => line.split('\t'));
  }

  /** The rows of one author. */
  async rowsOf(author: string): Promise<{ id: string; message: string; persistedBy: string }[]> {
    return (await this.psql(`SELECT id, message, persisted_by FROM entries WHERE author = ${literal(author)}`)).map(([id = '', message = '', persistedBy = '']) => ({
      id,
      message,
      persistedBy,
    }));
  }

  /** GET /api/stats through nginx: the queue's counts, or undefined while it does not answer 200. */
  async queueCounts(): Promise<{ waiting: number; active: number; delayed: number; failed: number } | undefined> {
    try {
      const response = await fetch(`${this.url}/api/stats`, { signal: AbortSignal.timeout(5_000) });
      if (response.status !== 200) return undefined;
      return ((await response.json()) as { queue: { waiting: number; active: number; delayed: number; failed: number } }).queue;
    } catch {
      return undefined;
    }
  }

  /** Waits until nothing is left to run in the queue and `author` has at least `rows` rows. */
  async waitDrained(author: string, rows: number, timeoutMs = 180_000): Promise<void> {
    await waitFor(
      async () => {
        const counts = await this.queueCounts();
        if (counts === undefined || counts.waiting + counts.active + counts.delayed > 0) return false;
        return (await this.rowsOf(author)).length >= rows;
      },
      { timeoutMs, what: `the queue to drain and ${rows} rows of ${author}`, intervalMs: 1_000 },
    );
  }

  /** Saves every service's log to test-results/swarm-STACK.log (CI uploads that folder). */
  async saveLogs(): Promise<void> {
    const parts = await Promise.all(
      SERVICES.map(async (service) => {
        const result = await exec('docker', ['exec', this.cluster.control.name, 'docker', 'service', 'logs', '--no-trunc', '--timestamps', serviceName(service)], {
          timeoutMs: 60_000,
        });
        return `===== ${serviceName(service)} =====\n${result.stdout}${result.stderr}`;
      }),
    );
    mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
    writeFileSync(join(REPO_ROOT, 'test-results', `swarm-${STACK}.log`), parts.join('\n'));
  }
}

export const DB_USER = process.env['DB_USER'] ?? 'inflow';
export const DB_NAME = process.env['DB_NAME'] ?? 'inflow';

export const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;
