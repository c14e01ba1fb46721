/**
 * What a load (tests/chaos/load.ts) was told, against the rows of its author in PostgreSQL: the
 * counts every Swarm test prints, and the assertions a load must pass.
 */
import type t from 'tap';
import type { Attempt, Load } from '../chaos/load.ts';
import type { Stack } from './swarm.ts';

type Assert = Parameters<Parameters<typeof t.test>[0]>[0];

export const isOk = (attempt: Attempt): boolean => typeof attempt.outcome === 'number' && attempt.outcome >= 200 && attempt.outcome < 300;

export const describe = (attempt: Attempt): string => `${attempt.method} ${attempt.path} ${String(attempt.outcome)} (sent ${attempt.sentAt} ms, answered ${attempt.answeredAt} ms)`;

/** Failed attempts by outcome and method, e.g. {"POST 504": 3}. */
export function failureCounts(attempts: readonly Attempt[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const attempt of attempts.filter((candidate) => !isOk(candidate))) {
    const key = `${attempt.method} ${String(attempt.outcome)}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

export async function reconcile(stack: Stack, load: Load, author: string) {
  const failed = load.attempts.filter((attempt) => !isOk(attempt));
  const rows = await stack.rowsOf(author);
  const rowsByMessage = new Map<string, string[]>();
  for (const row of rows) rowsByMessage.set(row.message, [...(rowsByMessage.get(row.message) ?? []), row.id]);
  const submitted = new Set(load.submissions.map((submission) => submission.message));
  let lost = 0;
  let neverAccepted = 0;
  let conflicting = 0;
  for (const submission of load.submissions) {
    if (!submission.accepted) {
      neverAccepted += 1;
      continue;
    }
    if (submission.ids.size > 1) conflicting += 1;
    const id = [...submission.ids][0];
    if (!(rowsByMessage.get(submission.message) ?? []).includes(id ?? '')) lost += 1;
  }
  return {
    requests: load.attempts.length,
    gets: load.attempts.filter((attempt) => attempt.method === 'GET').length,
    accepted: load.submissions.filter((submission) => submission.accepted).length,
    failed,
    lost,
    neverAccepted,
    conflicting,
    duplicated: [...rowsByMessage.values()].filter((ids) => ids.length > 1).length,
    stray: rows.filter((row) => !submitted.has(row.message)).length,
    persistedBy: new Set(rows.map((row) => row.persistedBy)),
  };
}

export type Reconciled = Awaited<ReturnType<typeof reconcile>>;

/** One line of counts for the test's output. */
export const summary = (result: Reconciled): string =>
  `${result.requests} requests (${result.gets} GET), ${result.accepted} entries accepted, ${result.failed.length} requests failed ${JSON.stringify(failureCounts(result.failed))}, ` +
  `${result.lost} lost, ${result.duplicated} duplicated, ${result.neverAccepted} never accepted; persisted by ${[...result.persistedBy].sort().join(', ')}`;

/** Every 202 persisted exactly once, nothing stray. */
export function assertNothingLost(t: Assert, result: Reconciled): void {
  t.ok(result.accepted > 0, 'entries were accepted');
  t.equal(result.lost, 0, 'every 202 is a row under the id it named');
  t.equal(result.duplicated, 0, 'no entry stored twice');
  t.equal(result.conflicting, 0, 'no Idempotency-Key answered with two ids');
  t.equal(result.stray, 0, 'no row that no client submitted');
}

/** The assertions of a load that nothing may disturb: no failed request, every entry accepted, every 202 persisted once. */
export function assertReconciled(t: Assert, result: Reconciled, options: { gets: boolean }): void {
  t.comment(summary(result));
  t.same(result.failed.slice(0, 20).map(describe), [], `no failed request (of ${result.requests}; ${result.failed.length} failed)`);
  if (options.gets) t.ok(result.gets > 0, 'the load sent GETs too');
  t.equal(result.neverAccepted, 0, 'every entry submitted got a 202');
  assertNothingLost(t, result);
}
