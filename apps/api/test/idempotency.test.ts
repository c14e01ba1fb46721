/**
 * The idempotency store against a real Redis (a throwaway server from the test harness).
 */
import { randomUUID } from 'node:crypto';
import { startRedis } from '@inflow/test-support';
import t from 'tap';
import { fingerprintOf, IDEMPOTENCY_KEY, IdempotencyStore, type IdempotencyRecord } from '../src/entries/idempotency.ts';

const TTL_SECONDS = 900;
const redis = await startRedis(t);
const store = new IdempotencyStore(redis.client, TTL_SECONDS);

const record = (message = 'hello'): IdempotencyRecord => ({ id: randomUUID(), acceptedBy: 'api-1', fingerprint: fingerprintOf('ada', message) });

t.test('the first claim wins; later ones get the first record', async (t) => {
  const key = randomUUID();
  const first = record();
  t.equal(await store.claim(key, first), undefined, 'a new key is claimed');
  t.same(await store.claim(key, record()), first, 'a retry sees the first record');
  t.same(await store.claim(key, record('other')), first, 'whatever it sends');
});

t.test('keys are stored hashed, with the configured expiry, and records stay small', async (t) => {
  const key = 'client key with spaces? no: visible ASCII only ~!';
  await store.claim(key, record('m'.repeat(2000)));
  const keys = await redis.client.keys('inflow:idem:*');
  t.ok(keys.length > 0);
  t.ok(keys.every((k) => /^inflow:idem:[A-Za-z0-9_-]{22}$/.test(k)), 'uniform names, no client bytes');
  for (const k of keys) {
    const ttl = await redis.client.ttl(k);
    t.ok(ttl > 0 && ttl <= TTL_SECONDS, `expires (${ttl} s)`);
    const value = (await redis.client.get(k)) ?? '';
    t.ok(value.length < 100, `the record does not hold the message (${value.length} bytes)`);
  }
  t.throws(() => new IdempotencyStore(redis.client, 0), RangeError);
});

t.test('concurrent claims of one key: exactly one wins', async (t) => {
  const key = randomUUID();
  const results = await Promise.all(Array.from({ length: 50 }, () => store.claim(key, record())));
  t.equal(results.filter((r) => r === undefined).length, 1);
  const winners = new Set(results.filter((r) => r !== undefined).map((r) => r.id));
  t.equal(winners.size, 1, 'every loser sees the same winner');
});

t.test('fingerprints tell entries apart', async (t) => {
  t.equal(fingerprintOf('a', 'b'), fingerprintOf('a', 'b'));
  t.not(fingerprintOf('a', 'b'), fingerprintOf('a', 'c'));
  t.not(fingerprintOf('ab', 'c'), fingerprintOf('a', 'bc'), 'the separator matters');
});

t.test('the header format', async (t) => {
  for (const ok of ['a', 'x'.repeat(128), randomUUID(), '!~#$%&']) t.ok(IDEMPOTENCY_KEY.test(ok), ok.slice(0, 20));
  for (const bad of ['', 'x'.repeat(129), 'a b', 'tab\t', 'caf\u00e9', 'line\n']) t.notOk(IDEMPOTENCY_KEY.test(bad), JSON.stringify(bad.slice(0, 20)));
});
