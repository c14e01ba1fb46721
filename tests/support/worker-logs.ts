/** Reading the worker's "entries persisted" lines: one per committed INSERT, naming each entry it wrote. */

export interface PersistedEntryLine {
  id: string;
  acceptedBy: string;
  queueLatencyMs: number;
}

/** The entries a worker log line says it persisted (none for any other line). */
export function persistedEntries(line: Record<string, unknown>): PersistedEntryLine[] {
  return line['msg'] === 'entries persisted' && Array.isArray(line['entries']) ? (line['entries'] as PersistedEntryLine[]) : [];
}

/** What the line says of entry `id`, or undefined when it does not name it as persisted. */
export function persistedEntry(line: Record<string, unknown>, id: string): PersistedEntryLine | undefined {
  return persistedEntries(line).find((entry) => entry.id === id);
}
