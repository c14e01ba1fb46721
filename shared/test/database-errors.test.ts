/**
 * classifyDatabaseError decides, for the API (503 or not) and the worker (wait, fail the entry,
 * or spend an attempt), what a PostgreSQL error means.
 */
import t from 'tap';
import { classifyDatabaseError, isDatabaseUnavailable } from '../src/database-errors.ts';
import { TimeoutError } from '../src/timeout.ts';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

t.test('unavailable: the database cannot work right now; nothing is wrong with the request', async (t) => {
  const cases: readonly (readonly [string, unknown])[] = [
    ['08006 connection failure', withCode('08006')],
    ['53300 too many connections', withCode('53300', 'sorry, too many clients already')],
    ['57P01 admin shutdown', withCode('57P01', 'terminating connection due to administrator command')],
    ['57P03 starting up', withCode('57P03', 'the database system is starting up')],
    ['57014 our statement_timeout', withCode('57014', 'canceling statement due to statement timeout')],
    ['40001 serialization failure', withCode('40001')],
    ['40P01 deadlock', withCode('40P01')],
    ['55P03 lock not available', withCode('55P03')],
    ['58030 I/O error', withCode('58030')],
    ['a socket error', withCode('ECONNREFUSED', 'connect ECONNREFUSED 10.0.0.9:5432')],
    ['a DNS failure', withCode('EAI_AGAIN', 'getaddrinfo EAI_AGAIN postgres')],
    ['pg: connection timeout', new Error('timeout exceeded when trying to connect')],
    ['pg: a lost connection', new Error('Connection terminated unexpectedly')],
    ['pg: query_timeout', new Error('Query read timeout')],
    ['our own deadline (withTimeout)', new TimeoutError('PostgreSQL did not answer', 2000)],
  ];
  for (const [what, error] of cases) {
    t.equal(classifyDatabaseError(error), 'unavailable', what);
    t.equal(isDatabaseUnavailable(error), true, what);
  }
});

t.test('refused: the database looked at the row and said no', async (t) => {
  for (const code of ['23505', '23514', '23502', '22001', '22P02']) {
    t.equal(classifyDatabaseError(withCode(code)), 'refused', code);
    t.equal(isDatabaseUnavailable(withCode(code)), false, code);
  }
});

t.test('unknown: anything else, most likely a bug', async (t) => {
  const cases: readonly (readonly [string, unknown])[] = [
    ['42P01 undefined table', withCode('42P01', 'relation "entries" does not exist')],
    ['42703 undefined column', withCode('42703')],
    ['a plain error', new Error('something else')],
    ['a string', 'Connection terminated'],
    ['undefined', undefined],
  ];
  for (const [what, error] of cases) t.equal(classifyDatabaseError(error), 'unknown', what);
});
