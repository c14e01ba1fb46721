/**
 * The idempotency store against a real Redis (a throwaway server from the test harness).
 */
import { randomUUID } from 'node:crypto';
import { startRedis } from '@inflow/tests/support';
import type { EntryJob } from '@inflow/shared';
import t from 'tap';
import { fingerprintOf, IDEMPOTENCY_KEY, IdempotencyStore } from '../src/entries/idempotency.ts';

const redis = await startRedis(t);
const store = new IdempotencyStore(redis.client);

const job = (message = 'hello'): EntryJob => ({
  id: randomUUID(),
  author: 'ada',
  message,
  acceptedBy: 'api-1',
  acceptedAt: new Date().toISOString(),
});

t.test('the first claim wins; later ones get the first record', async (t) => {
  const key = randomUUID();
  const first = job();
  const fingerprint = fingerprintOf(first.author, first.message);
  t.equal(await store.claim(key, first, fingerprint), undefined, 'a new key is claimed');
  const second = job();
  t.same(await store.claim(key, second, fingerprint), { entry: first, fingerprint }, 'a retry sees the first entry');
  t.same(await store.claim(key, job('other'), fingerprintOf('ada', 'other')), { entry: first, fingerprint }, 'whatever it sends');
});

t.test('keys are stored hashed, with an expiry', async (t) => {
  const key = 'client key with spaces? no: visible ASCII only ~!';
  await store.claim(key, job(), 'f');
  const keys = await redis.client.keys('inflow:idempotency:*');
  t.ok(keys.length > 0);
  t.ok(keys.every((k) => /^inflow:idempotency:[0-9a-f]{64}$/.test(k)), 'uniform names, no client bytes');
  for (const k of keys) {
    const ttl = await redis.client.ttl(k);
    t.ok(ttl > 0 && ttl <= 24 * 3600, `expires (${ttl} s)`);
  }
});

t.test('release gives a key back', async (t) => {
  const key = randomUUID();
  await store.claim(key, job(), 'f');
  await store.release(key);
  const next = job();
  t.equal(await store.claim(key, next, 'g'), undefined, 'claimable again');
});

t.test('concurrent claims of one key: exactly one wins', async (t) => {
  const key = randomUUID();
  const results = await Promise.all(Array.from({ length: 50 }, () => store.claim(key, job(), 'f')));
  t.equal(results.filter((r) => r === undefined).length, 1);
  const winners = new Set(results.filter((r) => r !== undefined).map((r) => r.entry.id));
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
