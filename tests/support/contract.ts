/**
 * Checks of the API's HTTP contract that several test files make: the one error shape, and what
 * every response must carry (its instance and request ids, no leaked internals).
 */
import { hostname } from 'node:os';
import type { ErrorBody } from './http.ts';
import { seenResponses } from './http.ts';

/** The assertions these checks make: tap's, as any test passes them in. */
type Message = [] | [message: string];
export interface Assertions {
  equal(found: unknown, wanted: unknown, ...message: Message): void;
  same(found: unknown, wanted: unknown, ...message: Message): void;
  type(found: unknown, type: string, ...message: Message): void;
  ok(found: unknown, ...message: Message): void;
}

export const sortedKeys = (value: unknown): string[] => Object.keys(value as object).sort();

/** Asserts the one error shape: {"error": {"code", "message", "field"?}} and nothing else. */
export function assertError(t: Assertions, result: { status: number; body: unknown; text: string }, status: number, code: string, field?: string): void {
  t.equal(result.status, status, `status ${status} (${result.text.slice(0, 200)})`);
  const body = result.body as ErrorBody;
  t.same(sortedKeys(body), ['error'], 'only "error" at the top');
  t.same(sortedKeys(body.error), field === undefined ? ['code', 'message'] : ['code', 'field', 'message'], 'error keys');
  t.equal(body.error.code, code);
  t.type(body.error.message, 'string');
  t.ok(body.error.message.length > 0, 'a message');
  if (field !== undefined) t.equal(body.error.field, field, `names the field ${field}`);
}

/**
 * What is wrong with the responses `http()` received from the API at `base` so far: each must
 * carry X-Instance-Id `instance` and an X-Request-Id, none is a 5xx, an error is JSON and names
 * no stack frame, path, host, address or readiness detail (issue 15). Returns the number of
 * responses checked, and one line per problem.
 */
export function seenResponseProblems(base: string, instance: string): { checked: number; problems: string[] } {
  const fromApi = seenResponses.filter((response) => response.url.startsWith(base));
  const problems: string[] = [];
  for (const response of fromApi) {
    const where = `${response.method} ${response.url.slice(base.length)} → ${response.status}`;
    if (response.headers.get('x-instance-id') !== instance) problems.push(`${where}: X-Instance-Id ${response.headers.get('x-instance-id')}`);
    if (response.headers.get('x-request-id') === null) problems.push(`${where}: no X-Request-Id`);
    if (response.status >= 500) problems.push(`${where}: a server error`);
    if (response.status >= 400 && response.method !== 'HEAD') {
      if (/\bat .+:\d+:\d+|node_modules|\/dist\/|\/src\/|Error:/.test(response.text)) problems.push(`${where}: leaks internals: ${response.text}`);
      if (!response.headers.get('content-type')?.startsWith('application/json')) problems.push(`${where}: not JSON`);
    }
    if (hostname().length >= 4 && response.text.includes(hostname())) problems.push(`${where}: names the host ${hostname()}`);
    if (/127\.0\.0\.1|ECONNREFUSED|ETIMEDOUT|"checks"|"ms"/.test(response.text)) problems.push(`${where}: leaks an address or readiness detail: ${response.text.slice(0, 200)}`);
  }
  return { checked: fromApi.length, problems };
}
