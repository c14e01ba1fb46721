import type { Database, NewEntryRow } from '@inflow/shared';
import { sql, type Kysely } from 'kysely';

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
   *
   * One array parameter per column, unnested into rows by PostgreSQL, instead of a VALUES list
   * with one parameter per value: the statement has the same six parameters whatever the batch
   * size, so neither the query builder nor the driver does work per value.
   * https://www.postgresql.org/docs/current/functions-array.html (unnest with several arrays)
   */
  async insertMany(rows: readonly NewEntryRow[]): Promise<InsertedEntry[]> {
    if (rows.length === 0) return [];
    const inserted = await this.#insert(rows);
    return inserted.rows.map((row) => ({
      id: row.id,
      queueLatencyMs: row.persisted_at.getTime() - row.created_at.getTime(),
    }));
  }

  /**
   * Rejects with PostgreSQL's own error when the database would refuse insertMany for its own
   * sake, and writes nothing: the same INSERT with no rows. PostgreSQL still logs in, parses it
   * against the table and its columns, checks the INSERT privilege and refuses it in a read-only
   * transaction (a standby, default_transaction_read_only) before it looks at a row, which a
   * `select 1` does not. The DatabaseGate's probe.
   * https://www.postgresql.org/docs/current/hot-standby.html (what a standby refuses)
   */
  async probeWrite(): Promise<void> {
    await this.#insert([]);
  }

  #insert(rows: readonly NewEntryRow[]) {
    const column = <K extends keyof NewEntryRow>(name: K) => rows.map((row) => row[name]);
    return sql<{ id: string; created_at: Date; persisted_at: Date }>`
      INSERT INTO entries (id, author, message, accepted_by, persisted_by, created_at)
      SELECT * FROM unnest(
        ${column('id')}::uuid[], ${column('author')}::text[], ${column('message')}::text[],
        ${column('accepted_by')}::text[], ${column('persisted_by')}::text[], ${column('created_at')}::timestamptz[]
      )
      ON CONFLICT (id) DO NOTHING
      RETURNING id, created_at, persisted_at
    `.execute(this.#db);
  }
}
