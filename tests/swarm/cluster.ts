/**
 * A three-node Docker Swarm of its own for tests/swarm: three containers, each running a Docker
 * engine (tests/swarm/node/Dockerfile), on a bridge network of their own; `swarm init` on the
 * first, `swarm join` as managers on the others. The host engine only runs these containers: its
 * swarm state is never touched (docs: issue 19, "the suite never changes the engine's global
 * state").
 *
 * Roles, set as node labels that deploy/swarm/stack.yml places the services by:
 *   node 1 `edge`: nginx (its published port reaches the host through a port the node container
 *     publishes on 127.0.0.1), redis-b (the Redis started as replica), sentinel-1, API and worker
 *     tasks; the suite's commands go through its engine, and no test stops it;
 *   node 2 `data`: PostgreSQL and redis-a (the Redis started as primary) with their volumes,
 *     sentinel-2, API tasks, never a worker: the node the machine-loss tests kill;
 *   node 3 `app`:  sentinel-3, API and worker tasks only: the node the other fault tests kill and
 *     drain (it holds no data).
 *
 * Privileges: where the host allows `--privileged` (the usual docker-in-docker), the nodes get it.
 * Where it is refused (a host that lacks CAP_SYS_RESOURCE), each node gets every other capability,
 * no seccomp or AppArmor profile, the host's /sys/fs/cgroup read-write, and its engine puts its
 * containers under the cgroup /<node name>; those folders are removed afterwards through a
 * short-lived container (no root on the host). INFLOW_SWARM_PRIVILEGED=1 or 0 skips the probe.
 *
 * Everything made carries org.inflow.test=true and the run's labels; `remove()` takes it all away,
 * and `sweepStale()` removes what an earlier run of this suite left behind when its process died
 * (its owner pid is gone), and nothing else.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { docker, exec, OWNER_HOST_LABEL, OWNER_PID_LABEL, ownerGone, REPO_ROOT, TEST_LABEL, waitFor } from '@inflow/test-support';

/** The labels every resource of this suite carries, besides the kit's (TEST_LABEL and the owner). */
const SUITE_LABEL = 'org.inflow.test.suite';
const RUN_LABEL = 'org.inflow.test.run';
const SUITE = 'swarm';

/** The node image, built by this suite from tests/swarm/node (cached by the engine like any build). */
export const NODE_IMAGE_TAG = process.env['INFLOW_SWARM_NODE_IMAGE'] ?? 'inflow-swarm-node:local';

export type Role = 'edge' | 'data' | 'app';
/** The node labels per role (`docker node update --label-add`), as deploy/swarm/stack.yml reads them. */
export const ROLE_LABELS: Record<Role, Record<string, string>> = {
  edge: { 'inflow.edge': 'true', 'inflow.app': 'true', 'inflow.redis-b': 'true', 'inflow.sentinel-1': 'true', 'inflow.zone': 'a' },
  data: { 'inflow.data': 'true', 'inflow.redis-a': 'true', 'inflow.sentinel-2': 'true', 'inflow.zone': 'b' },
  app: { 'inflow.app': 'true', 'inflow.sentinel-3': 'true', 'inflow.zone': 'c' },
};
const ROLES: readonly Role[] = ['edge', 'data', 'app'];

export interface SwarmNode {
  /** The container's name, its hostname and the swarm node's name. */
  name: string;
  role: Role;
  ip: string;
}

/** A command's result; never throws. */
type Result = Awaited<ReturnType<typeof exec>>;


const lines = (text: string): string[] => text.split('\n').map((line) => line.trim()).filter((line) => line !== '');


/** What `docker info` and `docker network ls` say about the host engine: compared before and after. */
export interface HostSnapshot {
  swarm: string;
  networks: string[];
}

export async function hostSnapshot(): Promise<HostSnapshot> {
  const swarm = (await docker(['info', '--format', '{{.Swarm.LocalNodeState}}'])).trim();
  const networks = lines(await docker(['network', 'ls', '--format', '{{.Name}}'])).sort();
  return { swarm, networks };
}

