/**
 * classifyDatabaseError decides, for the API (503 or not) and the worker (wait, fail the entry,
 * or spend an attempt), what a PostgreSQL error means: one case per SQLSTATE class, the reason
 * for each in database-errors.ts. The same errors from a real PostgreSQL:
 * apps/worker/test/probe-write.test.ts.
 */
import t from 'tap';
import {
  classifyDatabaseError,
  DATABASE_REFUSAL_CAUSES,
  describeDatabaseRefusal,
  isDatabaseUnavailable,
} from '../src/database-errors.ts';
import { describeCheckFailure } from '../src/health.ts';
import { TimeoutError } from '../src/timeout.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

t.test('unavailable: the database cannot work right now; nothing is wrong with the request', async (t) => {
  const cases: readonly (readonly [string, unknown])[] = [
    ['08006 connection failure', withCode('08006')],
    ['08P01 protocol violation', withCode('08P01')],
    ['53100 disk full', withCode('53100', 'could not extend file')],
    ['53200 out of memory', withCode('53200')],
    ['53300 too many connections', withCode('53300', 'sorry, too many clients already')],
    ['57P01 admin shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['57P02 crash shutdown', withCode('57P02')],
    ['57P03 starting up', withCode('57P03', 'the database system is starting up')],
    ['57P05 idle session timeout', withCode('57P05')],
    ['57014 our statement_timeout', withCode('57014', 'canceling statement due to statement timeout')],
    ['40001 serialization failure', withCode('40001')],
    ['40P01 deadlock', withCode('40P01')],
    ['55P03 lock not available', withCode('55P03')],
    ['58030 I/O error', withCode('58030')],
    ['58P01 undefined file', withCode('58P01')],
    ['a socket error', withCode('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.9:5432')],
    ['a DNS failure', withCode('EAI_AGAIN', 'getaddrinfo EAI_AGAIN postgres')],
    ['pg: connection timeout', new Error('timeout exceeded when trying to connect')],
    ['pg: a lost connection', new Error('Connection terminated unexpectedly')],
    ['pg: query_timeout', new Error('Query read timeout')],
    ['our own deadline (withTimeout)', new TimeoutError('PostgreSQL did not answer', 2000)],
  ];
  for (const [what, error] of cases) {
    t.equal(classifyDatabaseError(error), 'unavailable', what);
    t.equal(isDatabaseUnavailable(error), true, `${what}: the database's error`);
    t.equal(describeDatabaseRefusal(error), undefined, `${what}: not a refusal`);
  }
});

t.test('misconfigured: the database answers but refuses the program as configured', async (t) => {
  const cases: readonly (readonly [string, string, string])[] = [
    ['28P01', 'authentication', 'password authentication failed'],
    ['28000', 'authentication', 'the role may not log in (invalid authorization)'],
    ['28999', 'authentication', 'the login is refused (invalid authorization)'],
    ['25006', 'read_only', 'the database is read-only (a standby, or read-only by default)'],
    ['3D000', 'database', 'the database does not exist'],
    ['57P04', 'database', 'the database was dropped'],
    ['55000', 'database', 'the database is not in a state to take this (e.g. it takes no connections)'],
    ['42P01', 'schema', 'the entries table does not exist'],
    ['42703', 'schema', 'a column of the entries table does not exist'],
    ['3F000', 'schema', 'the schema does not exist'],
    ['42501', 'privilege', 'permission denied on the entries table'],
  ];
  for (const [code, cause, description] of cases) {
    // PostgreSQL's own text names roles and tables: it must not reach the description.
    const error = withCode(code, 'password authentication failed for user "secret-role"');
    t.equal(classifyDatabaseError(error), 'misconfigured', code);
    t.equal(isDatabaseUnavailable(error), true, `${code}: the database's error (the API answers 503)`);
    t.same(describeDatabaseRefusal(error), { cause, sqlstate: code, description }, `${code}: ${cause}`);
    t.equal(describeCheckFailure(error), `PostgreSQL refuses: ${description} (${code})`, `${code}: the readiness reason`);
    t.notMatch(describeCheckFailure(error), /secret-role/, `${code}: no raw text in the reason`);
  }
  t.same(new Set(cases.map(([, cause]) => cause)), new Set(DATABASE_REFUSAL_CAUSES), 'every cause has a case');
});

t.test('refused: the database looked at the row and said no', async (t) => {
  for (const code of ['23505', '23514', '23502', '22001', '22P02', '22021']) {
    t.equal(classifyDatabaseError(withCode(code)), 'refused', code);
    t.equal(isDatabaseUnavailable(withCode(code)), false, code);
  }
});

t.test('unknown: anything else, most likely a bug; it spends bounded attempts', async (t) => {
  const cases: readonly (readonly [string, unknown])[] = [
    ['42601 syntax error (our bug)', withCode('42601')],
    ['42804 datatype mismatch', withCode('42804')],
    ['54000 program limit exceeded (an index row too large is the row\'s fault)', withCode('54000')],
    ['55006 object in use (DDL only)', withCode('55006')],
    ['0A000 feature not supported', withCode('0A000')],
    ['XX000 internal error', withCode('XX000')],
    ['a plain error', new Error('something else')],
    ['a string', 'Connection terminated'],
    ['undefined', undefined],
  ];
  for (const [what, error] of cases) {
    t.equal(classifyDatabaseError(error), 'unknown', what);
    t.equal(isDatabaseUnavailable(error), false, what);
  }
});
