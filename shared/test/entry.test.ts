import t from 'tap';
import { z } from 'zod';
import {
  authorSchema,
  describeIssue,
  ENTRY_LIMITS,
  entryIdSchema,
  messageSchema,
  newEntrySchema,
  type ValidationFailure,
} from '../src/entry.ts';

type Outcome = { ok: true; value: { author: string; message: string } } | { ok: false; failure: ValidationFailure };

function validate(body: unknown): Outcome {
  const parsed = newEntrySchema.safeParse(body);
  return parsed.success ? { ok: true, value: parsed.data } : { ok: false, failure: describeIssue(parsed.error) };
}

const EMOJI = '\u{1F600}'; // 😀: one code point, two UTF-16 code units, four UTF-8 bytes.
const FAMILY = '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}'; // 👨‍👩‍👧: one grapheme, five code points.

t.test('a plain entry passes unchanged', async (t) => {
  t.same(validate({ author: 'ada', message: 'hello, world' }), { ok: true, value: { author: 'ada', message: 'hello, world' } });
  t.same(ENTRY_LIMITS, { authorMaxChars: 80, messageMaxChars: 2000 });
  t.ok(Object.isFrozen(ENTRY_LIMITS));
});

t.test('trimming and line endings', async (t) => {
  t.same(validate({ author: '  ada\t', message: '\n hello \r\n' }), { ok: true, value: { author: 'ada', message: 'hello' } });
  t.same(validate({ author: 'ada', message: 'line 1\r\nline 2\rline 3\nline 4' }), {
    ok: true,
    value: { author: 'ada', message: 'line 1\nline 2\nline 3\nline 4' },
  });
  // JavaScript's trim also removes Unicode spaces: no-break space, line separator, BOM.
  t.same(validate({ author: '\u00a0ada\u2028', message: '\ufeffhi\u3000' }), { ok: true, value: { author: 'ada', message: 'hi' } });
  // Inner whitespace is kept.
  t.same(validate({ author: 'a  d  a', message: 'a\n\n\nb' }), { ok: true, value: { author: 'a  d  a', message: 'a\n\n\nb' } });
  // Empty after trimming is empty.
  for (const blank of ['', ' ', '\n\r\n', '\u00a0\u2003']) {
    t.match(validate({ author: blank, message: 'x' }), { ok: false, failure: { field: 'author', message: /1 to 80 characters after trimming \(got 0\)/ } });
    t.match(validate({ author: 'x', message: blank }), { ok: false, failure: { field: 'message', message: /1 to 2000 characters after trimming \(got 0\)/ } });
  }
  // A tab is a control character in the message even though trimming would eat it at the ends.
  t.match(validate({ author: 'ada', message: 'a\tb' }), { ok: false, failure: { field: 'message', message: /control characters other than newline/ } });
});

t.test('lengths are code points, at the 80 / 2000 boundary', async (t) => {
  t.same(validate({ author: 'a'.repeat(80), message: 'm'.repeat(2000) }), { ok: true, value: { author: 'a'.repeat(80), message: 'm'.repeat(2000) } });
  t.match(validate({ author: 'a'.repeat(81), message: 'm' }), { ok: false, failure: { field: 'author', message: 'author must be 1 to 80 characters after trimming (got 81)' } });
  t.match(validate({ author: 'a', message: 'm'.repeat(2001) }), {
    ok: false,
    failure: { field: 'message', message: 'message must be 1 to 2000 characters after trimming (got 2001)' },
  });

  // 80 emoji are 160 UTF-16 code units but 80 characters, as PostgreSQL's char_length counts.
  const author80 = EMOJI.repeat(80);
  t.equal(author80.length, 160);
  t.match(validate({ author: author80, message: 'x' }), { ok: true });
  t.match(validate({ author: EMOJI.repeat(81), message: 'x' }), { ok: false, failure: { field: 'author', message: /got 81/ } });
  t.match(validate({ author: 'x', message: EMOJI.repeat(2000) }), { ok: true });
  t.match(validate({ author: 'x', message: EMOJI.repeat(2001) }), { ok: false, failure: { field: 'message', message: /got 2001/ } });

  // A ZWJ sequence is one grapheme but five code points: 16 families are 80 characters.
  t.match(validate({ author: FAMILY.repeat(16), message: 'x' }), { ok: true });
  t.match(validate({ author: FAMILY.repeat(16) + 'a', message: 'x' }), { ok: false, failure: { field: 'author', message: /got 81/ } });

  // Surrounding whitespace does not count; CRLF counts as one character once it is LF.
  t.match(validate({ author: `  ${'a'.repeat(80)}  `, message: 'x' }), { ok: true });
  const crlf = 'a\r\n'.repeat(666) + 'ab'; // 666 * "a\n" + "ab" = 1334 chars, 2000 raw characters
  t.match(validate({ author: 'x', message: crlf }), { ok: true });
  const crlfLong = 'a\r\n'.repeat(1000) + 'a'; // 2001 characters after CRLF → LF
  t.match(validate({ author: 'x', message: crlfLong }), { ok: false, failure: { field: 'message', message: /got 2001/ } });
  const crlfFits = 'ab\r\n'.repeat(666) + 'ab'; // 666 * "ab\n" + "ab" = 2000 chars after normalising
  t.match(validate({ author: 'x', message: crlfFits }), { ok: true });
});

