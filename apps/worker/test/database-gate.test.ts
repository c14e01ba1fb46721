/**
 * The DatabaseGate against a real PostgreSQL: closed by the database's own error, it follows
 * the cause the probe finds (a read-only database, then a refused login), says it in words fit
 * for /readyz, and opens by itself once the database takes writes again. An error that is not
 * the database's opens it: the jobs' bounded attempts decide then.
 */
import { randomUUID } from 'node:crypto';
import { startPostgres, waitFor } from '@inflow/test-support';
import { createDatabase, createLogger } from '@inflow/shared';
import t from 'tap';
import { DatabaseGate } from '../src/entries/database-gate.ts';
import { EntriesRepository } from '../src/entries/entries.repository.ts';

const logger = createLogger({ service: 'test', instanceId: 'test', level: 'silent', sync: true });
const pg = await startPostgres(t);
const config = pg.databaseConfig();

const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (error: unknown) => error,
  );

t.test('guards its options', async (t) => {
  t.throws(() => new DatabaseGate({ probe: () => Promise.resolve(), probeIntervalMs: 0, logger }), RangeError);
});

t.test('read-only, then a refused login, then writable: closed with the cause, open by itself', async (t) => {
  const role = `w_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await pg.query(`CREATE ROLE ${role} LOGIN`);
  await pg.query(`GRANT SELECT, INSERT ON entries TO ${role}`);
  await pg.query(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
  const database = createDatabase({ ...config, user: role }, logger);
  t.teardown(() => database.close());
  const repository = new EntriesRepository(database.db);
  const gate = new DatabaseGate({ probe: () => repository.probeWrite(), probeIntervalMs: 20, logger });
  t.teardown(() => {
    gate.stop();
  });

  // What the consumer does with a write's error (entries.consumer.ts).
  gate.close(await errorOf(repository.insertMany([{ id: randomUUID(), author: 'a', message: 'm', accepted_by: 'api-1', persisted_by: 'w', created_at: new Date() }])));
  t.equal(gate.open, false, 'a read-only database closes the gate');
  t.match(gate.outage, {
    kind: 'misconfigured',
    refusal: { cause: 'read_only', sqlstate: '25006' },
    reason: 'PostgreSQL refuses: the database is read-only (a standby, or read-only by default) (25006)',
  });
  const since = gate.outage?.since;

  // The login is refused next: the gate stays closed and says the new cause.
  await pg.query(`ALTER ROLE ${role} RESET default_transaction_read_only`);
  await pg.query(`ALTER ROLE ${role} NOLOGIN`);
  await pg.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [role]);
  const refused = await waitFor(() => (gate.outage?.refusal?.cause === 'authentication' ? gate.outage : undefined), {
    timeoutMs: 15_000,
    what: 'the gate to follow the refused login',
  });
  t.match(refused, { kind: 'misconfigured', refusal: { sqlstate: '28000' }, reason: 'PostgreSQL refuses: the role may not log in (invalid authorization) (28000)' });
  t.notMatch(refused.reason, new RegExp(role), 'the reason holds no role name');
  t.equal(refused.since, since, 'the outage keeps its start');
  t.equal(gate.open, false);

  await pg.query(`ALTER ROLE ${role} LOGIN`);
  await waitFor(() => gate.open, { timeoutMs: 15_000, what: 'the gate to open once the database takes writes' });
  t.equal(gate.outage, undefined);
});

t.test('an outage: closed as unavailable, with a reason in words', async (t) => {
  const gate = new DatabaseGate({ probe: () => Promise.resolve(), probeIntervalMs: 60_000, logger });
  t.teardown(() => {
    gate.stop();
  });
  gate.close(Object.assign(new Error('connect ECONNREFUSED 10.1.2.3:5432'), { code: 'ECONNREFUSED' }));
  t.match(gate.outage, { kind: 'unavailable', refusal: undefined, reason: 'connection refused' });
  gate.stop();
  const lost = new DatabaseGate({ probe: () => Promise.resolve(), probeIntervalMs: 60_000, logger });
  t.teardown(() => {
    lost.stop();
  });
  lost.close(new Error('Connection terminated unexpectedly'));
  t.match(lost.outage, { kind: 'unavailable', reason: 'PostgreSQL is out of reach (see the log)' });
});

t.test('a probe error that is not the database\'s opens the gate: attempts decide then', async (t) => {
  let probes = 0;
  const gate = new DatabaseGate({
    probe: () => {
      probes += 1;
      return Promise.reject(Object.assign(new Error('syntax error at or near "INSERT"'), { code: '42601' }));
    },
    probeIntervalMs: 10,
    logger,
  });
  t.teardown(() => {
    gate.stop();
  });
  gate.close(Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' }));
  await waitFor(() => gate.open, { timeoutMs: 5_000, what: 'the gate to open' });
  t.equal(probes, 1, 'one probe, then no more');
});
