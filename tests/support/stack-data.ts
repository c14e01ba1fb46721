/**
 * What the running compose stack holds: the queue (GET /api/stats through nginx) and the rows
 * (psql in the postgres container), for suites that check that nothing was lost or duplicated.
 */
import { BASE_URL, docker, idOf } from './compose.ts';
import { waitFor } from './wait.ts';

export const DB_USER = process.env['DB_USER'] ?? 'inflow';
export const DB_NAME = process.env['DB_NAME'] ?? 'inflow';

/** Runs SQL in the postgres container (docker exec: quicker than compose's); rows as arrays of fields. */
export async function psql(sql: string): Promise<string[][]> {
  const stdout = await docker(['exec', idOf('postgres'), 'psql', '-U', DB_USER, '-d', DB_NAME, '-v', 'ON_ERROR_STOP=1', '-At', '-F', '\t', '-c', sql]);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}

/** A SQL string literal. */
export const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;

export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  failed: number;
}

/** GET /api/stats through nginx; undefined while it does not answer 200. */
export async function queueCounts(): Promise<QueueCounts | undefined> {
  try {
    const response = await fetch(`${BASE_URL}/api/stats`, { signal: AbortSignal.timeout(5_000) });
    if (response.status !== 200) return undefined;
    return ((await response.json()) as { queue: QueueCounts }).queue;
  } catch {
    return undefined;
  }
}

/** Whether nothing is waiting, active or delayed in the queue (false while /api/stats does not answer). */
export async function queueIsEmpty(): Promise<boolean> {
  const counts = await queueCounts();
  return counts !== undefined && counts.waiting + counts.active + counts.delayed === 0;
}

/** The rows of one author: id and message. */
export async function rowsOf(author: string): Promise<{ id: string; message: string }[]> {
  return (await psql(`SELECT id, message FROM entries WHERE author = ${literal(author)}`)).map(([id = '', message = '']) => ({ id, message }));
}

export async function countRows(author?: string): Promise<number> {
  const where = author === undefined ? '' : ` WHERE author = ${literal(author)}`;
  return Number((await psql(`SELECT count(*) FROM entries${where}`))[0]?.[0]);
}

/** Ids that occur in more than one row (the primary key makes this impossible; checked anyway). */
export async function duplicateIds(): Promise<number> {
  return Number((await psql('SELECT count(*) FROM (SELECT id FROM entries GROUP BY id HAVING count(*) > 1) AS d'))[0]?.[0]);
}

/** Waits until the queue is empty (nothing waiting, active or delayed) and `author` has `rows` rows. */
export async function waitDrained(author: string, rows: number, timeoutMs = 180_000): Promise<QueueCounts> {
  return waitFor(
    async () => {
      const counts = await queueCounts();
      if (counts === undefined || counts.waiting + counts.active + counts.delayed > 0) return undefined;
      return (await countRows(author)) >= rows ? counts : undefined;
    },
    { timeoutMs, what: `the queue to drain and ${rows} rows of ${author}`, intervalMs: 1_000 },
  );
}
