/**
 * The oracle of the fuzz properties: the entry rules as docs/api.md states them (what the API
 * stores for a body, or that it must refuse it), and what every answer must look like.
 */
import type { RawResult } from '@inflow/test-support';

export type Answer = Pick<RawResult, 'status' | 'headers' | 'text'>;

const describe = (method: string, path: string, answer: Answer): string =>
  `${method} ${path.slice(0, 120)} → ${answer.status} ${answer.text.slice(0, 200)}`;

/** Never a 5xx; an error answer (with a body) is JSON in the error shape. */
export function wellFormed(method: string, path: string, answer: Answer): void {
  if (answer.status >= 500 || answer.status < 100) throw new Error(`server error: ${describe(method, path, answer)}`);
  if (answer.status < 400 || method === 'HEAD') return;
  let body: unknown;
  try {
    body = JSON.parse(answer.text);
  } catch {
    throw new Error(`error answer is not JSON: ${describe(method, path, answer)}`);
  }
  const error = (body as { error?: { code?: unknown; message?: unknown } }).error;
  if (typeof error?.code !== 'string' || typeof error.message !== 'string') {
    throw new Error(`error answer not in the error shape: ${describe(method, path, answer)}`);
  }
  if (!String(answer.headers['content-type']).startsWith('application/json')) {
    throw new Error(`error answer is not application/json: ${describe(method, path, answer)}`);
  }
}

export function expectStatus(expected: readonly number[], method: string, path: string, answer: Answer): void {
  wellFormed(method, path, answer);
  if (!expected.includes(answer.status)) throw new Error(`expected ${expected.join(' or ')}: ${describe(method, path, answer)}`);
}

/* eslint-disable no-control-regex -- control characters are what these rules are about */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/u;
const CONTROL_BUT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;
/* eslint-enable no-control-regex */
// Names also refuse invisible formatting characters (bidi controls, zero-width ones, BOM, …),
// line and paragraph separators (a name is one line), and more than 4 combining marks in a row
// (one character buried under marks).
const NAME_FORBIDDEN = new RegExp(`${CONTROL.source}|\\p{Cf}|\\p{Zl}|\\p{Zp}|\\p{M}{5,}`, 'u');

/** The stored form of a field, or undefined when the API must refuse it. */
function validText(value: unknown, max: number, forbidden: RegExp): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.replace(/\r\n?/g, '\n').trim();
  if (!text.isWellFormed()) return undefined;
  const length = Array.from(text).length;
  if (length < 1 || length > max || forbidden.test(text)) return undefined;
  return text;
}

export function expectedEntry(value: unknown): { author: string; message: string } | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 2 || !keys.includes('author') || !keys.includes('message')) return undefined;
  const { author, message } = value as { author: unknown; message: unknown };
  const a = validText(author, 80, NAME_FORBIDDEN);
  const m = validText(message, 2000, CONTROL_BUT_NEWLINE);
  return a === undefined || m === undefined ? undefined : { author: a, message: m };
}
