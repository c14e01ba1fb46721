import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { notFound } from '@inflow/shared';
import express, { Router } from 'express';
import { allowOnly } from '../http/method-guard.ts';

const escapeHtml = (text: string): string =>
  text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/**
 * The page (apps/api/page, built into dist/public). index.html names the instance that served it
 * (#served-by, filled in here, so the page needs no inline script); the other files are static.
 * Everything is revalidated on each load (ETag → 304): the file names carry no content hash, and
 * a new image must not be paired with an old script.
 */
export function pageRoutes(deps: { publicDir: string; instanceId: string }): Router {
  const router = Router();
  const indexFile = join(deps.publicDir, 'index.html');
  const html = existsSync(indexFile)
    ? readFileSync(indexFile, 'utf8').replaceAll('%INSTANCE_ID%', escapeHtml(deps.instanceId))
    : undefined;

  for (const path of ['/', '/index.html']) {
    router
      .route(path)
      .get((_req, res) => {
        if (html === undefined) throw notFound('the page was not built (npm run build)');
        // res.send sets an ETag from the content and answers 304 to a matching If-None-Match.
        res.set('Cache-Control', 'no-cache').type('html').send(html);
      })
      .all(allowOnly('GET'));
  }

  router.use(
    express.static(deps.publicDir, {
      index: false,
      redirect: false,
      dotfiles: 'ignore',
      cacheControl: false,
      setHeaders: (res) => {
        res.setHeader('Cache-Control', 'no-cache');
      },
    }),
  );
  // The static files answer other methods as every route does: 405 with Allow (express.static
  // passes anything but GET and HEAD on).
  const files = existsSync(deps.publicDir) ? readdirSync(deps.publicDir, { withFileTypes: true }).filter((entry) => entry.isFile()) : [];
  for (const file of files) router.all(`/${file.name}`, allowOnly('GET'));
  return router;
}
