import { entryIdSchema } from '@inflow/shared';

/** Where a newest-first page ends: the last row's created_at and id (the paging index's key). */
export interface Cursor {
  createdAt: Date;
  id: string;
}

// Opaque to clients on purpose, so the key can change without breaking them.
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(`${cursor.createdAt.toISOString()}|${cursor.id}`, 'utf8').toString('base64url');
}

/** The cursor, or undefined when `value` is not one this API made. */
export function decodeCursor(value: string): Cursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(value)) return undefined;
  const [time, id, extra] = Buffer.from(value, 'base64url').toString('utf8').split('|');
  if (time === undefined || id === undefined || extra !== undefined) return undefined;
  const createdAt = new Date(time);
  if (Number.isNaN(createdAt.getTime()) || createdAt.toISOString() !== time) return undefined;
  if (!entryIdSchema.safeParse(id).success) return undefined;
  return { createdAt, id };
}
