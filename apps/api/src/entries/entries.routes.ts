import { isUtf8 } from 'node:buffer';
import { MIMEType } from 'node:util';
import { invalidUtf8, unsupportedCharset, unsupportedMediaType } from '@inflow/shared';
import express, { Router, type Request } from 'express';
import { BODY_LIMIT_BYTES } from '../http/error-handler.ts';
import { allowOnly } from '../http/method-guard.ts';
import type { EntriesService } from './entries.service.ts';
import type { ListReadAdmission } from './read-admission.ts';

/**
 * The one body an entry may come in: JSON (application/json), in UTF-8, the only charset: either
 * no charset parameter or `charset=utf-8` (any case). body-parser alone would also decode
 * utf-16 and utf-32, and would turn bytes that are not UTF-8 into U+FFFD.
 */
function checkJsonType(req: Request): void {
  if (req.is('application/json') !== 'application/json') throw unsupportedMediaType();
  const header = req.get('content-type') ?? '';
  // Two charset parameters could be read differently by us and by body-parser: refuse them.
  if ((header.match(/charset/gi) ?? []).length > 1) throw unsupportedCharset();
  let charset: string | null;
  try {
    charset = new MIMEType(header).params.get('charset');
  } catch {
    throw unsupportedMediaType();
  }
  if (charset !== null && charset.toLowerCase() !== 'utf-8') throw unsupportedCharset();
}

export function entriesRoutes(service: EntriesService, listReads: ListReadAdmission): Router {
  const router = Router();
  const parseJson = express.json({
    limit: BODY_LIMIT_BYTES,
    strict: true,
    type: 'application/json',
    // The raw bytes (after Content-Encoding), before they are decoded: invalid UTF-8 is refused,
    // never stored with U+FFFD in place of what the client sent.
    verify: (_req, _res, body) => {
      if (!isUtf8(body)) throw invalidUtf8();
    },
  });

  router
    .route('/api/entries')
    .get(async (req, res) => {
      // A page can be 1.6 MB: admitted per address and per replica (read-admission.ts).
      await listReads.serve(req, res, async () => {
        const { limit, before } = req.query;
        res.json(await service.list({ limit, before }));
      });
    })
    .post(
      (req, _res, next) => {
        // Checked before the body is read, so a large upload of another type is refused at once.
        checkJsonType(req);
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
