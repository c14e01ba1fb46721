import { notReady, type DependencyCheck, type Logger } from '@inflow/shared';
import { Router } from 'express';
import { allowOnly } from '../http/method-guard.ts';
import type { DrainState } from '../http/server.ts';
import { readiness } from './readiness.ts';

/** Who this process is. Only `instanceId` and `version` are public; the rest is for the ops port. */
export interface InstanceInfo {
  instanceId: string;
  hostname: string;
  version: string;
  startedAt: string;
}

/**
 * The public health routes. They say only what a client needs: this process answers
 * (/healthz), it can serve (/readyz: ready or not), and which instance and version answered
 * (/api/instance). Container host names, dependency names, latencies and errors stay on the ops
 * port (ops/ops-server.ts) and in the log.
 */
export function healthRoutes(deps: { checks: readonly DependencyCheck[]; drainState: Readonly<DrainState>; instance: InstanceInfo; logger: Logger }): Router {
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
      const { ok } = await readiness(deps.checks, deps.logger);
      if (!ok || deps.drainState.draining) throw notReady();
      res.set('Cache-Control', 'no-store').json({ status: 'ready' });
    })
    .all(allowOnly('GET'));

  router
    .route('/api/instance')
    .get((_req, res) => {
      res.json({ instanceId: deps.instance.instanceId, version: deps.instance.version });
    })
    .all(allowOnly('GET'));

  return router;
}
