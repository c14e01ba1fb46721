/**
 * Containers for the test kit's servers, started with testcontainers-node from the images the
 * stack itself runs (POSTGRES_IMAGE, REDIS_IMAGE; see .env.example, and deploy/offline/README.md
 * for hosts without a registry). Containers, not server binaries on the host: the suite then
 * needs only Docker and Node, on any OS, without root, and tests the servers the stack ships.
 *
 * Each container publishes its port on 127.0.0.1 at a fixed host port chosen here, so a test can
 * stop, start, restart, pause and unpause it and the apps reconnect to the same address, as they
 * do to a restarted server.
 *
 * Cleanup. testcontainers' reaper (Ryuk) is off: its image cannot be pulled on a host without a
 * registry. The kit removes what it starts itself instead:
 *   - every container carries org.inflow.test=true and the pid and host name of the process that
 *     started it (org.inflow.test.owner-pid, org.inflow.test.owner-host), its volumes too;
 *   - the test's teardown removes it with its volumes, whether the test passed or failed;
 *   - an exit hook removes whatever is left when the process ends (an uncaught error, SIGINT or
 *     SIGTERM: signal-exit), with the docker CLI since nothing asynchronous runs at exit;
 *   - before its first container, each process removes the containers whose owner process no
 *     longer runs on this host (a run killed with SIGKILL), so the next run starts clean. A
 *     container of a process that still runs is never touched: other runs may share the engine.
 */
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { createServer } from 'node:net';
import { hostname } from 'node:os';
import type Dockerode from 'dockerode';
import { onExit } from 'signal-exit';
import { GenericContainer, getContainerRuntimeClient, type WaitStrategy } from 'testcontainers';
import { OWNER_HOST_LABEL, OWNER_PID_LABEL, ownerGone, ownerLabels, TEST_LABEL } from './labels.ts';
import { waitFor } from './wait.ts';

// Read by testcontainers when a container starts, so setting it here, before any, is enough.
process.env['TESTCONTAINERS_RYUK_DISABLED'] = 'true';

/** Something a test must clean up; tap's `t.teardown` takes these. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}


export interface ServiceContainerSpec {
  /** The image, e.g. process.env.POSTGRES_IMAGE ?? 'postgres:15-bookworm'. */
  image: string;
  /** The variable that names the image, for error messages. */
  imageVariable: string;
  /** The server's port inside the container. */
  containerPort: number;
  /** Directories the image declares as volumes: labelled, and removed with the container. */
  volumes: string[];
  command: string[];
  env?: Record<string, string>;
  files?: { content: string; target: string }[];
  /** True once the server answers on 127.0.0.1:`port` (the published port). */
  ready(port: number): Promise<boolean>;
  /** What `ready` waits for, for error messages. */
  what: string;
}

export interface ServiceContainer {
  readonly id: string;
  /** The host port, on 127.0.0.1; the same after stop/start and restart. */
  readonly port: number;
  /** Stops the server as `docker stop` does (the image's stop signal, SIGKILL after 10 s). */
  stop(): Promise<void>;
  /** Starts the stopped container again; resolves once the server answers. */
  start(): Promise<void>;
  /** stop() then start(). */
  restart(): Promise<void>;
  /** Freezes every process of the container: connections open, nothing answers. */
  pause(): Promise<void>;
  unpause(): Promise<void>;
}

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_S = 10;

/** Containers this process started and has not removed yet. */
const live = new Set<string>();
let exitHook: (() => void) | undefined;

function removeLeftoversAtExit(): void {
  if (live.size === 0) return;
  spawnSync('docker', ['rm', '--force', '--volumes', ...live], { stdio: 'ignore', timeout: 30_000 });
}


async function dockerode(): Promise<Dockerode> {
  return (await getContainerRuntimeClient()).container.dockerode;
}

const ignoreGone = (error: unknown): void => {
  // 404: already removed; 409: another process is removing it right now.
  const status = (error as { statusCode?: number }).statusCode;
  if (status !== 404 && status !== 409) throw error;
};

let swept: Promise<void> | undefined;

/**
 * Removes this host's test containers and networks whose owner process has ended (once per
 * process): what a run killed before its teardown left. A network goes once nothing is attached:
 * a test may have attached the compose stack's containers to it.
 */
export function sweepOrphans(): Promise<void> {
  swept ??= (async () => {
    const docker = await dockerode();
    const filters = { label: [TEST_LABEL, `${OWNER_HOST_LABEL}=${hostname()}`] };
    const orphaned = (labels: Record<string, string> | undefined) => ownerGone(labels?.[OWNER_PID_LABEL], labels?.[OWNER_HOST_LABEL]);
    const containers = (await docker.listContainers({ all: true, filters })).filter((container) => orphaned(container.Labels));
    await Promise.all(containers.map((container) => docker.getContainer(container.Id).remove({ force: true, v: true }).catch(ignoreGone)));
    const networks = (await docker.listNetworks({ filters })).filter((network) => orphaned(network.Labels));
    for (const found of networks) {
      const network = docker.getNetwork(found.Id);
      const attached = Object.keys(((await network.inspect().catch(() => ({}))) as { Containers?: Record<string, unknown> }).Containers ?? {});
      for (const container of attached) await network.disconnect({ Container: container, Force: true }).catch(ignoreGone);
      await network.remove().catch(ignoreGone);
    }
  })();
  return swept;
}

