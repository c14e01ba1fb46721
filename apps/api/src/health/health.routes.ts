import { checkReadiness, type DependencyCheck } from '@inflow/shared';
import { Router } from 'express';
import { allowOnly } from '../http/method-guard.ts';

export interface Liveness {
  /** True once shutdown started: the instance wants no new traffic. */
  readonly draining: boolean;
}

export interface InstanceInfo {
  instanceId: string;
  hostname: string;
  version: string;
  startedAt: string;
}

export function healthRoutes(deps: { checks: readonly DependencyCheck[]; liveness: Liveness; instance: InstanceInfo }): Router {
  const router = Router();

  // Liveness: the process answers. Dependencies are not checked here, or a Redis outage would
  // make every replica look dead at once.
  router
    .route('/healthz')
    .get((_req, res) => {
      res.json({ status: 'ok', instanceId: deps.instance.instanceId });
    })
    .all(allowOnly('GET'));

  router
    .route('/readyz')
    .get(async (_req, res) => {
      const { ok, checks, failed } = await checkReadiness(deps.checks);
      if (deps.liveness.draining) {
        res.status(503).json({ error: { code: 'shutting_down', message: 'this instance is shutting down' }, checks });
        return;
      }
      if (!ok) {
        res.status(503).json({
          error: { code: 'dependency_unavailable', message: `not ready: ${failed.join(' and ')} unavailable` },
          checks,
        });
        return;
      }
      res.json({ status: 'ready', instanceId: deps.instance.instanceId, checks });
    })
    .all(allowOnly('GET'));

  router
    .route('/api/instance')
    .get((_req, res) => {
      res.json(deps.instance);
    })
    .all(allowOnly('GET'));

  return router;
}
