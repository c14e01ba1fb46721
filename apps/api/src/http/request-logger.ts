import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from '@inflow/shared';
import { pinoHttp, type Options } from 'pino-http';

// nginx sends its $request_id (32 hex characters); any client may send one too, so only a
// short printable token is trusted, never raw header bytes into the logs.
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
// Health probes, and Prometheus's scrapes on the ops port.
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

function requestId(req: IncomingMessage, res: ServerResponse): string {
  const header = req.headers['x-request-id'];
  const id = typeof header === 'string' && REQUEST_ID.test(header) ? header : randomUUID();
  res.setHeader('X-Request-Id', id);
  return id;
}

const pathOf = (url = ''): string => url.split('?', 1)[0] ?? url;

/** One JSON line per request: method, path, status, duration, request id (plus the base fields). */
export function requestLogger(logger: Logger) {
  const options: Options = {
    logger,
    genReqId: requestId,
    quietReqLogger: false,
    customLogLevel: (req, res, error) => {
      // res.err: a failure, set by the error handler; any other 4xx or 5xx is a refusal.
      if (error !== undefined || res.err !== undefined) return 'error';
      if (res.statusCode >= 400) return 'warn';
      // Probes and scrapes arrive every few seconds; keep them out of the info stream.
      return PROBES.has(pathOf(req.url)) ? 'debug' : 'info';
    },
    customSuccessMessage: (req, res) => `${req.method ?? ''} ${pathOf(req.url)} ${res.statusCode}`,
    customErrorMessage: (req, res) => `${req.method ?? ''} ${pathOf(req.url)} ${res.statusCode}`,
    customAttributeKeys: { responseTime: 'durationMs' },
    serializers: {
      req: (req: { id: string; method: string; url: string; raw?: { ip?: unknown } }) => ({
        id: req.id,
        method: req.method,
        path: pathOf(req.url),
        // Express's req.ip: the client as the trusted proxy (nginx, TRUST_PROXY_HOPS) saw it,
        // never an address the client wrote into X-Forwarded-For itself.
        clientIp: typeof req.raw?.ip === 'string' ? req.raw.ip : undefined,
      }),
      res: (res: { statusCode: number }) => ({ status: res.statusCode }),
    },
  };
  return pinoHttp(options);
}
