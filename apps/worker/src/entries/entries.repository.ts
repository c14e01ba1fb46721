import type { Database, NewEntryRow } from '@inflow/shared';
import type { Kysely } from 'kysely';

export interface InsertedEntry {
  id: string;
  /** Milliseconds from acceptance by the API to the commit of the row. */
  queueLatencyMs: number;
}

/** The only writer of the entries table. */
export class EntriesRepository {
  readonly #db: Kysely<Database>;

  constructor(db: Kysely<Database>) {
    this.#db = db;
  }

  /**
   * Inserts the rows in one statement. A row whose id exists already (a redelivered job) is
   * skipped, not an error, and is absent from the result.
   */
  async insertMany(rows: readonly NewEntryRow[]): Promise<InsertedEntry[]> {
    if (rows.length === 0) return [];
    const inserted = await this.#db
      .insertInto('entries')
      .values([...rows])
      .onConflict((oc) => oc.column('id').doNothing())
      .returning(['id', 'created_at', 'persisted_at'])
      .execute();
    return inserted.map((row) => ({
      id: row.id,
      queueLatencyMs: row.persisted_at.getTime() - row.created_at.getTime(),
    }));
  }
}
