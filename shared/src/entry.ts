import { z } from 'zod';

/**
 * The limits of an entry. init.sql enforces the same numbers with CHECK constraints, so a
 * change here needs a migration there.
 */
export const ENTRY_LIMITS = Object.freeze({
  authorMaxChars: 80,
  messageMaxChars: 2000,
});

// Lengths are counted in Unicode code points, which is what PostgreSQL's char_length() counts.
const codePointLength = (value: string): number => Array.from(value).length;

// C0 controls, DEL and C1 controls. A message may still hold newlines.
/* eslint-disable no-control-regex -- matching control characters is the point */
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/u;
const CONTROL_CHARS_EXCEPT_NEWLINE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u;
/* eslint-enable no-control-regex */

function textField(name: string, maxChars: number, forbidden: RegExp, forbiddenHint: string) {
  return z
    // zod v4 leaves `input` out of the final issues, so "missing" and "wrong type" are told
    // apart here, where the input is still known.
    .string({ error: (issue) => (issue.input === undefined ? `${name} is required` : `${name} must be a string`) })
    .transform((value) => value.replace(/\r\n?/g, '\n').trim())
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
      if (forbidden.test(value)) {
        ctx.issues.push({ code: 'custom', input: value, message: `${name} must not contain ${forbiddenHint}` });
      }
    });
}

export const authorSchema = textField('author', ENTRY_LIMITS.authorMaxChars, CONTROL_CHARS, 'control characters');
export const messageSchema = textField(
  'message',
  ENTRY_LIMITS.messageMaxChars,
  CONTROL_CHARS_EXCEPT_NEWLINE,
  'control characters other than newline',
);

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
