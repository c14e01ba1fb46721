/**
 * Small HTTP helpers for the system tests: JSON requests through fetch, raw requests through
 * node:http (for what fetch will not send: no Content-Type, a body sent in pieces), and polling
 * for an entry's status.
 */
import { request as httpRequest, type Agent, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
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
  headers: IncomingHttpHeaders;
  text: string;
}

/** The whole response: status, headers and the body as text. */
function readAll(res: IncomingMessage): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('end', () => {
      resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
    });
    res.on('error', reject);
  });
}

/**
 * One request over its own connection (no keep-alive pool), with exactly the headers given:
 * fetch always adds a Content-Type to a string body, this does not.
 */
export function rawRequest(
  url: string,
  options: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer } = {},
): Promise<RawResult> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers ?? {}, agent: false }, (res) => {
      readAll(res).then(resolve, reject);
    });
    req.on('error', reject);
    req.end(options.body);
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
