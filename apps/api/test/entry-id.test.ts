import t from 'tap';
import { newEntryId } from '../src/entries/entry-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

t.test('ids are UUIDv7 carrying the time they were made', async (t) => {
  const before = Date.now();
  const id = newEntryId();
  const after = Date.now();
  t.match(id, UUID_V7);
  const millis = Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16);
  t.ok(millis >= before && millis <= after, 'the first 48 bits are the time in milliseconds');
});

t.test('ids stay unique across many refills of the random pool', async (t) => {
  const ids = Array.from({ length: 20_000 }, newEntryId);
  t.equal(new Set(ids).size, ids.length, 'no id twice');
  t.ok(ids.every((id) => UUID_V7.test(id)), 'every id is a UUIDv7');
  // The random tails of consecutive ids differ: the pool hands out fresh bytes each time.
  const tails = new Set(ids.map((id) => id.slice(-12)));
  t.equal(tails.size, ids.length, 'no random tail twice');
});
