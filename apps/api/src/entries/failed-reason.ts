/**
 * A failed entry's reason as a client may read it (GET /api/entries/:id, the event stream). The
 * worker records the error that failed the job (BullMQ's failedReason); for a row the database
 * refused, or a write that failed in some other way, that is the raw text of PostgreSQL or of a
 * socket (`connect ECONNREFUSED 172.28.0.3:5432`, a constraint's name). That stays in Redis and
 * in the worker's log, for whoever replays the entry; clients get a sentence of our own.
 *
 * The worker's own reasons are kept: `invalid job payload: <field>: <message>` is made of the
 * shared entry schema's messages (apps/worker/src/entries/entries.consumer.ts).
 */
export function publicFailedReason(reason: string | undefined): string {
  if (reason === undefined || reason === '') return 'the entry could not be stored';
  if (/^invalid job payload: [A-Za-z.]+: /.test(reason) && !/[\r\n]/.test(reason) && reason.length <= 300) return reason;
  if (reason.startsWith('the database refused the entry')) return 'the database refused the entry';
  return 'the entry could not be stored';
}
