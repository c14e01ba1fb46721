import { noNewStreams, tooManyStreams } from '@inflow/shared';
import { Router } from 'express';
import { allowOnly } from '../http/method-guard.ts';
import type { DrainState } from '../http/server.ts';
import type { EntryEvents } from './entry-events.ts';

/**
 * GET /api/events: the Server-Sent Events stream of entry status changes. At most
 * EVENTS_MAX_STREAMS at once per process: a stream holds a connection for as long as the client
 * likes, so without a cap one client could hold them all (issue 15). nginx tries another
 * replica on a 503 for this location (nginx.conf).
 */
export function eventsRoutes(events: EntryEvents, drainState: Readonly<DrainState>): Router {
  const router = Router();
  router
    .route('/api/events')
    .get(async (req, res) => {
      if (drainState.draining || events.closed) {
        throw noNewStreams();
      }
      // Checked, then counted by connect() in the same tick: no two requests pass for one slot.
      if (req.method !== 'HEAD' && events.full) throw tooManyStreams();
      await events.connect(req, res);
    })
    .all(allowOnly('GET'));
  return router;
}
