/**
 * What the chaos scenarios do to the compose stack beyond starting and stopping services:
 * faults (docker kill, a program SIGKILLed inside its container), waiting for Docker to restart a
 * crashed container and for a replica to be back in nginx's rotation, and sampling a probe while
 * a load runs.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BASE_URL, containerInfo, type ContainerInfo, docker, idOf, waitFor } from '@inflow/test-support';

/** `docker kill -s KILL`: the Docker API's kill, which Docker records as a manual stop. */
export async function dockerKill(service: string): Promise<void> {
  await docker(['kill', '-s', 'KILL', idOf(service)]);
}

export async function dockerStart(service: string): Promise<void> {
  await docker(['start', idOf(service)]);
}

/**
 * SIGKILLs the program inside a container, as the kernel's OOM killer or a crash would end it: the
 * container's init (docker-init, compose `init: true` on every service) then exits with it, and
 * Docker, which did not stop the container itself, applies the restart policy. The kill is sent
 * from inside the container (docker exec, as the program's own user, so that no capability is
 * needed), not from the host: the suite needs no root and no access to the engine's processes.
 * Returns the program's pid in the container.
 */
export async function crashProcess(service: string): Promise<number> {
  const id = idOf(service);
  // The program: docker-init's (PID 1's) first child, and its owner.
  const [pid = '', uid = ''] = (await docker(['exec', id, 'sh', '-c', 'pid=$(cut -d" " -f1 /proc/1/task/1/children); echo "$pid $(stat -c %u /proc/$pid)"'])).trim().split(' ');
  if (!/^\d+$/.test(pid) || !/^\d+$/.test(uid)) throw new Error(`${service}: no program under the container's init (${pid} ${uid})`);
  // The exec ends with the container: its exit status is of no interest.
  await docker(['exec', '-u', uid, id, 'sh', '-c', `kill -KILL ${pid}`]).catch(() => undefined);
  return Number(pid);
}

/**
 * Waits until Docker has restarted `service` after a crash (its restart count above the one in
 * `before`, and running again); returns the milliseconds waited.
 */
export async function waitRestartedByDocker(service: string, before: ContainerInfo, timeoutMs: number): Promise<number> {
  const startedAt = Date.now();
  await waitFor(
    async () => {
      const state = await containerInfo(service);
      return state.restartCount > before.restartCount && state.status === 'running';
    },
    { timeoutMs, what: `Docker to restart ${service}`, intervalMs: 200 },
  );
  return Date.now() - startedAt;
}

/** Waits until nginx routes requests to `instance` again; returns the milliseconds waited. */
export async function waitInRotation(instance: string, timeoutMs = 60_000): Promise<number> {
  const startedAt = Date.now();
  await waitFor(
    async () => {
      for (let i = 0; i < 6; i += 1) {
        const response = await fetch(`${BASE_URL}/api/instance`, { signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
        if (response === undefined) continue;
        const body = (await response.json().catch(() => ({}))) as { instanceId?: string };
        if (body.instanceId === instance) return true;
      }
      await sleep(300);
      return false;
    },
    { timeoutMs, what: `nginx to send requests to ${instance} again`, intervalMs: 200 },
  );
  return Date.now() - startedAt;
}

/** Polls `probe` every `intervalMs` until the returned stop function is called; collects what it returns. */
export function sample<T>(probe: () => Promise<T>, intervalMs: number): { samples: T[]; stop: () => Promise<void> } {
  const samples: T[] = [];
  const state = { stopped: false };
  const loop = (async () => {
    while (!state.stopped) {
      samples.push(await probe());
      await sleep(intervalMs);
    }
  })();
  return {
    samples,
    stop: async () => {
      state.stopped = true;
      await loop;
    },
  };
}
