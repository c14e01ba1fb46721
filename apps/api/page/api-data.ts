/**
 * Reading what the API and the event stream send: JSON that may be missing or malformed, objects
 * of a shape the page checks before it trusts them. Anything unexpected reads as "nothing".
 */
import { isEntryStatus, type EntryStatus } from '@inflow/shared/entry-rules';
import type { EntryUpdate } from './entry-model.ts';

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** The body as JSON, or undefined when there is none (an nginx error page, a cut connection). */
export async function readJson(response: Response): Promise<unknown> {
  try {
    return await response.json();
  } catch {
    return undefined;
  }
}

/** An event's data as JSON, or undefined. */
export function parseJson(text: unknown): unknown {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The `key` of an object when it is a string. */
export const stringField = (value: unknown, key: string): string | undefined =>
  isRecord(value) && typeof value[key] === 'string' ? value[key] : undefined;

/** What the page uses of the API's error shape (docs/api.md#errors): `{ "error": { "code", "message", "field"? } }`. */
export function errorOf(body: unknown): { field: string | undefined; message: string | undefined } | undefined {
  const error = isRecord(body) ? body['error'] : undefined;
  return isRecord(error) ? { field: stringField(error, 'field'), message: stringField(error, 'message') } : undefined;
}

const textOrNull = (value: unknown): string | null | undefined =>
  typeof value === 'string' ? value : value === null ? null : undefined;

const UPDATE_FIELDS = ['author', 'message', 'acceptedBy', 'persistedBy', 'createdAt', 'persistedAt', 'failedReason'] as const;

/**
 * The fields the page knows from an entry the API or the stream sent; anything else is ignored.
 * `status` stands in for the object's own: GET /api/entries lists persisted entries without one.
 */
export function toUpdate(value: unknown, status?: EntryStatus): EntryUpdate | undefined {
  if (!isRecord(value) || typeof value['id'] !== 'string') return undefined;
  const update: EntryUpdate = { id: value['id'] };
  const rawStatus = status ?? value['status'];
  if (isEntryStatus(rawStatus)) update.status = rawStatus;
  for (const key of UPDATE_FIELDS) {
    const field = textOrNull(value[key]);
    if (field !== undefined) update[key] = field;
  }
  return update;
}
