import type { RequestHandler } from 'express';
import { methodNotAllowed } from '@inflow/shared';

/** The last handler of a route: any method not handled above it gets 405 with an Allow header. */
export const allowOnly =
  (...allowed: string[]): RequestHandler =>
  (req) => {
    throw methodNotAllowed(req.method, allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed);
  };
