/** How the page reads what the API and the event stream send (apps/api/page/api-data.ts). */
import { inspect } from 'node:util';
import t from 'tap';
import { errorOf, parseJson, readJson, stringField, toUpdate } from '../page/api-data.ts';

const id = '019b7a3e-2c00-7000-8000-000000000001';

t.test('toUpdate keeps the known fields of an API object, and nothing else', async (t) => {
  t.same(toUpdate({ id, author: 'ada', message: 'hi', acceptedBy: 'web2', persistedBy: null, extra: '<b>', status: 'processing' }), {
    id,
    status: 'processing',
    author: 'ada',
    message: 'hi',
    acceptedBy: 'web2',
    persistedBy: null,
  });
  t.same(toUpdate({ id, status: 'done', author: 42 }), { id }, 'an unknown status and a non-string field are left out');
  t.same(toUpdate({ id }, 'persisted'), { id, status: 'persisted' }, 'GET /api/entries lists persisted entries without a status');
  for (const value of [undefined, null, 'id', { id: 1 }, [id]]) t.equal(toUpdate(value), undefined, inspect(value));
});

t.test('an answer that is not JSON reads as nothing', async (t) => {
  t.same(await readJson(new Response('{"ok":true}')), { ok: true });
  t.equal(await readJson(new Response('<html>502 Bad Gateway</html>', { status: 502 })), undefined);
  t.equal(await readJson(new Response(null, { status: 204 })), undefined);
  t.same(parseJson('{"instanceId":"web2"}'), { instanceId: 'web2' });
  for (const data of ['', '{', undefined, 42]) t.equal(parseJson(data), undefined, String(data));
});

t.test('fields are read only when they have the expected type', async (t) => {
  t.equal(stringField({ instanceId: 'web1' }, 'instanceId'), 'web1');
  t.equal(stringField({ instanceId: 1 }, 'instanceId'), undefined);
  t.equal(stringField('web1', 'instanceId'), undefined);
  t.same(errorOf({ error: { code: 'validation_failed', field: 'author', message: 'author is required' } }), { field: 'author', message: 'author is required' });
  t.same(errorOf({ error: { message: 7 } }), { field: undefined, message: undefined });
  for (const body of [undefined, 'error', { error: 'oops' }, { message: 'no error object' }]) t.equal(errorOf(body), undefined, inspect(body));
});
