import { queueCountsUnavailable, withTimeout } from '@inflow/shared';
import { Router } from 'express';
import type { EntryQueue } from '../entries/entries.queue.ts';
import { allowOnly } from '../http/method-guard.ts';

/** GET /api/stats: the queue backlog, so a person can watch it grow while the worker is down. */
export function statsRoutes(queue: EntryQueue): Router {
  const router = Router();
  router
    .route('/api/stats')
    .get(async (_req, res) => {
      let counts;
      try {
        counts = await withTimeout(queue.counts(), 2_000, 'Redis did not answer');
      } catch (error) {
        throw queueCountsUnavailable(error);
      }
      res.set('Cache-Control', 'no-store').json({ queue: counts });
    })
    .all(allowOnly('GET'));
  return router;
}
