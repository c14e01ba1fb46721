/**
 * The replicated layout's stack for this suite: docker-compose.yml with
 * deploy/compose/replicated-redis.yml on top (COMPOSE_FILE, read by both compose commands), in a
 * project of its own unless INFLOW_E2E_PROJECT names one, on a subnet of that project's own
 * (REDIS_SUBNET_PREFIX, derived from the project's name: two checkouts can run side by side).
 * Imported before the test kit, which reads these when it loads.
 */
import { createHash } from 'node:crypto';

process.env['COMPOSE_FILE'] = ['docker-compose.yml', 'deploy/compose/replicated-redis.yml'].join(process.platform === 'win32' ? ';' : ':');
process.env['INFLOW_E2E_PROJECT'] ??= 'inflow-replicated';
if (process.env['REDIS_SUBNET_PREFIX'] === undefined) {
  const [a = 0, b = 0] = createHash('sha256').update(process.env['INFLOW_E2E_PROJECT']).digest();
  // 10.200.0.0 to 10.249.255.0: outside Docker's default pools (172.17-31/16, 192.168/16).
  process.env['REDIS_SUBNET_PREFIX'] = `10.${200 + (a % 50)}.${b}`;
}

export const REDIS_NODES = ['redis', 'redis2'] as const;
export type RedisNode = (typeof REDIS_NODES)[number];
export const SENTINELS = ['sentinel1', 'sentinel2', 'sentinel3'] as const;