/** A TCP port free on 127.0.0.1, below the ephemeral ranges (Linux 32768+, macOS and Windows 49152+). */
async function freeFixedPort(): Promise<number> {
  for (;;) {
    const port = randomInt(20_000, 32_768);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => {
        resolve(false);
      });
      server.listen(port, '127.0.0.1', () => {
        server.close(() => {
          resolve(true);
        });
      });
    });
    if (free) return port;
  }
}

/** testcontainers' wait strategy interface over a probe through the published port. */
class Answers implements WaitStrategy {
  #timeoutMs = READY_TIMEOUT_MS;
  #probe: () => Promise<boolean>;
  #what: string;

  constructor(probe: () => Promise<boolean>, what: string) {
    this.#probe = probe;
    this.#what = what;
  }

  async waitUntilReady(container: Dockerode.Container): Promise<void> {
    await waitForAnswer(container, this.#probe, this.#what, this.#timeoutMs);
  }

  withStartupTimeout(timeoutMs: number): this {
    this.#timeoutMs = timeoutMs;
    return this;
  }

  isStartupTimeoutSet(): boolean {
    return true;
  }

  getStartupTimeout(): number {
    return this.#timeoutMs;
  }
}

/** Waits for `probe`; if it never answers, the error carries the end of the container's log. */
async function waitForAnswer(container: Dockerode.Container, probe: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  try {
    await waitFor(probe, { timeoutMs, what, intervalMs: 100 });
  } catch (error) {
    const log = await container.logs({ stdout: true, stderr: true, tail: 30 }).then(
      (buffer) => buffer.toString('utf8'),
      () => '(no log)',
    );
    throw new Error(`${(error as Error).message}; the container's log ends with:\n${log}`, { cause: error });
  }
}

/** GenericContainer that tells which container it created, so a failed start removes it too. */
class KitContainer extends GenericContainer {
  created: string | undefined;

  protected override containerCreated(containerId: string): Promise<void> {
    this.created = containerId;
    live.add(containerId);
    return Promise.resolve();
  }

  /** Publishes on 127.0.0.1 only: the servers trust every client (see services.ts). */
  bindLoopback(containerPort: number, hostPort: number, volumes: string[]): this {
    this.hostConfig.PortBindings = { [`${String(containerPort)}/tcp`]: [{ HostIp: '127.0.0.1', HostPort: String(hostPort) }] };
    // The image's volumes, declared here so that they carry the labels too.
    this.hostConfig.Mounts = volumes.map((target) => ({ Type: 'volume', Source: '', Target: target, VolumeOptions: { NoCopy: false, Labels: ownerLabels(), DriverConfig: { Name: 'local', Options: {} } } }));
    return this;
  }
}

async function remove(docker: Dockerode, id: string): Promise<void> {
  await docker.getContainer(id).remove({ force: true, v: true }).catch(ignoreGone);
  live.delete(id);
}

const portTaken = (error: unknown): boolean => /port is already allocated|address already in use/i.test((error as Error).message);

/**
 * Starts a container of `spec` for the test `t`, removed with its volumes when the test ends.
 * Resolves once `spec.ready` is true.
 */
export async function startServiceContainer(t: Teardown, spec: ServiceContainerSpec): Promise<ServiceContainer> {
  exitHook ??= onExit(removeLeftoversAtExit);
  await sweepOrphans();
  const docker = await dockerode();

  for (let attempt = 1; ; attempt += 1) {
    const port = await freeFixedPort();
    const probe = () => spec.ready(port);
    const definition = new KitContainer(spec.image)
      .withLabels(ownerLabels())
      .withEnvironment(spec.env ?? {})
      .withCommand(spec.command)
      .withExposedPorts({ container: spec.containerPort, host: port })
      .bindLoopback(spec.containerPort, port, spec.volumes)
      .withCopyContentToContainer((spec.files ?? []).map(({ content, target }) => ({ content, target, mode: 0o644 })))
      .withAutoCleanup(false)
      .withWaitStrategy(new Answers(probe, spec.what));
    try {
      const started = await definition.start();
      const id = started.getId();
      t.teardown(() => remove(docker, id));
      const container = docker.getContainer(id);
      const start = async () => {
        await container.start();
        await waitForAnswer(container, probe, spec.what, READY_TIMEOUT_MS);
      };
      const stop = async () => {
        await container.stop({ t: STOP_TIMEOUT_S }).catch((error: unknown) => {
          if ((error as { statusCode?: number }).statusCode !== 304) throw error; // 304: stopped already
        });
      };
      return {
        id,
        port,
        stop,
        start,
        restart: async () => {
          await stop();
          await start();
        },
        pause: async () => {
          await container.pause();
        },
        unpause: async () => {
          await container.unpause();
        },
      };
    } catch (error) {
      if (definition.created !== undefined) await remove(docker, definition.created);
      if (portTaken(error) && attempt < 5) continue;
      throw new Error(
        `starting ${spec.imageVariable}=${spec.image} failed (on a host without a registry, set the *_IMAGE variables to local images: deploy/offline/README.md): ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
}
