/**
 * The replicated layout's stack for this suite: docker-compose.yml with
 * deploy/compose/replicated-redis.yml on top (COMPOSE_FILE, read by both compose commands), in a
 * project of its own unless INFLOW_E2E_PROJECT names one. Imported before the test kit, which
 * reads these when it loads.
 */
process.env['COMPOSE_FILE'] = ['docker-compose.yml', 'deploy/compose/replicated-redis.yml'].join(process.platform === 'win32' ? ';' : ':');
process.env['INFLOW_E2E_PROJECT'] ??= 'inflow-replicated';

export const REDIS_NODES = ['redis', 'redis2'] as const;
export type RedisNode = (typeof REDIS_NODES)[number];
export const SENTINELS = ['sentinel1', 'sentinel2', 'sentinel3'] as const;
