import { DATABASE_REFUSAL_CAUSES, type DatabaseRefusalCause, type Registry } from '@inflow/shared';
import { Counter, Gauge, Histogram } from 'prom-client';

/** What the worker's state gauges read at scrape time. */
export interface WorkerState {
  /** The DatabaseGate is open: PostgreSQL takes writes. */
  databaseAvailable: boolean;
  /** While the gate is closed because PostgreSQL refuses the worker as configured: what it refuses. */
  databaseRefusal: DatabaseRefusalCause | undefined;
  /** The BullMQ worker is running (consuming jobs). */
  consuming: boolean;
}

/** What the worker measures, served on HEALTH_PORT at /metrics. */
export class WorkerMetrics {
  readonly registry: Registry;
  readonly #batchSize: Histogram;
  readonly #insertSeconds: Histogram;
  readonly #queueLatency: Histogram;
  readonly #jobs: Counter<'outcome'>;

  constructor(registry: Registry) {
    this.registry = registry;
    this.#batchSize = new Histogram({
      name: 'inflow_persist_batch_size',
      help: 'Rows per INSERT statement',
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers: [registry],
    });
    this.#insertSeconds = new Histogram({
      name: 'inflow_persist_insert_duration_seconds',
      help: 'Time of one batched INSERT, commit included',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
      registers: [registry],
    });
    this.#queueLatency = new Histogram({
      name: 'inflow_entry_queue_latency_seconds',
      help: 'Time from acceptance by the API to the committed row',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    });
    this.#jobs = new Counter({
      name: 'inflow_jobs_total',
      help: 'Jobs handled, by outcome: persisted, duplicate (redelivered, row existed) or failed',
      labelNames: ['outcome'] as const,
      registers: [registry],
    });
  }

  /**
   * Registers inflow_worker_database_available (the DatabaseGate, 1 open / 0 waiting for the
   * database), inflow_worker_database_refusal (by cause: 1 while the gate waits because
   * PostgreSQL refuses the worker as configured) and inflow_worker_ready (1 when consuming with
   * the gate open), read at scrape time.
   */
  watchState(state: () => WorkerState): void {
    new Gauge({
      name: 'inflow_worker_database_available',
      help: '1 while PostgreSQL takes the worker\'s writes, 0 while the worker waits for the database (takes no job)',
      registers: [this.registry],
      collect() {
        this.set(state().databaseAvailable ? 1 : 0);
      },
    });
    // Every cause has its series at all times (0 or 1), so a rule never sees one appear or go
    // stale, and the alert can name the cause (deploy/prometheus/alerts.yml).
    new Gauge({
      name: 'inflow_worker_database_refusal',
      help: '1 for the cause while PostgreSQL refuses the worker as configured (authentication, read_only, database, schema, privilege) and the worker waits; else 0',
      labelNames: ['cause'] as const,
      registers: [this.registry],
      collect() {
        const refusal = state().databaseRefusal;
        for (const cause of DATABASE_REFUSAL_CAUSES) this.set({ cause }, refusal === cause ? 1 : 0);
      },
    });
    new Gauge({
      name: 'inflow_worker_ready',
      help: '1 while the worker consumes jobs with the database available, else 0',
      registers: [this.registry],
      collect() {
        const { databaseAvailable, consuming } = state();
        this.set(databaseAvailable && consuming ? 1 : 0);
      },
    });
  }

  batchWritten(rows: number, seconds: number): void {
    this.#batchSize.observe(rows);
    this.#insertSeconds.observe(seconds);
  }

  persisted(queueLatencyMs: number): void {
    this.#jobs.inc({ outcome: 'persisted' });
    this.#queueLatency.observe(queueLatencyMs / 1000);
  }

  duplicate(): void {
    this.#jobs.inc({ outcome: 'duplicate' });
  }

  failed(): void {
    this.#jobs.inc({ outcome: 'failed' });
  }
}