/** Builds the node image FROM the stack's Node base image (NODE_IMAGE, as compose's build). */
export async function buildNodeImage(): Promise<void> {
  if (process.env['INFLOW_SWARM_NODE_IMAGE'] !== undefined) return; // given, not built
  const base = process.env['NODE_IMAGE'] ?? 'node:24-bookworm-slim';
  await docker(['build', '-q', '--build-arg', `NODE_IMAGE=${base}`, '--label', TEST_LABEL, '-t', NODE_IMAGE_TAG, join(REPO_ROOT, 'tests', 'swarm', 'node')], {
    timeoutMs: 15 * 60_000,
  });
}

/** Whether this host lets a container run --privileged (INFLOW_SWARM_PRIVILEGED=1/0 decides without asking). */
async function privilegedAllowed(labels: readonly string[]): Promise<boolean> {
  const forced = process.env['INFLOW_SWARM_PRIVILEGED'];
  if (forced === '1' || forced === '0') return forced === '1';
  const probe = await exec('docker', ['run', '--rm', '--privileged', ...labels.flatMap((label) => ['--label', label]), '--entrypoint', 'true', NODE_IMAGE_TAG]);
  return probe.status === 0;
}

/**
 * Removes the nodes' cgroup folders (/sys/fs/cgroup/<controller>/<node name> on cgroup v1,
 * /sys/fs/cgroup/<node name> on v2; deepest first)
 * through a short-lived container that mounts the host's /sys/fs/cgroup: no root on the host.
 */
async function removeCgroups(names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  // cgroup v1 has a folder per controller (/sys/fs/cgroup/<controller>/<name>), v2 one (/sys/fs/cgroup/<name>).
  const script = 'for name in "$@"; do for dir in /sys/fs/cgroup/"$name" /sys/fs/cgroup/*/"$name"; do [ -d "$dir" ] && find "$dir" -depth -type d -exec rmdir {} +; done; done; ls -d $(for name in "$@"; do echo /sys/fs/cgroup/"$name" /sys/fs/cgroup/*/"$name"; done) 2>/dev/null || true';
  const result = await exec('docker', [
    'run', '--rm', '--label', TEST_LABEL, '--label', `${SUITE_LABEL}=${SUITE}-cgroup-cleanup`,
    '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw', '--entrypoint', 'bash', NODE_IMAGE_TAG, '-c', script, 'cleanup', ...names,
  ]);
  if (result.status !== 0) return [`removing the cgroups of ${names.join(', ')}: ${result.stderr}${result.stdout}`];
  const left = lines(result.stdout);
  return left.length > 0 ? [`cgroup folders left: ${left.join(' ')}`] : [];
}

/** Removes containers, volumes and networks of one run of this suite (by its label). */
async function removeRun(runId: string, cgroupNames: readonly string[]): Promise<string[]> {
  const problems: string[] = [];
  const filter = `label=${RUN_LABEL}=${runId}`;
  const containers = lines(await docker(['ps', '-aq', '--filter', filter]));
  if (containers.length > 0) {
    const removed = await exec('docker', ['rm', '-f', '-v', ...containers], { timeoutMs: 300_000 });
    if (removed.status !== 0) problems.push(`docker rm ${containers.join(' ')}: ${removed.stderr}`);
  }
  const volumes = lines(await docker(['volume', 'ls', '-q', '--filter', filter]));
  if (volumes.length > 0) {
    const removed = await exec('docker', ['volume', 'rm', ...volumes], { timeoutMs: 300_000 });
    if (removed.status !== 0) problems.push(`docker volume rm ${volumes.join(' ')}: ${removed.stderr}`);
  }
  for (const network of lines(await docker(['network', 'ls', '-q', '--filter', filter]))) {
    const removed = await exec('docker', ['network', 'rm', network]);
    if (removed.status !== 0) problems.push(`docker network rm ${network}: ${removed.stderr}`);
  }
  problems.push(...(await removeCgroups(cgroupNames)));
  return problems;
}

