/**
 * The HTTP client of the system tests: JSON requests through fetch; raw requests through node:http
 * and raw bytes over a socket, for what fetch will not send or show (no Content-Type, any method,
 * a path with dot segments, a body sent in pieces, a header sent twice); polling for an entry's
 * status.
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { waitFor } from './wait.ts';

export interface HttpResult<T = unknown> {
  status: number;
  headers: Headers;
  /** The parsed JSON body; undefined when the body is empty or not JSON. */
  body: T;
  text: string;
}

/** Every response the helpers saw, so a test can assert a property of all of them at the end. */
export const seenResponses: { method: string; url: string; status: number; headers: Headers; text: string }[] = [];

/** fetch, reading the whole body; never throws on a non-2xx status. */
export async function http<T = unknown>(url: string, init: RequestInit = {}): Promise<HttpResult<T>> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    body = undefined;
  }
  seenResponses.push({ method: init.method ?? 'GET', url, status: response.status, headers: response.headers, text });
  return { status: response.status, headers: response.headers, body: body as T, text };
}

export interface Accepted {
  id: string;
  status: 'queued';
  acceptedBy: string;
}

export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

/** POST /api/entries with a JSON body (an object is serialised, a string is sent as is). */
export function postEntry<T = Accepted>(baseUrl: string, body: unknown, headers: Record<string, string> = {}): Promise<HttpResult<T>> {
  return http<T>(`${baseUrl}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** POST /api/entries that must be accepted: the 202 body, or an error saying what came back. */
export async function acceptEntry(baseUrl: string, author: string, message: string): Promise<Accepted> {
  const answer = await postEntry(baseUrl, { author, message });
  if (answer.status !== 202) throw new Error(`POST /api/entries answered ${answer.status}: ${answer.text}`);
  return answer.body;
}

export interface EntryView {
  status: 'persisted' | 'queued' | 'processing' | 'failed';
  id: string;
  author: string;
  message: string;
  acceptedBy: string;
  persistedBy: string | null;
  createdAt: string;
  persistedAt: string | null;
  attemptsMade?: number;
  failedReason?: string;
}

export interface EntryPage {
  entries: Omit<EntryView, 'status'>[];
  next: string | null;
}

/** Polls GET /api/entries/:id until the entry has `status`; returns it. */
export function waitForEntryStatus(baseUrl: string, id: string, status: EntryView['status'], timeoutMs = 15_000): Promise<EntryView> {
  return waitFor(
    async () => {
      const result = await http<EntryView>(`${baseUrl}/api/entries/${id}`);
      return result.status === 200 && result.body.status === status ? result.body : undefined;
    },
    { timeoutMs, what: `entry ${id} to be ${status}`, intervalMs: 100 },
  );
}

/** Reads every page of GET /api/entries; returns the entries in the order served. */
export async function listAll(baseUrl: string, limit: number): Promise<{ entries: EntryPage['entries']; pages: number }> {
  const entries: EntryPage['entries'] = [];
  let before: string | null = null;
  let pages = 0;
  do {
    const query: string = `limit=${limit}${before === null ? '' : `&before=${encodeURIComponent(before)}`}`;
    const page: HttpResult<EntryPage> = await http<EntryPage>(`${baseUrl}/api/entries?${query}`);
    if (page.status !== 200) throw new Error(`GET /api/entries?${query} answered ${page.status}: ${page.text}`);
    entries.push(...page.body.entries);
    before = page.body.next;
    pages += 1;
    if (pages > 10_000) throw new Error('paging does not end');
  } while (before !== null);
  return { entries, pages };
}

export interface RawResult {
  status: number;
  /** As node:http folds them: lower-case names, repeated ones joined or in an array. */
  headers: IncomingHttpHeaders;
  /** Every value of every header as sent, in order, by lower-case name: a duplicate shows as two values. */
  headerValues: Map<string, string[]>;
  text: string;
}

/** The first value of a response header, or undefined when it was not sent. */
export const firstHeader = (result: Pick<RawResult, 'headerValues'>, name: string): string | undefined => result.headerValues.get(name)?.[0];

/** Header values by lower-case name from name/value pairs (node's rawHeaders), every value kept in order. */
export function headerValuesOf(pairs: readonly string[]): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (let i = 0; i < pairs.length; i += 2) {
    const name = (pairs[i] ?? '').toLowerCase();
    values.set(name, [...(values.get(name) ?? []), pairs[i + 1] ?? '']);
  }
  return values;
}

/** The whole response: status, headers and the body as text. */
function readAll(res: IncomingMessage): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, headerValues: headerValuesOf(res.rawHeaders), text: Buffer.concat(chunks).toString('utf8') });
    });
    res.on('error', reject);
  });
}

/** The code of a body in the one error shape {"error":{"code","message"}}; undefined for any other body. */
export function errorCode(result: Pick<RawResult, 'text'>): string | undefined {
  try {
    const { error } = JSON.parse(result.text) as { error?: { code?: unknown; message?: unknown } };
    return typeof error?.code === 'string' && typeof error.message === 'string' ? error.code : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a URL into its origin and its path exactly as written: `new URL` would resolve dot segments and re-encode. */
function target(url: string): { host: string; port: number; path: string } {
  const match = /^http:\/\/([^/:]+)(?::(\d+))?(\/.*)?$/.exec(url);
  if (match === null) throw new Error(`not an http:// URL: ${url}`);
  return { host: match[1] ?? '', port: Number(match[2] ?? '80'), path: match[3] ?? '/' };
}

/**
 * One request, the one raw client of the kit: any method, the path sent exactly as written, over
 * its own connection unless an agent is given, with exactly the headers given (fetch always adds
 * a Content-Type to a string body, this does not); a body gets its Content-Length unless the
 * headers give one. Never throws on a status; rejects on a network error or after `timeoutMs`.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer; agent?: Agent; timeoutMs?: number } = {},
): Promise<RawResult> {
  const body = typeof options.body === 'string' ? Buffer.from(options.body, 'utf8') : options.body;
  const given = options.headers ?? {};
  const sized = body === undefined || Object.keys(given).some((name) => ['content-length', 'transfer-encoding'].includes(name.toLowerCase()));
  const headers = sized ? given : { 'content-length': body.length, ...given };
  const method = options.method ?? 'GET';
  return new Promise((resolve, reject) => {
    const req = httpRequest({ ...target(url), method, headers, agent: options.agent ?? false }, (res) => {
      readAll(res).then(resolve, reject);
    });
    const timeoutMs = options.timeoutMs ?? 30_000;
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${url.slice(0, 200)}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Writes `raw` on a new connection and parses every response that comes back (Content-Length
 * framed) until the server closes it; `bytes` is all it sent, for what the parser cannot show
 * (a status line or its absence).
 */
export function rawExchange(url: string, raw: string): Promise<{ answers: Omit<RawResult, 'headers'>[]; bytes: string }> {
  const { host, port } = target(url);
  return new Promise((resolve, reject) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(30_000, () => socket.destroy(new Error('the server did not close the connection in 30 s')));
    socket.on('close', () => {
      const data = Buffer.concat(chunks);
      const answers: Omit<RawResult, 'headers'>[] = [];
      let at = 0;
      while (at < data.length) {
        const end = data.indexOf('\r\n\r\n', at);
        if (end < 0) break;
        const [statusLine = '', ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
        const values = headerValuesOf(lines.flatMap((line) => {
          const colon = line.indexOf(':');
          return [line.slice(0, colon), line.slice(colon + 1).trim()];
        }));
        const length = Number(values.get('content-length')?.[0] ?? '0');
        answers.push({ status: Number(statusLine.split(' ')[1]), headerValues: values, text: data.subarray(end + 4, end + 4 + length).toString('utf8') });
        at = end + 4 + length;
      }
      resolve({ answers, bytes: data.toString('latin1') });
    });
    socket.write(raw);
  });
}

/**
 * Starts a POST whose body is sent in two parts: the headers and the first part now, the rest
 * when `finish()` is called. The request is "in flight" on the server in between. Without an
 * agent the request has a connection of its own (Connection: close); with a keep-alive agent it
 * behaves like a proxy's upstream connection.
 *
 * `received` resolves once the server has taken the request: with an `Expect: 100-continue`
 * header, when its "100 Continue" arrives (node:http writes it as it hands the request to the
 * application), or else when the response does. It never rejects; `response` does.
 */
export function slowPost(url: string, body: string, headers: Record<string, string> = {}, agent?: Agent) {
  const bytes = Buffer.from(body, 'utf8');
  const half = Math.floor(bytes.length / 2);
  let finished = false;
  const req = httpRequest(url, {
    method: 'POST',
    agent: agent ?? false,
    headers: { 'content-type': 'application/json', 'content-length': bytes.length, ...headers },
  });
  const response = new Promise<RawResult>((resolve, reject) => {
    req.on('response', (res) => {
      readAll(res).then(resolve, reject);
    });
    req.on('error', reject);
  });
  const received = new Promise<void>((resolve) => {
    req.once('continue', resolve);
    req.once('response', () => {
      resolve();
    });
  });
  req.flushHeaders();
  req.write(bytes.subarray(0, half));
  return {
    response,
    received,
    finish: () => {
      if (finished) return;
      finished = true;
      req.end(bytes.subarray(half));
    },
  };
}

/** Runs `task` over `items` with at most `limit` running at once; results keep their order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const index = next;
      next += 1;
      results[index] = await task(items[index] as T, index);
    }
  });
  await Promise.all(runners);
  return results;
}

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
export const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
