import type { Logger, NewEntryRow } from '@inflow/shared';
import type { InsertedEntry } from './entries.repository.ts';

/** What the batch line says of each entry it wrote. */
export interface PersistedEntryLog {
  id: string;
  /** The API replica that accepted the entry (its 202). */
  acceptedBy: string;
  /** Milliseconds from acceptance to the commit of the row. */
  queueLatencyMs: number;
}

/**
 * One line per committed INSERT, naming every entry it wrote, instead of one line per entry: at
 * full load an INSERT carries tens of rows, and each log line costs a write, then the container
 * engine's read and encoding. `grep <entry id>` still finds the entry's line, with the replica
 * that accepted it and the worker that persisted it; the API's request line and nginx's access
 * line hold the rest of its path. A redelivery that found its row already written has a line of
 * its own (entries.consumer.ts).
 */
export function logPersisted(logger: Logger, persistedBy: string, rows: readonly NewEntryRow[], inserted: readonly InsertedEntry[]): void {
  if (inserted.length === 0) return;
  const acceptedBy = new Map(rows.map((row) => [row.id, row.accepted_by]));
  const entries: PersistedEntryLog[] = inserted.map(({ id, queueLatencyMs }) => ({ id, acceptedBy: acceptedBy.get(id) ?? '', queueLatencyMs }));
  logger.info({ persistedBy, count: entries.length, entries }, 'entries persisted');
}
