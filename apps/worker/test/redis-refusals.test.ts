/**
 * RedisRefusals with the errors a real Redis gives: a primary with min-replicas-to-write and no
 * replica answers NOREPLICAS (the replicated layout while its replica is away). One log line per
 * episode, whatever the number of refused fetches; other errors are not its business.
 */
import { startRedis } from '@inflow/test-support';
import { Redis } from 'ioredis';
import t from 'tap';
import { RedisRefusals } from '../src/redis-refusals.ts';
import { Writable } from 'node:stream';
import { isRedisWriteRefusal, type Logger } from '@inflow/shared';
import { pino } from 'pino';

/** A logger whose JSON lines land, parsed, in `lines`. */
function captureLines(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, sink), lines };
}

const redis = await startRedis(t);
const client = new Redis({ host: '127.0.0.1', port: redis.port });
t.teardown(() => {
  client.disconnect();
});

const errorOf = (promise: Promise<unknown>): Promise<Error> =>
  promise.then(
    () => {
      throw new Error('expected Redis to refuse');
    },
    (error: unknown) => error as Error,
  );

t.test('a primary without its replica refuses writes: one line when it starts, one when it ends', async (t) => {
  await client.config('SET', 'min-replicas-to-write', '1');
  t.teardown(() => client.config('SET', 'min-replicas-to-write', '0'));
  const refusal = await errorOf(client.set('inflow:test', 'x'));
  t.match(refusal.message, /^NOREPLICAS /, 'what Redis answers');
  t.ok(isRedisWriteRefusal(refusal));
  t.notOk(isRedisWriteRefusal(await errorOf(client.call('NO-SUCH-COMMAND'))), 'an unknown command is not a refusal');
  t.notOk(isRedisWriteRefusal(new Error('connect ECONNREFUSED 127.0.0.1:6379')), 'nor is a connection error');

  const { logger, lines } = captureLines();
  const refusals = new RedisRefusals(logger);
  for (let i = 0; i < 50; i += 1) t.ok(refusals.refused(refusal));
  t.equal(lines.length, 1, 'fifty refused fetches, one line');
  t.match(lines[0], { level: 40, msg: /^Redis refuses writes/ });
  t.notOk(refusals.refused(new Error('Connection is closed.')), 'another error is left to the caller');

  await client.config('SET', 'min-replicas-to-write', '0');
  t.equal(await client.set('inflow:test', 'x'), 'OK', 'the replica is back (here: the setting)');
  refusals.tookWrite();
  refusals.tookWrite();
  t.equal(lines.length, 2, 'one line when it ends, none after');
  t.match(lines[1], { level: 30, refusals: 50, refusedForMs: Number, msg: /^Redis takes writes again/ });
});
