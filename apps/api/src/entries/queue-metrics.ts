import type { Registry } from '@inflow/shared';
import { Gauge } from 'prom-client';
import type { EntryQueue } from './entries.queue.ts';

/** Queue depth by state, and the oldest waiting job's age, read from Redis when Prometheus scrapes. */
export function registerQueueGauges(registry: Registry, queue: EntryQueue): void {
  new Gauge({
    name: 'inflow_queue_jobs',
    help: 'Jobs in the entries queue, by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts: Record<string, number> = { ...(await queue.counts()) };
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
  new Gauge({
    name: 'inflow_queue_oldest_waiting_age_seconds',
    help: 'How long the oldest job still waiting in the entries queue has waited (0 when none waits)',
    registers: [registry],
    async collect() {
      this.set(await queue.oldestWaitingAgeSeconds());
    },
  });
}
