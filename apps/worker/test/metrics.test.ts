/**
 * The worker's state gauges, as the alert rules read them (deploy/prometheus/alerts.yml): the
 * gate, and while PostgreSQL refuses the worker as configured, which cause (one series per
 * cause at all times).
 */
import { createMetricsRegistry, DATABASE_REFUSAL_CAUSES, type DatabaseRefusalCause } from '@inflow/shared';
import t from 'tap';
import { WorkerMetrics, type WorkerState } from '../src/metrics.ts';

t.test('inflow_worker_database_available, inflow_worker_database_refusal and inflow_worker_ready follow the state', async (t) => {
  const metrics = new WorkerMetrics(createMetricsRegistry({ service: 'worker', instanceId: 'worker-test' }));
  let state: WorkerState = { databaseAvailable: true, databaseRefusal: undefined, consuming: true };
  metrics.watchState(() => state);
  const value = async (name: string, cause?: DatabaseRefusalCause) => {
    const text = await metrics.registry.metrics();
    const labels = cause === undefined ? '' : `cause="${cause}",`;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}`));
    return line?.split(' ').at(-1);
  };

  t.equal(await value('inflow_worker_database_available'), '1');
  t.equal(await value('inflow_worker_ready'), '1');
  for (const cause of DATABASE_REFUSAL_CAUSES) t.equal(await value('inflow_worker_database_refusal', cause), '0', `${cause} 0 while open`);

  state = { databaseAvailable: false, databaseRefusal: 'read_only', consuming: true };
  t.equal(await value('inflow_worker_database_available'), '0');
  t.equal(await value('inflow_worker_ready'), '0');
  for (const cause of DATABASE_REFUSAL_CAUSES) {
    t.equal(await value('inflow_worker_database_refusal', cause), cause === 'read_only' ? '1' : '0', `${cause} while read-only`);
  }

  state = { databaseAvailable: false, databaseRefusal: undefined, consuming: true };
  for (const cause of DATABASE_REFUSAL_CAUSES) t.equal(await value('inflow_worker_database_refusal', cause), '0', `${cause} 0 in a plain outage`);
});
