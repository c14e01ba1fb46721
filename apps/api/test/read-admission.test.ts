/**
 * The counting of list-read admission (src/entries/read-admission.ts): per address, per replica,
 * which bound refuses, release, and the refused counter. How it is wired to a request and its
 * response is list-reads.test.ts. Issue 20, finding 2.
 */
import { createMetricsRegistry } from '@inflow/shared';
import t from 'tap';
import { ListReadAdmission, listReadBounds } from '../src/entries/read-admission.ts';

t.test('the bounds follow the list share of the pool: four reads a connection, half of them for one address', async (t) => {
  t.same(listReadBounds(4), { perReplica: 16, perAddress: 8 }, 'DB_POOL_MAX=10: a list share of 4');
  t.same(listReadBounds(1), { perReplica: 4, perAddress: 2 }, 'DB_POOL_MAX=3: a list share of 1');
});

t.test('an address is refused past its bound, the replica past its own; a release gives the slot back', async (t) => {
  const admission = new ListReadAdmission({ perAddress: 2, perReplica: 3 });
  t.equal(admission.take('a'), undefined);
  t.equal(admission.take('a'), undefined);
  t.equal(admission.take('a'), 'address', "a third from one address: the address's bound");
  t.equal(admission.inProgressOf('a'), 2, 'a refusal takes no slot');
  t.equal(admission.take('b'), undefined, 'another address still gets in');
  t.equal(admission.inProgress, 3);
  t.equal(admission.take('c'), 'replica', 'a new address once the replica is full');
  t.equal(admission.take('a'), 'address', 'an address over its bound is told so, even when the replica is full too');

  admission.release('a');
  t.equal(admission.inProgressOf('a'), 1);
  t.equal(admission.take('c'), undefined, 'a released slot is free for anyone');
  for (const address of ['a', 'b', 'c']) admission.release(address);
  t.equal(admission.inProgress, 0);
  t.equal(admission.inProgressOf('a'), 0);
  t.throws(() => {
    admission.release('a');
  }, { message: /release without a slot for a/ }, 'a release without a slot is a bug, not a silent miscount');
});

t.test('refusals are counted by reason, and the reads in progress are a gauge', async (t) => {
  const registry = createMetricsRegistry({ service: 'api', instanceId: 'admission-test' });
  const admission = new ListReadAdmission({ perAddress: 1, perReplica: 2 }, registry);
  admission.take('a');
  admission.take('a');
  admission.take('b');
  admission.take('c');
  admission.take('c');
  const text = await registry.metrics();
  t.match(text, /inflow_api_list_reads_refused_total\{reason="address",[^}]*\} 1\n/);
  t.match(text, /inflow_api_list_reads_refused_total\{reason="replica",[^}]*\} 2\n/);
  t.match(text, /inflow_api_list_reads_in_progress\{[^}]*\} 2\n/);
});

t.test('bounds are checked when the admission is made', async (t) => {
  t.throws(() => new ListReadAdmission({ perAddress: 0, perReplica: 4 }), RangeError);
  t.throws(() => new ListReadAdmission({ perAddress: 2, perReplica: 1.5 }), RangeError);
  t.throws(() => new ListReadAdmission({ perAddress: 5, perReplica: 4 }), { message: /perAddress must not exceed perReplica/ });
});
