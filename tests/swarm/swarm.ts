/**
 * Drives deploy/swarm/stack.yml on this machine's Docker engine for tests/swarm: the swarm
 * itself (joined only if the engine is in none, and left only if this suite made it), the stack
 * (deploy, convergence, removal with everything it made), and its tasks' containers (inspect,
 * exec, psql, logs). Every docker command runs asynchronously: the rolling update runs while a
 * load in this process keeps sending requests.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exec, REPO_ROOT, runCompose, waitFor } from '@inflow/test-support';

/** The stack's name: its services are `${STACK}_web` and so on. */
export const STACK = process.env['INFLOW_SWARM_STACK'] ?? 'inflow-swarm';
/** The host port nginx publishes (host mode). Not INFLOW_PORT: that one is compose's (9999). */
export const SWARM_PORT = process.env['INFLOW_SWARM_PORT'] ?? '9997';
export const SWARM_URL = `http://127.0.0.1:${SWARM_PORT}`;
/**
 * The images: PREFIX-api:local and PREFIX-worker:local, built by this suite through compose. A
 * prefix of its own, not the e2e suite's: a Swarm task reads the tag again whenever it starts
 * (a rolling update, a scale-up), and another run of the e2e suite on this engine may rebuild
 * inflow-e2e-* at any moment.
 */
export const IMAGE_PREFIX = process.env['INFLOW_SWARM_IMAGE_PREFIX'] ?? STACK;
export const STACK_FILE = join(REPO_ROOT, 'deploy', 'swarm', 'stack.yml');
/** The node label that marks a swarm this suite initialised (and so may leave). */
const OURS_LABEL = 'inflow.swarm-test';

export const SERVICES = ['web', 'worker', 'postgres', 'redis', 'nginx'] as const;
export type Service = (typeof SERVICES)[number];

export const serviceName = (service: string): string => `${STACK}_${service}`;

/** A docker command; throws with its stderr when it fails. */
export async function docker(args: readonly string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const result = await exec('docker', args, options);
  if (result.status !== 0) throw new Error(`docker ${args.join(' ')} failed (${result.status}):\n${result.stderr}${result.stdout}`);
  return result.stdout;
}

