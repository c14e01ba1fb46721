import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * A Prometheus registry for one process: Node's default metrics (event-loop lag, heap, CPU, GC)
 * plus whatever the program registers, every series labelled with the service and instance.
 */
export function createMetricsRegistry(options: { service: string; instanceId: string }): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service: options.service, instance: options.instanceId });
  collectDefaultMetrics({ register: registry });
  return registry;
}

export type { Registry } from 'prom-client';
