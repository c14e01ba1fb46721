/**
 * Reconciles what a load was told with what PostgreSQL holds, and turns it into one row of the
 * chaos table.
 */
import type { Attempt, Load } from './load.ts';
import { rowsOf } from '@inflow/test-support';

export interface Expectations {
  /** A non-2xx GET that this fault may cause (anything else is a failure). */
  getError?: (attempt: Attempt) => boolean;
  /** A non-202 POST attempt that this fault may cause (the client retries it with its key). */
  postError?: (attempt: Attempt) => boolean;
  /**
   * Rows without a 202: entries whose POST failed for the client although Redis had taken the job
   * (the request was in flight when the fault hit). Documented, allowed only where the fault can
   * cut a request after Redis answered it.
   */
  inFlightAllowed?: boolean;
}

export interface ScenarioResult {
  id: string;
  name: string;
  load: string;
  injected: string;
  seconds: number;
  requests: number;
  ok2xx: number;
  /** Non-2xx outcomes by "METHOD status" (or network error name). */
  errors: Record<string, number>;
  failedGets: number;
  /** Entries the clients submitted (one Idempotency-Key each), and how many got a 202. */
  submitted: number;
  accepted: number;
  /** Submissions still without a 202 when the retries ran out. */
  neverAccepted: number;
  /** 202 answers with Idempotent-Replayed: true (a retry of a POST whose first attempt had enqueued). */
  replayed: number;
  persisted: number;
  lost: number;
  duplicated: number;
  /** Rows whose POST never got a 202 (in flight when the fault hit). */
  inFlightPersisted: number;
  notes: string[];
  problems: string[];
  passed: boolean;
}

function key(attempt: Attempt): string {
  return `${attempt.method} ${String(attempt.outcome)}`;
}

/** Compares the load's record with the rows of its author. The queue must have drained first. */
export async function reconcile(
  scenario: { id: string; name: string; load: string; injected: string },
  load: Load,
  author: string,
  expectations: Expectations,
  startedAt: number,
): Promise<ScenarioResult> {
  const problems: string[] = [];
  const errors: Record<string, number> = {};
  let ok2xx = 0;
  let failedGets = 0;
  let badShape = 0;
  const unexpected: string[] = [];
  for (const attempt of load.attempts) {
    const ok = typeof attempt.outcome === 'number' && attempt.outcome >= 200 && attempt.outcome < 300;
    if (ok) {
      ok2xx += 1;
      continue;
    }
    errors[key(attempt)] = (errors[key(attempt)] ?? 0) + 1;
    if (attempt.errorShape === false) badShape += 1;
    if (attempt.method === 'GET') {
      failedGets += 1;
      if (expectations.getError?.(attempt) !== true) unexpected.push(`${key(attempt)} ${attempt.path} at ${(attempt.sentAt / 1000).toFixed(1)} s`);
    } else if (expectations.postError?.(attempt) !== true) {
      unexpected.push(`${key(attempt)} at ${(attempt.sentAt / 1000).toFixed(1)} s`);
    }
  }
  if (unexpected.length > 0) problems.push(`${unexpected.length} unexpected failures, e.g. ${unexpected.slice(0, 5).join('; ')}`);
  if (badShape > 0) problems.push(`${badShape} error answers not in the {"error":{"code","message"}} shape`);

  const rows = await rowsOf(author);
  const rowsByKey = new Map<string, { id: string }[]>();
  const stray: string[] = [];
  const byMessage = new Map(load.submissions.map((submission) => [submission.message, submission]));
  for (const row of rows) {
    const submission = byMessage.get(row.message);
    if (submission === undefined) {
      stray.push(row.id);
      continue;
    }
    const list = rowsByKey.get(submission.key) ?? [];
    list.push(row);
    rowsByKey.set(submission.key, list);
  }

  let accepted = 0;
  let persisted = 0;
  let lost = 0;
  let duplicated = 0;
  let inFlight = 0;
  let neverAccepted = 0;
  let conflicting = 0;
  let mismatched = 0;
  for (const submission of load.submissions) {
    const found = rowsByKey.get(submission.key) ?? [];
    if (found.length > 1) duplicated += found.length - 1;
    if (submission.ids.size > 1) conflicting += 1;
    if (submission.accepted) {
      accepted += 1;
      const id = [...submission.ids][0];
      if (found.some((row) => row.id === id)) persisted += 1;
      else lost += 1;
      // The key's only row under another id than the 202 named: the client holds a wrong id.
      if (found.length === 1 && found[0]?.id !== id) mismatched += 1;
    } else {
      neverAccepted += 1;
      if (found.length > 0) inFlight += 1;
    }
  }
  const replayed = load.attempts.filter((attempt) => attempt.replayed === true).length;

  if (lost > 0) problems.push(`${lost} accepted (202) entries were never persisted`);
  if (duplicated > 0) problems.push(`${duplicated} duplicated rows`);
  if (mismatched > 0) problems.push(`${mismatched} entries persisted under another id than their 202 named`);
  if (conflicting > 0) problems.push(`${conflicting} Idempotency-Keys answered 202 with different ids`);
  if (stray.length > 0) problems.push(`${stray.length} rows that no client submitted`);
  if (neverAccepted > 0) problems.push(`${neverAccepted} submissions never got a 202, even retried`);
  if (inFlight > 0 && expectations.inFlightAllowed !== true) problems.push(`${inFlight} rows persisted without a 202`);

  return {
    ...scenario,
    seconds: Math.round((Date.now() - startedAt) / 1000),
    requests: load.attempts.length,
    ok2xx,
    errors,
    failedGets,
    submitted: load.submissions.length,
    accepted,
    neverAccepted,
    replayed,
    persisted,
    lost,
    duplicated,
    inFlightPersisted: inFlight,
    notes: [],
    problems,
    passed: problems.length === 0,
  };
}

/**
 * A scenario's result with what the scenario itself noted and found wrong (fault timings, exit
 * codes) besides the reconciliation's own notes and problems; any problem fails the scenario.
 */
export function withFindings(result: ScenarioResult, notes: readonly string[], problems: readonly string[]): ScenarioResult {
  return {
    ...result,
    notes: [...notes, ...result.notes],
    problems: [...result.problems, ...problems],
    passed: result.passed && problems.length === 0,
  };
}

/** An Expectations predicate: the attempt was answered with one of these statuses. */
export const isStatus =
  (...statuses: number[]) =>
  (attempt: Attempt): boolean =>
    typeof attempt.outcome === 'number' && statuses.includes(attempt.outcome);
