/**
 * The labels of what the tests make on a Docker engine (docs/testing.md): `org.inflow.test=true`
 * on all of it, so a user can tell it apart and remove it; and, on what outlives a test file (the
 * kit's servers, the Swarm nodes), the process that owns it, so that a later run removes what a
 * killed run left, and never what a running one still uses.
 */
import { hostname } from 'node:os';

export const TEST_LABEL = 'org.inflow.test=true';
export const OWNER_PID_LABEL = 'org.inflow.test.owner-pid';
export const OWNER_HOST_LABEL = 'org.inflow.test.owner-host';

/** TEST_LABEL and this process as the owner, as a label map. */
export function ownerLabels(): Record<string, string> {
  return { 'org.inflow.test': 'true', [OWNER_PID_LABEL]: String(process.pid), [OWNER_HOST_LABEL]: hostname() };
}

/** ownerLabels() as `docker run` / `docker network create` arguments. */
export function ownerLabelArgs(): string[] {
  return Object.entries(ownerLabels()).flatMap(([name, value]) => ['--label', `${name}=${value}`]);
}

/**
 * True when a resource's owner labels name a process of this host that has ended. A pid that
 * answers EPERM runs, as another user; a resource of another host is never ours to judge.
 */
export function ownerGone(pidLabel: string | undefined, hostLabel: string | undefined): boolean {
  const pid = Number(pidLabel);
  if (hostLabel !== hostname() || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
