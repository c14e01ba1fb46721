/**
 * Issue 15: a failed entry's reason is public (the event stream); the worker's raw reason may
 * hold a database's or a socket's words, which stay in Redis and the worker's log.
 */
import t from 'tap';
import { publicFailedReason } from '../src/entries/failed-reason.ts';

t.test('the worker\'s own validation reasons are kept', async (t) => {
  for (const reason of ['invalid job payload: author: author is required', 'invalid job payload: body: the body must be a JSON object', 'invalid job payload: message: message must be 1 to 2000 characters after trimming (got 0)']) {
    t.equal(publicFailedReason(reason), reason);
  }
});

t.test('raw database and socket text is replaced by a sentence of our own', async (t) => {
  t.equal(
    publicFailedReason('the database refused the entry: new row for relation "entries" violates check constraint "entries_author_check"'),
    'the database refused the entry',
  );
  for (const raw of ['connect ECONNREFUSED 172.28.0.3:5432', 'Connection terminated unexpectedly', 'getaddrinfo ENOTFOUND postgres', 'job stalled more than allowable limit']) {
    t.equal(publicFailedReason(raw), 'the entry could not be stored', raw);
  }
  t.equal(publicFailedReason(''), 'the entry could not be stored');
  t.equal(publicFailedReason(undefined), 'the entry could not be stored');
  // A payload reason made to look like ours but carrying something else is not passed on.
  t.equal(publicFailedReason('invalid job payload: author: x\nconnect ECONNREFUSED 10.0.0.1:5432'), 'the entry could not be stored');
  t.equal(publicFailedReason(`invalid job payload: author: ${'x'.repeat(400)}`), 'the entry could not be stored');
});
