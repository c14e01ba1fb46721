import t from 'tap';
import { codePointLength, isEntryStatus, normaliseText } from '../src/entry-rules.ts';

t.test('normaliseText makes every line ending "\\n", then trims', async (t) => {
  t.equal(normaliseText('  a\r\nb\rc\nd \t'), 'a\nb\nc\nd');
  t.equal(normaliseText('\r\n\r\n'), '');
  t.equal(normaliseText('\u00a0inner  space kept\ufeff'), 'inner  space kept');
});

t.test('codePointLength counts code points, not UTF-16 units', async (t) => {
  t.equal(codePointLength(''), 0);
  t.equal(codePointLength('abc'), 3);
  t.equal(codePointLength('\u{1F600}'), 1, 'an emoji outside the BMP is one');
  t.equal(codePointLength('\u{1F468}\u200D\u{1F469}'), 3, 'a ZWJ sequence is each of its code points');
});

t.test('the states of an entry', async (t) => {
  for (const status of ['queued', 'processing', 'failed', 'persisted']) t.ok(isEntryStatus(status), status);
  for (const other of ['done', 'Queued', '', undefined, null, 3, ['queued']]) t.notOk(isEntryStatus(other), String(other));
});