t.test('control characters', async (t) => {
  const c0 = Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code));
  const c1 = Array.from({ length: 0x21 }, (_, i) => String.fromCharCode(0x7f + i)); // DEL and C1 controls
  for (const char of [...c0, ...c1]) {
    const hex = char.charCodeAt(0).toString(16).padStart(2, '0');
    // In the middle, so trimming cannot remove it.
    t.match(validate({ author: `a${char}b`, message: 'x' }), { ok: false, failure: { field: 'author' } }, `author with \\x${hex}`);
    const message = validate({ author: 'x', message: `a${char}b` });
    if (char === '\n' || char === '\r') t.match(message, { ok: true }, `message with \\x${hex} is allowed`);
    else t.match(message, { ok: false, failure: { field: 'message', message: 'message must not contain control characters other than newline' } }, `message with \\x${hex}`);
  }
  t.match(validate({ author: 'a\nb', message: 'x' }), { ok: false, failure: { field: 'author', message: 'author must not contain control characters' } });
  t.match(validate({ author: 'a\u0000', message: 'x' }), { ok: false, failure: { field: 'author' } }, 'a NUL at the end is refused');
  t.match(validate({ author: 'x', message: '\u0000' }), { ok: false, failure: { field: 'message' } }, 'a lone NUL is refused');
  // Not controls: the character after the C1 range, and format characters.
  t.match(validate({ author: 'a\u00a0b\u00adc', message: 'zero\u200bwidth' }), { ok: true });
});

t.test('invalid Unicode: lone surrogates', async (t) => {
  for (const lone of ['\ud800', '\udfff', 'a\ud83d', '\ude00b', `${EMOJI}\ud83d`]) {
    t.match(validate({ author: lone, message: 'x' }), { ok: false, failure: { field: 'author', message: 'author contains invalid Unicode (a lone surrogate)' } });
    t.match(validate({ author: 'x', message: lone }), { ok: false, failure: { field: 'message', message: 'message contains invalid Unicode (a lone surrogate)' } });
  }
  // A proper pair is fine.
  t.match(validate({ author: '\ud83d\ude00', message: 'x' }), { ok: true });
});

t.test('right-to-left and other scripts are kept as written', async (t) => {
  const hebrew = 'שלום עולם';
  const arabic = 'مرحبا بالعالم';
  const mixed = 'abc \u202Bשלום\u202C def \u2067مرحبا\u2069';
  t.same(validate({ author: hebrew, message: arabic }), { ok: true, value: { author: hebrew, message: arabic } });
  t.same(validate({ author: 'x', message: mixed }), { ok: true, value: { author: 'x', message: mixed } });
  t.same(validate({ author: '李小龍', message: 'Ça va? Ünïcödé ✓' }), { ok: true, value: { author: '李小龍', message: 'Ça va? Ünïcödé ✓' } });
  // NFC and NFD forms are different strings and are not normalised.
  t.same(validate({ author: 'e\u0301', message: '\u00e9' }), { ok: true, value: { author: 'e\u0301', message: '\u00e9' } });
});