/**
 * Removes what earlier runs of this suite on this host left behind (their process died before its
 * teardown): only resources labelled with this suite whose owner pid is not alive. Returns the
 * runs it removed.
 */
export async function sweepStale(): Promise<string[]> {
  const stale = new Map<string, Set<string>>();
  const format = `{{.Names}}\t{{.Label "${RUN_LABEL}"}}\t{{.Label "${OWNER_PID_LABEL}"}}\t{{.Label "${OWNER_HOST_LABEL}"}}`;
  for (const line of lines(await docker(['ps', '-a', '--filter', `label=${SUITE_LABEL}=${SUITE}`, '--format', format]))) {
    const [name = '', runId = '', pid = '', host = ''] = line.split('\t');
    if (runId === '' || !ownerGone(pid, host)) continue;
    stale.set(runId, (stale.get(runId) ?? new Set()).add(name));
  }
  // Networks and volumes whose containers are gone already.
  for (const kind of ['network', 'volume'] as const) {
    const rows = lines(await docker([kind, 'ls', '--filter', `label=${SUITE_LABEL}=${SUITE}`, '--format', format.replace('{{.Names}}', '{{.Name}}')]));
    for (const row of rows) {
      const [, runId = '', pid = '', host = ''] = row.split('\t');
      if (runId === '' || !ownerGone(pid, host)) continue;
      if (!stale.has(runId)) stale.set(runId, new Set());
    }
  }
  const problems: string[] = [];
  for (const [runId, names] of stale) {
    const nodeNames = [...names, ...[1, 2, 3].map((n) => `inflow-swarm-${runId}-${n}`)];
    problems.push(...(await removeRun(runId, [...new Set(nodeNames)])));
  }
  if (problems.length > 0) throw new Error(`removing what an earlier run left:\n${problems.join('\n')}`);
  return [...stale.keys()];
}

export interface ClusterOptions {
  /** The port nginx publishes (host mode) inside the edge node; the node publishes it on 127.0.0.1. */
  edgePorts: readonly number[];
}

