import { randomUUID } from 'node:crypto';
import t from 'tap';
import { decodeCursor, encodeCursor } from '../src/entries/cursor.ts';

t.test('a cursor round-trips', async (t) => {
  const cursor = { createdAt: new Date('2025-06-01T12:34:56.789Z'), id: randomUUID() };
  const encoded = encodeCursor(cursor);
  t.match(encoded, /^[A-Za-z0-9_-]+$/, 'URL-safe without escaping');
  t.same(decodeCursor(encoded), cursor);
  t.notOk(encoded.includes(cursor.id) || encoded.includes('2025-06-01'), 'opaque: not the raw time and id');
});

t.test('anything else is not a cursor', async (t) => {
  const id = randomUUID();
  const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64url');
  const bad = [
    '',
    'not a cursor!',
    'x'.repeat(201),
    b64(`2025-06-01T12:34:56.789Z`),
    b64(`2025-06-01T12:34:56.789Z|${id}|extra`),
    b64(`2025-06-01T12:34:56.789Z|not-a-uuid`),
    b64(`2025-13-01T12:34:56.789Z|${id}`),
    b64(`2025-06-01T12:34:56Z|${id}`), // not the canonical form this API makes
    b64(`1717245296789|${id}`),
    b64(`|${id}`),
    Buffer.from(`2025-06-01T12:34:56.789Z|${id}`).toString('base64'), // standard alphabet with padding
  ];
  for (const value of bad) t.equal(decodeCursor(value), undefined, JSON.stringify(value.slice(0, 40)));
});
