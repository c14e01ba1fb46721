import type { Database, Entry, EntryRow } from '@inflow/shared';
import type { Kysely } from 'kysely';
import type { Cursor } from './cursor.ts';

export function toEntry(row: EntryRow): Entry {
  return {
    id: row.id,
    author: row.author,
    message: row.message,
    acceptedBy: row.accepted_by,
    persistedBy: row.persisted_by,
    createdAt: row.created_at.toISOString(),
    persistedAt: row.persisted_at.toISOString(),
  };
}

/**
 * Reads of persisted entries. The worker is the only writer. Pages come from `listDb`, the
 * list reads' share of the pool, and everything else from `db`, so a burst of large pages waits
 * for its own connections only (docs/api.md#capacity-of-a-replica).
 */
export class EntriesRepository {
  readonly #db: Kysely<Database>;
  readonly #listDb: Kysely<Database>;

  constructor(db: Kysely<Database>, listDb: Kysely<Database> = db) {
    this.#db = db;
    this.#listDb = listDb;
  }

  async findById(id: string): Promise<EntryRow | undefined> {
    return this.#db.selectFrom('entries').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The rows of those ids that exist, in no particular order. */
  async findByIds(ids: readonly string[]): Promise<EntryRow[]> {
    if (ids.length === 0) return [];
    return this.#db.selectFrom('entries').selectAll().where('id', 'in', ids).execute();
  }

  async exists(id: string): Promise<boolean> {
    const row = await this.#db.selectFrom('entries').select('id').where('id', '=', id).executeTakeFirst();
    return row !== undefined;
  }

  /** Newest first, keyset-paged on (created_at, id): stable while new rows arrive. */
  async listNewestFirst(limit: number, before: Cursor | undefined): Promise<EntryRow[]> {
    let query = this.#listDb
      .selectFrom('entries')
      .selectAll()
      .orderBy('created_at', 'desc')
      .orderBy('id', 'desc')
      .limit(limit);
    if (before !== undefined) {
      query = query.where((eb) =>
        eb(eb.refTuple('created_at', 'id'), '<', eb.tuple(before.createdAt, before.id)),
      );
    }
    return query.execute();
  }
}