t.test('fields: missing, wrong type, unknown', async (t) => {
  t.same(validate({ message: 'x' }), { ok: false, failure: { field: 'author', message: 'author is required' } });
  t.same(validate({ author: 'x' }), { ok: false, failure: { field: 'message', message: 'message is required' } });
  t.same(validate({}), { ok: false, failure: { field: 'author', message: 'author is required' } });
  t.same(validate({ author: undefined, message: 'x' }), { ok: false, failure: { field: 'author', message: 'author is required' } });
  for (const wrong of [5, null, true, ['x'], { text: 'x' }]) {
    t.same(validate({ author: wrong, message: 'x' }), { ok: false, failure: { field: 'author', message: 'author must be a string' } }, `author ${JSON.stringify(wrong)}`);
    t.same(validate({ author: 'x', message: wrong }), { ok: false, failure: { field: 'message', message: 'message must be a string' } }, `message ${JSON.stringify(wrong)}`);
  }
  t.same(validate({ author: 'x', message: 'y', extra: 1 }), { ok: false, failure: { field: 'extra', message: 'unknown field "extra"' } });
  t.same(validate({ author: 'x', message: 'y', Author: 'z' }), { ok: false, failure: { field: 'Author', message: 'unknown field "Author"' } }, 'names are case-sensitive');
  t.same(validate(JSON.parse('{"author":"x","message":"y","__proto__":{"admin":true}}')), {
    ok: false,
    failure: { field: '__proto__', message: 'unknown field "__proto__"' },
  });
  // A field error is reported before an unknown field, so the client fixes what it meant to send.
  t.same(validate({ author: 5, message: 'y', extra: 1 }), { ok: false, failure: { field: 'author', message: 'author must be a string' } });
  // The output never carries unknown fields (it would have failed), nor loses known ones.
  const ok = validate({ author: ' a ', message: ' b ' });
  t.same(ok, { ok: true, value: { author: 'a', message: 'b' } });
});

t.test('bodies that are not objects', async (t) => {
  for (const body of [null, [], [{ author: 'x', message: 'y' }], 'text', 42, true]) {
    t.same(validate(body), { ok: false, failure: { field: 'body', message: 'the body must be a JSON object' } }, JSON.stringify(body));
  }
  t.same(validate(undefined), { ok: false, failure: { field: 'body', message: 'body is required' } });
});

t.test('the field schemas on their own', async (t) => {
  t.equal(authorSchema.parse('  ada  '), 'ada');
  t.equal(messageSchema.parse('a\r\nb'), 'a\nb');
  t.notOk(authorSchema.safeParse('a\nb').success);
  t.ok(messageSchema.safeParse('a\nb').success);
});

t.test('entry ids', async (t) => {
  t.ok(entryIdSchema.safeParse('0190f5a4-8f1e-7cc3-9a4b-1c2d3e4f5a6b').success, 'a UUID v7');
  t.ok(entryIdSchema.safeParse('3b241101-e2bb-4255-8caf-4136c566a962').success, 'a UUID v4');
  for (const bad of ['', 'abc', '0190f5a4-8f1e-7cc3-9a4b-1c2d3e4f5a6', '0190f5a48f1e7cc39a4b1c2d3e4f5a6b', '0190f5a4-8f1e-7cc3-9a4b-1c2d3e4f5a6bz', "1' OR '1'='1"]) {
    const parsed = entryIdSchema.safeParse(bad);
    t.notOk(parsed.success, JSON.stringify(bad));
    if (!parsed.success) t.same(describeIssue(parsed.error), { field: 'body', message: 'id must be a UUID' });
  }
});

t.test('describeIssue', async (t) => {
  const nested = z.object({ meta: z.object({ tags: z.array(z.string()) }) });
  const wrongType = nested.safeParse({ meta: { tags: ['a', 5] } });
  t.notOk(wrongType.success);
  if (!wrongType.success) t.match(describeIssue(wrongType.error), { field: 'meta.tags.1', message: /expected string/ }, 'nested paths joined with dots');
  // With the input reported, a missing value is called missing whatever the schema's message.
  const missing = nested.safeParse({ meta: {} }, { reportInput: true });
  t.notOk(missing.success);
  if (!missing.success) t.same(describeIssue(missing.error), { field: 'meta.tags', message: 'meta.tags is required' });
  const unknown = z.strictObject({}).safeParse({ b: 1, a: 2 });
  t.notOk(unknown.success);
  if (!unknown.success) t.same(describeIssue(unknown.error), { field: 'b', message: 'unknown field "b"' }, 'the first unknown key');
  t.same(describeIssue(new z.ZodError([])), { field: 'body', message: 'invalid input' }, 'no issue at all');
});
