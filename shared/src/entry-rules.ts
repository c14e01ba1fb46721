/**
 * The rules of an entry that need no validation library: its limits, how its text is normalised
 * and counted, and the states it goes through. entry.ts builds the API's zod schemas on them, and
 * the page (apps/api/page) bundles this module, so the browser counts and normalises as the API
 * does. It imports nothing: whatever it imported would be shipped to every browser.
 */

/**
 * The limits of an entry. init.sql enforces the same numbers with CHECK constraints, so a
 * change here needs a migration there.
 */
export const ENTRY_LIMITS = Object.freeze({
  authorMaxChars: 80,
  messageMaxChars: 2000,
});

/**
 * A name is one line that reads as what it is. Combining marks (Unicode category M) on one base
 * character: at most this many in a row. Written languages need few: Vietnamese stacks two on a
 * vowel even in decomposed form (U+1EC7 = e + U+0323 + U+0302), Thai a vowel and a tone mark,
 * pointed Hebrew up to three or four (dagesh, vowel point, cantillation); a run longer than four
 * is "Zalgo" text that spills over the lines around it. (Unicode's stream-safe format, UAX #15,
 * allows 30, a bound for processing, not for legibility.)
 */
export const AUTHOR_MAX_MARKS_PER_BASE = 4;

/** The first run of more than AUTHOR_MAX_MARKS_PER_BASE combining marks in `value`, if any. */
export const stackedMarks = (value: string): string | undefined =>
  new RegExp(`\\p{M}{${AUTHOR_MAX_MARKS_PER_BASE + 1},}`, 'u').exec(value)?.[0];

/** Line and paragraph separators (U+2028, U+2029; categories Zl and Zp): a line break by another name. */
export const LINE_SEPARATORS = /[\p{Zl}\p{Zp}]/u;

/** What is kept of a submitted field: every line ending becomes "\n", then the ends are trimmed. */
export const normaliseText = (value: string): string => value.replace(/\r\n?/g, '\n').trim();

/** Lengths are counted in Unicode code points, which is what PostgreSQL's char_length() counts. */
export const codePointLength = (value: string): number => Array.from(value).length;

/**
 * The states of an entry, in the order it can move through them: queued in Redis, processing by
 * the worker, then persisted in PostgreSQL, or failed for good. A failed entry can still be
 * persisted (an operator replays it); a persisted one is final.
 */
export const ENTRY_STATUSES = Object.freeze(['queued', 'processing', 'failed', 'persisted'] as const);

export type EntryStatus = (typeof ENTRY_STATUSES)[number];

export const isEntryStatus = (value: unknown): value is EntryStatus =>
  typeof value === 'string' && (ENTRY_STATUSES as readonly string[]).includes(value);
