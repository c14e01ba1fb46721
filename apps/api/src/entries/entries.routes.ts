import express, { Router } from 'express';
import { BODY_LIMIT_BYTES } from '../http/error-handler.ts';
import { unsupportedMediaType } from '../http/errors.ts';
import { allowOnly } from '../http/method-guard.ts';
import type { EntriesService } from './entries.service.ts';

export function entriesRoutes(service: EntriesService): Router {
  const router = Router();
  const parseJson = express.json({ limit: BODY_LIMIT_BYTES, strict: true, type: 'application/json' });

  router
    .route('/api/entries')
    .get(async (req, res) => {
      const { limit, before } = req.query;
      res.json(await service.list({ limit, before }));
    })
    .post(
      (req, _res, next) => {
        // Checked before the body is read, so a large non-JSON upload is refused at once.
        if (req.is('application/json') !== 'application/json') throw unsupportedMediaType();
        next();
      },
      parseJson,
      async (req, res) => {
        const { entry, replayed } = await service.accept(req.body, req.get('Idempotency-Key'));
        if (replayed) res.set('Idempotent-Replayed', 'true');
        res.status(202).location(`/api/entries/${entry.id}`).json({ id: entry.id, status: 'queued', acceptedBy: entry.acceptedBy });
      },
    )
    .all(allowOnly('GET', 'POST'));

  router
    .route('/api/entries/:id')
    .get(async (req, res) => {
      res.json(await service.get(req.params.id));
    })
    .all(allowOnly('GET'));

  return router;
}
