import { Router } from 'express';
import { serviceUnavailable } from '../http/errors.ts';
import { allowOnly } from '../http/method-guard.ts';
import type { Liveness } from '../health/health.routes.ts';
import type { EntryEvents } from './entry-events.ts';

/** GET /api/events: the Server-Sent Events stream of entry status changes. */
export function eventsRoutes(events: EntryEvents, liveness: Liveness): Router {
  const router = Router();
  router
    .route('/api/events')
    .get(async (req, res) => {
      if (liveness.draining || !events.accepting) {
        // nginx tries another replica on a 503 for this location (nginx.conf).
        throw serviceUnavailable('shutting_down', 'this instance takes no new event streams; reconnect');
      }
      await events.connect(req, res);
    })
    .all(allowOnly('GET'));
  return router;
}
