/**
 * The retry budget the chaos stack runs with (run.ts sets ENTRY_JOB_ATTEMPTS and
 * ENTRY_RETRY_DELAY_MS from it): short, so that scenario 7 can keep PostgreSQL down ten times as
 * long as the whole budget within a minute, and no scenario may end with a failed job. A stack
 * started otherwise (run.ts --reuse) keeps its own budget.
 */
export const CHAOS_RETRY = { attempts: 3, delayMs: 1_000 };

/** The sum of the exponential backoffs between the attempts: 1 s + 2 s. */
export const RETRY_BUDGET_MS = CHAOS_RETRY.delayMs * (2 ** (CHAOS_RETRY.attempts - 1) - 1);