/** A docker command whose failure is only reported (cleanup). */
async function tryDocker(args: readonly string[]): Promise<{ ok: boolean; output: string }> {
  const result = await exec('docker', args);
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}`.trim() };
}

const lines = (text: string): string[] => text.split('\n').map((line) => line.trim()).filter((line) => line !== '');

// --- The images --------------------------------------------------------------------------

/** Builds PREFIX-api:local and PREFIX-worker:local from the Dockerfile, through docker-compose.yml. */
export function buildImages(): void {
  runCompose(['build', 'web1', 'worker'], { env: { ...process.env, INFLOW_IMAGE_PREFIX: IMAGE_PREFIX }, timeoutMs: 30 * 60_000 });
}

// --- The swarm ---------------------------------------------------------------------------

interface SwarmInfo {
  LocalNodeState: string;
  NodeID: string;
  ControlAvailable: boolean;
}

async function swarmInfo(): Promise<SwarmInfo> {
  return JSON.parse(await docker(['info', '--format', '{{json .Swarm}}'])) as SwarmInfo;
}

/**
 * Makes the engine a single-node swarm manager unless it is a manager already. Returns whether
 * the swarm is this suite's: made now, or by an earlier run that could not leave it (its node
 * carries our label). Somebody else's swarm is used, and never left.
 */
export async function ensureSwarm(): Promise<{ ours: boolean; initialised: boolean }> {
  const info = await swarmInfo();
  if (info.LocalNodeState === 'inactive') {
    await docker(['swarm', 'init', '--advertise-addr', '127.0.0.1']);
    const { NodeID } = await swarmInfo();
    await docker(['node', 'update', '--label-add', `${OURS_LABEL}=true`, NodeID]);
    return { ours: true, initialised: true };
  }
  if (info.LocalNodeState !== 'active' || !info.ControlAvailable) {
    throw new Error(`the engine is in a swarm state this suite cannot deploy to: ${info.LocalNodeState}, manager: ${String(info.ControlAvailable)}`);
  }
  const labels = JSON.parse(await docker(['node', 'inspect', info.NodeID, '--format', '{{json .Spec.Labels}}'])) as Record<string, string> | null;
  return { ours: labels?.[OURS_LABEL] === 'true', initialised: false };
}

/**
 * Leaves the swarm and removes the docker_gwbridge network it leaves behind (once nothing uses
 * it). Returns what could not be done.
 */
export async function leaveSwarm(): Promise<string[]> {
  const problems: string[] = [];
  const left = await tryDocker(['swarm', 'leave', '--force']);
  if (!left.ok) problems.push(`docker swarm leave --force: ${left.output}`);
  try {
    await waitFor(
      async () => {
        const found = await tryDocker(['network', 'inspect', 'docker_gwbridge', '--format', '{{len .Containers}}']);
        if (!found.ok) return true; // gone
        if (found.output !== '0') return false;
        return (await tryDocker(['network', 'rm', 'docker_gwbridge'])).ok;
      },
      { timeoutMs: 60_000, what: 'docker_gwbridge to be unused and removed', intervalMs: 1_000 },
    );
  } catch (error) {
    problems.push(String(error));
  }
  return problems;
}

// --- The stack ---------------------------------------------------------------------------

/** The environment `docker stack deploy` interpolates the stack file with. */
export function stackEnv(passwordFile: string): NodeJS.ProcessEnv {
  return { ...process.env, INFLOW_DB_PASSWORD_FILE: passwordFile, INFLOW_IMAGE_PREFIX: IMAGE_PREFIX, INFLOW_SWARM_PORT: SWARM_PORT };
}

/** docker stack deploy, with the images as they are on this engine (no registry). */
export async function deployStack(passwordFile: string): Promise<string> {
  return docker(['stack', 'deploy', '--resolve-image', 'never', '-c', STACK_FILE, STACK], { env: stackEnv(passwordFile), timeoutMs: 300_000 });
}

const stackFilter = `label=com.docker.stack.namespace=${STACK}`;

/**
 * Removes the stack and waits until its containers and networks are gone, then removes its
 * volumes (Swarm leaves them). Returns what could not be done; an absent stack is no problem.
 */
export async function removeStack(): Promise<string[]> {
  const problems: string[] = [];
  const removed = await tryDocker(['stack', 'rm', STACK]);
  if (!removed.ok && !/nothing found in stack/i.test(removed.output)) problems.push(`docker stack rm: ${removed.output}`);
  try {
    await waitFor(
      async () => {
        const containers = lines(await docker(['ps', '-aq', '--filter', stackFilter]));
        const networks = lines(await docker(['network', 'ls', '-q', '--filter', stackFilter]));
        return containers.length === 0 && networks.length === 0;
      },
      { timeoutMs: 180_000, what: `the containers and networks of stack ${STACK} to be gone`, intervalMs: 1_000 },
    );
  } catch (error) {
    problems.push(String(error));
  }
  // By label (the stack labels the volumes it creates) and by name, in case the label is missing.
  const volumes = new Set([
    ...lines(await docker(['volume', 'ls', '-q', '--filter', stackFilter])),
    ...lines(await docker(['volume', 'ls', '-q', '--filter', `name=^${STACK}_`])),
  ]);
  for (const volume of volumes) {
    const rm = await tryDocker(['volume', 'rm', volume]);
    if (!rm.ok) problems.push(`docker volume rm ${volume}: ${rm.output}`);
  }
  return problems;
}

export async function stackVolumes(): Promise<string[]> {
  return lines(await docker(['volume', 'ls', '-q', '--filter', stackFilter])).sort();
}

export interface ServiceSpec {
  ID: string;
  Spec: {
    Name: string;
    Mode: { Replicated?: { Replicas: number } };
    EndpointSpec?: { Mode?: string; Ports?: { TargetPort: number; PublishedPort: number; PublishMode: string }[] };
    UpdateConfig?: { Order?: string; FailureAction?: string };
  };
  Endpoint?: { Ports?: unknown[]; VirtualIPs?: unknown[] };
  UpdateStatus?: { State: string; Message?: string };
}

export async function inspectService(service: string): Promise<ServiceSpec> {
  const [spec] = JSON.parse(await docker(['service', 'inspect', serviceName(service)])) as [ServiceSpec];
  return spec;
}

export interface TaskContainer {
  id: string;
  taskId: string;
  slot: number;
  status: string;
  health: string | undefined;
  ip: string[];
  info: ContainerInspect;
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

/** The containers of a service's tasks that exist now (running or not). */
export async function taskContainers(service: string): Promise<TaskContainer[]> {
  const ids = lines(await docker(['ps', '-aq', '--filter', `label=com.docker.swarm.service.name=${serviceName(service)}`]));
  if (ids.length === 0) return [];
  const infos = JSON.parse(await docker(['inspect', ...ids])) as ContainerInspect[];
  return infos.map((info) => ({
    id: info.Id,
    taskId: info.Config.Labels['com.docker.swarm.task.id'] ?? '',
    slot: Number(/\.(\d+)\./.exec(info.Config.Labels['com.docker.swarm.task.name'] ?? '')?.[1] ?? Number.NaN),
    status: info.State.Status,
    health: info.State.Health?.Status,
    ip: Object.values(info.NetworkSettings.Networks).map((network) => network.IPAddress),
    info,
  }));
}

/** The running containers of a service's tasks. */
export async function runningTasks(service: string): Promise<TaskContainer[]> {
  return (await taskContainers(service)).filter((task) => task.status === 'running');
}

/** One running container of the service (for exec). */
export async function oneContainer(service: string): Promise<string> {
  const [task] = await runningTasks(service);
  if (task === undefined) throw new Error(`no running container for ${serviceName(service)}`);
  return task.id;
}

/**
 * Whether a service has converged: as many tasks meant to run as it wants replicas, every one of
 * them running (past its health check: Swarm reports a task with a health check as running only
 * once it is healthy), and no other container of it still running (an old task stopping). An
 * explanation when not.
 */
export async function serviceConverged(service: string): Promise<string | true> {
  const spec = await inspectService(service);
  const wanted = spec.Spec.Mode.Replicated?.Replicas ?? 1;
  if (spec.UpdateStatus !== undefined && !['completed', 'rollback_completed'].includes(spec.UpdateStatus.State)) {
    return `${service}: update ${spec.UpdateStatus.State}`;
  }
  const tasks = lines(await docker(['service', 'ps', serviceName(service), '--filter', 'desired-state=running', '--format', '{{.ID}} {{.CurrentState}}']));
  const running = tasks.filter((task) => / Running /.test(`${task} `));
  const containers = await runningTasks(service);
  const healthy = containers.filter((task) => task.health === undefined || task.health === 'healthy');
  if (tasks.length !== wanted || running.length !== wanted || containers.length !== wanted || healthy.length !== wanted) {
    return `${service}: ${wanted} wanted, ${tasks.length} meant to run, ${running.length} running, ${containers.length} containers running, ${healthy.length} healthy`;
  }
  return true;
}

/** Waits until every service of the stack has converged; the last explanation when it does not. */
export async function waitConverged(services: readonly string[] = SERVICES, timeoutMs = 300_000): Promise<void> {
  let last = '';
  try {
    await waitFor(
      async () => {
        const states = await Promise.all(services.map((service) => serviceConverged(service).catch((error: unknown) => String(error))));
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

/** Runs a command in a container; the result, never throwing. */
export async function execIn(container: string, command: readonly string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return exec('docker', ['exec', container, ...command]);
}

export const DB_USER = process.env['DB_USER'] ?? 'inflow';
export const DB_NAME = process.env['DB_NAME'] ?? 'inflow';

/** SQL in the postgres task's container; rows as arrays of fields. */
export async function psql(sql: string): Promise<string[][]> {
  const stdout = await docker(['exec', await oneContainer('postgres'), 'psql', '-U', DB_USER, '-d', DB_NAME, '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-c', sql]);
  return lines(stdout).map((line) => line.split('\t'));
}

export const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** The rows of one author. */
export async function rowsOf(author: string): Promise<{ id: string; message: string; persistedBy: string }[]> {
  return (await psql(`SELECT id, message, persisted_by FROM entries WHERE author = ${literal(author)}`)).map(([id = '', message = '', persistedBy = '']) => ({
    id,
    message,
    persistedBy,
  }));
}

/** GET /api/stats through nginx: the queue's counts, or undefined while it does not answer 200. */
export async function queueCounts(): Promise<{ waiting: number; active: number; delayed: number; failed: number } | undefined> {
  try {
    const response = await fetch(`${SWARM_URL}/api/stats`, { signal: AbortSignal.timeout(5_000) });
    if (response.status !== 200) return undefined;
    return ((await response.json()) as { queue: { waiting: number; active: number; delayed: number; failed: number } }).queue;
  } catch {
    return undefined;
  }
}

/** Waits until nothing is left to run in the queue and `author` has at least `rows` rows. */
export async function waitDrained(author: string, rows: number, timeoutMs = 180_000): Promise<void> {
  await waitFor(
    async () => {
      const counts = await queueCounts();
      if (counts === undefined || counts.waiting + counts.active + counts.delayed > 0) return false;
      return (await rowsOf(author)).length >= rows;
    },
    { timeoutMs, what: `the queue to drain and ${rows} rows of ${author}`, intervalMs: 1_000 },
  );
}

/** Saves every service's log to test-results/swarm-STACK.log (CI uploads that folder). */
export async function saveLogs(): Promise<void> {
  const parts: string[] = [];
  for (const service of SERVICES) {
    const result = await exec('docker', ['service', 'logs', '--no-trunc', '--timestamps', serviceName(service)], { timeoutMs: 60_000 });
    parts.push(`===== ${serviceName(service)} =====\n${result.stdout}${result.stderr}`);
  }
  mkdirSync(join(REPO_ROOT, 'test-results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'test-results', `swarm-${STACK}.log`), parts.join('\n'));
}
