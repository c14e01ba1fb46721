import t from 'tap';
import { z } from 'zod';
import {
  authorSchema,
  describeIssue,
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
const FLAG = '\u{1F1EB}\u{1F1F7}'; // 🇫🇷: one grapheme, two regional indicators.

t.test('a plain entry passes unchanged', async (t) => {
  t.same(validate({ author: 'ada', message: 'hello, world' }), { ok: true, value: { author: 'ada', message: 'hello, world' } });
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

  // A ZWJ sequence is one grapheme but five code points: 400 families are 2000 characters. (An
  // author may not hold one at all: ZWJ is a format character, see "invisible formatting".)
  t.match(validate({ author: 'x', message: FAMILY.repeat(400) }), { ok: true });
  t.match(validate({ author: 'x', message: FAMILY.repeat(400) + 'a' }), { ok: false, failure: { field: 'message', message: /got 2001/ } });
  // A flag is two code points with no format character: 40 flags are 80 characters of a name.
  t.match(validate({ author: FLAG.repeat(40), message: 'x' }), { ok: true });
  t.match(validate({ author: FLAG.repeat(40) + 'a', message: 'x' }), { ok: false, failure: { field: 'author', message: /got 81/ } });

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
  // Not controls: the character after the C1 range; format characters are allowed in a message
  // (an author refuses them: see "invisible formatting characters").
  t.match(validate({ author: 'a\u00a0b', message: 'zero\u200bwidth soft\u00adhyphen' }), { ok: true });
});

// Issue 15: bidi overrides (U+202E) were accepted in author and could spoof how a name reads.
t.test('invisible formatting characters (Unicode category Cf): refused in author, kept in message', async (t) => {
  const refused: readonly (readonly [string, string])[] = [
    ['\u061c', 'ARABIC LETTER MARK'],
    ['\u200e', 'LEFT-TO-RIGHT MARK'],
    ['\u200f', 'RIGHT-TO-LEFT MARK'],
    ['\u202a', 'LEFT-TO-RIGHT EMBEDDING'],
    ['\u202b', 'RIGHT-TO-LEFT EMBEDDING'],
    ['\u202c', 'POP DIRECTIONAL FORMATTING'],
    ['\u202d', 'LEFT-TO-RIGHT OVERRIDE'],
    ['\u202e', 'RIGHT-TO-LEFT OVERRIDE'],
    ['\u2066', 'LEFT-TO-RIGHT ISOLATE'],
    ['\u2067', 'RIGHT-TO-LEFT ISOLATE'],
    ['\u2068', 'FIRST STRONG ISOLATE'],
    ['\u2069', 'POP DIRECTIONAL ISOLATE'],
    ['\u200b', 'ZERO WIDTH SPACE'],
    ['\u200c', 'ZERO WIDTH NON-JOINER'],
    ['\u200d', 'ZERO WIDTH JOINER'],
    ['\u2060', 'WORD JOINER'],
    ['\ufeff', 'ZERO WIDTH NO-BREAK SPACE (BOM)'],
    ['\u00ad', 'SOFT HYPHEN'],
    ['\u180e', 'MONGOLIAN VOWEL SEPARATOR'],
    ['\u2061', 'FUNCTION APPLICATION'],
    ['\ufff9', 'INTERLINEAR ANNOTATION ANCHOR'],
    ['\u{e0001}', 'LANGUAGE TAG'],
    ['\u{e0067}', 'TAG LATIN SMALL LETTER G'],
  ];
  for (const [char, name] of refused) {
    const hex = (char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    t.same(
      validate({ author: `ad${char}a`, message: 'x' }),
      {
        ok: false,
        failure: {
          field: 'author',
          message: `author must not contain invisible formatting characters such as bidi controls or zero-width spaces (found U+${hex})`,
        },
      },
      `author with U+${hex} ${name}`,
    );
    t.same(validate({ author: 'x', message: `a${char}b` }), { ok: true, value: { author: 'x', message: `a${char}b` } }, `message keeps U+${hex} ${name}`);
  }
  // "admin\u202Enimda" is shown as "adminadmin": two names that read the same.
  t.match(validate({ author: 'admin\u202enimda', message: 'x' }), { ok: false, failure: { field: 'author', message: /found U\+202E/ } });
  // Only the first one is named; a control character is reported before a format character.
  t.match(validate({ author: 'a\u200bb\u202ec', message: 'x' }), { ok: false, failure: { field: 'author', message: /found U\+200B\)$/ } });
  t.match(validate({ author: 'a\u202eb\u0007c', message: 'x' }), { ok: false, failure: { field: 'author', message: 'author must not contain control characters' } });
  // Emoji built with ZWJ or tags are refused in a name (the price of the rule); plain emoji, flags
  // of regional indicators, skin tones and combining marks are not format characters.
  t.match(validate({ author: FAMILY, message: 'x' }), { ok: false, failure: { field: 'author', message: /found U\+200D/ } });
  t.match(validate({ author: '\u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}', message: 'x' }), { ok: false, failure: { field: 'author', message: /found U\+E0067/ } });
  for (const fine of [EMOJI, FLAG, '\u{1F44D}\u{1F3FD}', 'e\u0301', 'Zo\u00eb', '\u2764\ufe0f', 'a\u00a0b', 'Jean-Luc', 'O\u2019Brien']) {
    t.same(validate({ author: fine, message: 'x' }), { ok: true, value: { author: fine, message: 'x' } }, `author ${JSON.stringify(fine)}`);
  }
  // Trimming comes first: a BOM at either end is whitespace to trim(), and gone before the check.
  t.same(validate({ author: '\ufeffada\ufeff', message: 'x' }), { ok: true, value: { author: 'ada', message: 'x' } });
  // Every Cf character the running Node knows is refused in an author: the rule is the category.
  let cf = 0;
  for (let code = 0; code <= 0x10ffff; code += 1) {
    if (code >= 0xd800 && code <= 0xdfff) continue;
    const char = String.fromCodePoint(code);
    if (!/\p{Cf}/u.test(char)) continue;
    cf += 1;
    if (validate({ author: `a${char}b`, message: 'x' }).ok) t.fail(`U+${code.toString(16)} (Cf) accepted in an author`);
  }
  t.ok(cf > 150, `${cf} format characters checked`);
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

// Issue 20: names are one line that reads as what it is.
t.test('author: no line or paragraph separators, at most 4 combining marks on one character; message keeps its rules', async (t) => {
  const author = (value: string) => newEntrySchema.safeParse({ author: value, message: 'm' });
  for (const separator of ['\u2028', '\u2029']) {
    const result = author(`ann${separator}bob`);
    t.notOk(result.success, `U+${separator.codePointAt(0)?.toString(16).toUpperCase() ?? ''} refused in author`);
    t.match(result.error?.issues[0]?.message, /^author must not contain line or paragraph separators: a name is one line \(found U\+202[89]\)$/);
    t.ok(newEntrySchema.safeParse({ author: 'ann', message: `a${separator}b` }).success, 'kept in message');
  }
  const zalgo = `Z${'\u0301'.repeat(79)}`;
  const refused = author(zalgo);
  t.notOk(refused.success, '79 combining marks on one letter: refused');
  t.match(refused.error?.issues[0]?.message, /^author must not contain more than 4 combining marks on one character \(found 79 in a row\)$/);
  t.notOk(author(`a${'\u0301'.repeat(5)}`).success, '5 in a row: refused');
  t.ok(author(`a${'\u0301'.repeat(4)}`).success, '4 in a row: kept');
  // Real names: Vietnamese decomposed (2 marks), pointed Hebrew (3), Devanagari, Thai.
  for (const name of ['Nguye\u0323\u0302n', 'Tr\u1EA7n', '\u05E9\u05BC\u05B8\u0591\u05DC\u05D5\u05B9\u05DD', '\u0926\u0947\u0935\u0928\u093E\u0917\u0930\u0940', '\u0E2A\u0E21\u0E0A\u0E32\u0E22']) {
    t.ok(author(name).success, `${name}: kept`);
  }
  t.ok(newEntrySchema.safeParse({ author: 'ann', message: zalgo }).success, 'message keeps its rules: marks are text there');
});