export class Cluster {
  readonly runId = randomBytes(3).toString('hex');
  readonly network = `inflow-swarm-${this.runId}`;
  readonly nodes: SwarmNode[] = ROLES.map((role, i) => ({ name: `inflow-swarm-${this.runId}-${i + 1}`, role, ip: '' }));
  privileged = false;
  readonly #labels = [
    TEST_LABEL,
    `${SUITE_LABEL}=${SUITE}`,
    `${RUN_LABEL}=${this.runId}`,
    `${OWNER_PID_LABEL}=${process.pid}`,
    `${OWNER_HOST_LABEL}=${hostname()}`,
  ];
  readonly #edgePorts: readonly number[];

  constructor(options: ClusterOptions) {
    this.#edgePorts = options.edgePorts;
  }

  node(role: Role): SwarmNode {
    const node = this.nodes.find((candidate) => candidate.role === role);
    if (node === undefined) throw new Error(`no ${role} node`);
    return node;
  }

  /** The node the suite's swarm commands go through: the edge node, which no test stops. */
  get control(): SwarmNode {
    return this.node('edge');
  }

  /** Makes the network and the three nodes, joins them into one swarm, labels them by role. */
  async start(): Promise<void> {
    this.privileged = await privilegedAllowed(this.#labels);
    const labels = this.#labels.flatMap((label) => ['--label', label]);
    await docker(['network', 'create', ...labels, this.network]);
    await Promise.all(this.nodes.map((node) => this.#runNode(node)));
    for (const node of this.nodes) node.ip = await this.#ipOf(node);
    await Promise.all(this.nodes.map((node) => this.waitEngine(node)));

    const [first, ...others] = this.nodes;
    if (first === undefined) throw new Error('no node');
    await this.docker(first, ['swarm', 'init', '--advertise-addr', first.ip]);
    const token = (await this.docker(first, ['swarm', 'join-token', '-q', 'manager'])).trim();
    for (const node of others) await this.docker(node, ['swarm', 'join', '--token', token, '--advertise-addr', node.ip, `${first.ip}:2377`]);
    for (const node of this.nodes) {
      const add = Object.entries(ROLE_LABELS[node.role]).flatMap(([key, value]) => ['--label-add', `${key}=${value}`]);
      await this.docker(this.control, ['node', 'update', ...add, node.name]);
    }
    await this.waitReady(this.nodes);
  }

  async #runNode(node: SwarmNode): Promise<void> {
    const isolation = this.privileged
      ? ['--privileged']
      : [
          '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
          '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined',
          '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
          '-e', `INFLOW_NODE_CGROUP_PARENT=/${node.name}`,
        ];
    const ports = node.role === 'edge' ? this.#edgePorts.flatMap((port) => ['-p', `127.0.0.1::${port}`]) : [];
    await docker([
      'run', '-d', '--name', node.name, '--hostname', node.name, '--network', this.network,
      ...this.#labels.flatMap((label) => ['--label', label]), '--label', `org.inflow.test.role=${node.role}`,
      ...isolation, ...ports,
      '--mount', `type=volume,src=${node.name},dst=/var/lib/docker,${this.#labels.map((label) => `volume-label=${label}`).join(',')}`,
      NODE_IMAGE_TAG,
    ]);
  }

  async #ipOf(node: SwarmNode): Promise<string> {
    return (await docker(['inspect', '--format', `{{(index .NetworkSettings.Networks "${this.network}").IPAddress}}`, node.name])).trim();
  }

  /** Waits until the node's engine answers. */
  async waitEngine(node: SwarmNode, timeoutMs = 120_000): Promise<void> {
    await waitFor(async () => (await exec('docker', ['exec', node.name, 'docker', 'info', '--format', '{{.ID}}'])).status === 0, {
      timeoutMs,
      what: `the engine of ${node.name} to answer`,
      intervalMs: 500,
    });
  }

  /** Waits until every given node is Ready and Active in the swarm, and reachable as a manager. */
  async waitReady(nodes: readonly SwarmNode[], timeoutMs = 180_000): Promise<void> {
    await waitFor(
      async () => {
        const states = await Promise.all(nodes.map((node) => this.nodeState(node).catch(() => undefined)));
        return states.every((state) => state?.status === 'ready' && state.availability === 'active' && state.manager === 'reachable');
      },
      { timeoutMs, what: `${nodes.map((node) => node.name).join(', ')} to be ready managers`, intervalMs: 1_000 },
    );
  }

  /** A swarm node's state as the control node sees it. */
  async nodeState(node: SwarmNode): Promise<{ status: string; availability: string; manager: string }> {
    const out = await this.docker(this.control, ['node', 'inspect', node.name, '--format', '{{.Status.State}} {{.Spec.Availability}} {{.ManagerStatus.Reachability}}']);
    const [status = '', availability = '', manager = ''] = out.trim().split(' ');
    return { status, availability, manager };
  }

  /** A docker command run by a node's own engine; throws with its output when it fails. */
  async docker(node: SwarmNode, args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<string> {
    const env = Object.entries(options.env ?? {}).flatMap(([key, value]) => ['-e', `${key}=${value}`]);
    return docker(['exec', ...env, node.name, 'docker', ...args], { timeoutMs: options.timeoutMs ?? 120_000 });
  }

  /** The same, never throwing. */
  async tryDocker(node: SwarmNode, args: readonly string[], timeoutMs = 120_000): Promise<Result> {
    return exec('docker', ['exec', node.name, 'docker', ...args], { timeoutMs });
  }

  /** Whether the node's container runs. */
  async running(node: SwarmNode): Promise<boolean> {
    const state = await exec('docker', ['inspect', '--format', '{{.State.Running}}', node.name]);
    return state.stdout.trim() === 'true';
  }

  /** The host port (on 127.0.0.1) that reaches `port` inside the edge node. */
  async hostPort(port: number): Promise<number> {
    const mapping = (await docker(['port', this.control.name, `${port}/tcp`])).trim().split('\n')[0] ?? '';
    return Number(/:(\d+)$/.exec(mapping)?.[1] ?? Number.NaN);
  }

  /**
   * Loads images from the host engine into nodes: `docker save | docker exec -i NODE docker load`,
   * one save streamed to every node that needs it.
   */
  async loadImages(images: readonly string[], nodes: readonly SwarmNode[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const save = spawn('docker', ['save', ...images], { stdio: ['ignore', 'pipe', 'pipe'] });
      const loads = nodes.map((node) => spawn('docker', ['exec', '-i', node.name, 'docker', 'load', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] }));
      let errors = '';
      save.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
      for (const load of loads) {
        save.stdout.pipe(load.stdin);
        load.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
        load.stdout.resume();
      }
      const exits = [save, ...loads].map((child) => new Promise<number | null>((done) => child.on('close', done)));
      Promise.all(exits).then((codes) => {
        if (codes.every((code) => code === 0)) resolve();
        else reject(new Error(`docker save ${images.join(' ')} | docker load on ${nodes.map((node) => node.name).join(', ')}: exit ${codes.join(', ')}\n${errors}`));
      }, reject);
    });
  }

  /** Copies files of the repository into a node (under `target`), through tar. */
  async copyIn(node: SwarmNode, paths: readonly string[], target: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const tar = spawn('tar', ['-C', REPO_ROOT, '-cf', '-', ...paths], { stdio: ['ignore', 'pipe', 'pipe'] });
      const untar = spawn('docker', ['exec', '-i', node.name, 'sh', '-c', 'mkdir -p "$1" && tar -C "$1" -xf -', 'copy-in', target], { stdio: ['pipe', 'ignore', 'pipe'] });
      tar.stdout.pipe(untar.stdin);
      let errors = '';
      for (const child of [tar, untar]) child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
      Promise.all([tar, untar].map((child) => new Promise<number | null>((done) => child.on('close', done)))).then((codes) => {
        if (codes.every((code) => code === 0)) resolve();
        else reject(new Error(`copying ${paths.join(' ')} into ${node.name}: ${errors}`));
      }, reject);
    });
  }

  /** Writes `content` to a file in a node, readable by root only. */
  async writeFile(node: SwarmNode, path: string, content: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('docker', ['exec', '-i', node.name, 'sh', '-c', 'umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1"', 'write', path], { stdio: ['pipe', 'ignore', 'pipe'] });
      let errors = '';
      child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
      child.on('close', (code) => {
        if (code === 0) resolve();
        else reject(new Error(`writing ${path} in ${node.name}: ${errors}`));
      });
      child.stdin.end(content);
    });
  }

  /** Stops a node hard: its engine container is killed (SIGKILL), as a machine losing power. */
  async kill(node: SwarmNode): Promise<void> {
    await docker(['kill', node.name]);
  }

  /** Starts a killed node again (the same container and volume: the machine's disk survived). */
  async restart(node: SwarmNode): Promise<void> {
    await docker(['start', node.name]);
    const ip = await this.#ipOf(node);
    if (ip !== node.ip) throw new Error(`${node.name} came back with address ${ip}, not ${node.ip}: the swarm knows it by its address`);
    await this.waitEngine(node);
  }

  /** Removes the nodes, their volumes, the network and the nodes' cgroup folders. What could not be done. */
  async remove(): Promise<string[]> {
    return removeRun(this.runId, this.privileged ? [] : this.nodes.map((node) => node.name));
  }
}
