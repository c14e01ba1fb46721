/**
 * The inputs of the fuzz properties: edge-case text (NUL, lone surrogates, RTL, emoji, very long
 * lines, SQL- and HTML-looking text) and the content types a client may send.
 */
import fc from 'fast-check';

export const EDGE = [
  '\u0000', // NUL
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  '\ud83d\ude00', // 😀
  '\ud83d\udc69\u200d\ud83d\udcbb', // 👩‍💻 (ZWJ sequence)
  '\u202e', // RIGHT-TO-LEFT OVERRIDE
  '\u200f', // RIGHT-TO-LEFT MARK
  'مرحبا',
  'שלום',
  'e\u0301', // combining accent
  '\ufeff', // BOM
  '\u00a0', // no-break space (trimmed)
  '\u2028', // line separator (trimmed; inside, refused in names and kept in messages)
  'e\u0301\u0302\u0303\u0304\u0305', // five combining marks on one letter: refused in names
  '\u0085', // NEL, a C1 control
  '\u007f',
  '\t',
  '\r\n',
  '\n',
  ' ',
  "'); DROP TABLE entries; --",
  "' OR '1'='1",
  '$$; SELECT pg_sleep(10); $$',
  '<script>alert(1)</script>',
  '<img src=x onerror=alert(1)>',
  '"}],"x":{"',
  '\\u0000',
  '%00',
  '${jndi:ldap://x}',
  '{{7*7}}',
];

export const edgeText = fc.array(
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...EDGE) },
    { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 20 }) },
    { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 20 }) },
    { weight: 1, arbitrary: fc.integer({ min: 0xd800, max: 0xdfff }).map((code) => String.fromCharCode(code)) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 2100 }).map((n) => 'x'.repeat(n)) },
  ),
  { maxLength: 6 },
).map((parts) => parts.join(''));

export const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)), maxLength: 60 });

export const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=UTF-8',
  'Application/JSON',
  'application/json; charset=latin1',
  'application/json; charset=utf-16',
  'application/json;charset=',
  'application/merge-patch+json',
  'application/jsonx',
  'text/json',
  'text/plain',
  'text/html',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  '*/*',
  'application/*',
  '',
];
