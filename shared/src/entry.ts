import { z } from 'zod';
import { AUTHOR_MAX_MARKS_PER_BASE, codePointLength, ENTRY_LIMITS, LINE_SEPARATORS, normaliseText, stackedMarks } from './entry-rules.ts';

// C0 controls, DEL and C1 controls. A message may still hold newlines.
/* eslint-disable no-control-regex -- matching control characters is the point */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/u;
const CONTROL_CHARS_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;
/* eslint-enable no-control-regex */

/**
 * The rule for invisible formatting characters, in one place (the API validates with it, and the
 * worker re-validates every job with the same schema).
 *
 * **author** refuses every character of Unicode's general category Cf ("format"): the bidi
 * controls (U+061C, U+200E/U+200F, U+202A-U+202E, U+2066-U+2069), the zero-width characters
 * (U+200B-U+200D, U+2060, U+FEFF), the soft hyphen U+00AD, the tag characters U+E0001-U+E007F,
 * and the rest of the category as the running Node's Unicode tables define it. A name is shown
 * inline, next to other text, and tells readers who wrote what: an override (U+202E) can make it
 * read as another string, an invisible character makes two different names look the same. The
 * price, paid on purpose: emoji ZWJ sequences (woman technologist, U+1F469 U+200D U+1F4BB), the
 * tag-sequence flags (England's) and the ZWNJ some Persian and Indic spellings use are refused in
 * names too. Characters that are invisible but not in Cf (Hangul fillers U+3164, braille blank
 * U+2800, variation selectors) are not covered by this rule.
 * https://www.unicode.org/reports/tr9/ (bidi), https://www.unicode.org/reports/tr36/ (spoofing)
 *
 * **message** keeps them: it is free text, where right-to-left marks and isolates, ZWJ emoji and
 * ZWNJ have real uses, and the page shows each message as a paragraph of its own, so an embedding
 * or override ends with the message and cannot reorder anything else on the page.
 *
 * Both fields are trimmed first (JavaScript's trim removes a leading or trailing U+FEFF), and the
 * error names the first character refused, since it cannot be seen.
 */
const FORMAT_CHARS = /\p{Cf}/u;

/** A character the field refuses, and how the refusal reads. */
interface ForbiddenChars {
  /** The first refused character (or run of them) in the value, if any. */
  find: (value: string) => string | undefined;
  /** The end of "<field> must not contain …", given the first character found. */
  describe: (found: string) => string;
}

const codePointName = (char: string): string => `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;

const matching = (pattern: RegExp) => (value: string) => pattern.exec(value)?.[0];
const controls = (pattern: RegExp, what: string): ForbiddenChars => ({ find: matching(pattern), describe: () => what });
const formatChars: ForbiddenChars = {
  find: matching(FORMAT_CHARS),
  describe: (found) => `invisible formatting characters such as bidi controls or zero-width spaces (found ${codePointName(found)})`,
};

function textField(name: string, maxChars: number, forbidden: readonly ForbiddenChars[]) {
  return z
    // zod v4 leaves `input` out of the final issues, so "missing" and "wrong type" are told
    // apart here, where the input is still known.
    .string({ error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`) })
    .transform(normaliseText)
    .check((ctx) => {
      const value = ctx.value;
      // A lone surrogate cannot be encoded as UTF-8: PostgreSQL would reject the row later,
      // after the API had already promised to keep it.
      if (!value.isWellFormed()) {
        ctx.issues.push({ code: 'custom', input: value, message: `${name} contains invalid Unicode (a lone surrogate)` });
        return;
      }
      const length = codePointLength(value);
      if (length < 1 || length > maxChars) {
        ctx.issues.push({
          code: 'custom',
          input: value,
          message: `${name} must be 1 to ${maxChars} characters after trimming (got ${length})`,
        });
        return;
      }
      for (const { find, describe } of forbidden) {
        const found = find(value);
        if (found !== undefined) {
          ctx.issues.push({ code: 'custom', input: value, message: `${name} must not contain ${describe(found)}` });
          return;
        }
      }
    });
}

/** More than AUTHOR_MAX_MARKS_PER_BASE combining marks in a row (entry-rules.ts says why that many). */
const stackedMarksRule: ForbiddenChars = {
  find: stackedMarks,
  describe: (found) => `more than ${AUTHOR_MAX_MARKS_PER_BASE} combining marks on one character (found ${Array.from(found).length} in a row)`,
};

// **author** is one line that reads as what it is: no line or paragraph separators (U+2028,
// U+2029; control characters are refused already), no stack of combining marks.
export const authorSchema = textField('author', ENTRY_LIMITS.authorMaxChars, [
  controls(CONTROL_CHARS, 'control characters'),
  { find: matching(LINE_SEPARATORS), describe: (found) => `line or paragraph separators: a name is one line (found ${codePointName(found)})` },
  formatChars,
  stackedMarksRule,
]);
export const messageSchema = textField('message', ENTRY_LIMITS.messageMaxChars, [
  controls(CONTROL_CHARS_EXCEPT_NEWLINE, 'control characters other than newline'),
]);

/** What a client submits. Unknown fields are refused rather than silently dropped. */
export const newEntrySchema = z.strictObject(
  { author: authorSchema, message: messageSchema },
  {
    error: (issue) =>
      issue.code === 'invalid_type' ? (issue.input === undefined ? 'body is required' : 'the body must be a JSON object') : undefined,
  },
);

export type NewEntry = z.output<typeof newEntrySchema>;

/** The entry id is a UUID made by the API (version 7, so ids sort by time of acceptance). */
export const entryIdSchema = z.uuid({ error: 'id must be a UUID' });

/** An entry as the API returns it. */
export interface Entry {
  id: string;
  author: string;
  message: string;
  acceptedBy: string;
  persistedBy: string;
  createdAt: string;
  persistedAt: string;
}

export interface ValidationFailure {
  field: string;
  message: string;
}

/** Turns the first zod issue into the field it names and a sentence a person can act on. */
export function describeIssue(error: z.ZodError): ValidationFailure {
  const issue = error.issues[0];
  if (!issue) return { field: 'body', message: 'invalid input' };
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? 'unknown';
    return { field: key, message: `unknown field "${key}"` };
  }
  const field = issue.path.map(String).join('.') || 'body';
  // Only parses with { reportInput: true } keep `input` on the issue; without it, the schema's
  // own message (above) says whether the value was missing.
  if (issue.code === 'invalid_type' && 'input' in issue && issue.input === undefined) {
    return { field, message: `${field} is required` };
  }
  return { field, message: issue.message };
}
