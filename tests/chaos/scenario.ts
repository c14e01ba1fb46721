/**
 * The skeleton every chaos scenario shares, so that a scenario file holds only its fault:
 *
 *   before (optional, no load yet) → the load starts → fault → the load stops (its failed POSTs
 *   retried) → undo what `before` changed → afterLoad (recovery waits) → the queue drains →
 *   afterDrain → reconciliation of every answer with the rows (verify.ts) → the table's row.
 *
 * The skeleton itself finds a scenario wrong when a job failed for good or the reconciliation
 * does (a 202 not persisted, a duplicate, an answer the fault does not explain); the hooks add
 * their own notes and problems. A scenario that throws still stops its load and undoes `before`,
 * so that the next one starts from a quiet stack.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { BASE_URL, type QueueCounts, waitDrained } from '@inflow/test-support';
import { Load, type LoadOptions } from './load.ts';
import { reconcile, withFindings, type Expectations, type ScenarioResult } from './verify.ts';

/** What one chaos run shares across its scenarios. */
export interface RunContext {
  /** Unique per run, so that the authors (and so the rows) of a run are its own. */
  runId: string;
  /** Every load run so far, with its author: the whole-stack scenario checks them all again. */
  loads: { author: string; load: Load }[];
}

/** What a hook may report: a note goes into the table's details, a problem fails the scenario. */
export interface Findings {
  readonly run: RunContext;
  /** Date.now() when the scenario began. */
  readonly startedAt: number;
  note: (text: string) => void;
  problem: (text: string) => void;
}

/** Requests a scenario made besides its load's (scenario 10's floods), counted into its row. */
export interface ExtraRequests {
  requests: number;
  ok2xx: number;
  /** By "METHOD status", like ScenarioResult.errors. */
  errors: Record<string, number>;
}

export interface ScenarioContext extends Findings {
  /** The scenario's load, through nginx; its clock (`load.now()`) starts as the load does. */
  readonly load: Load;
  /** The author of every entry the load submits. */
  readonly author: string;
  /** How many submissions have had a 202 so far. */
  accepted: () => number;
  /** Resolves when the load's clock reads `ms` (at once if it already has): the fault's schedule. */
  atLoadTime: (ms: number) => Promise<void>;
  countRequests: (extra: ExtraRequests) => void;
}

/** Puts back what a scenario's `before` changed in the stack. */
export type Undo = () => Promise<void>;

export interface ScenarioSpec<State> {
  id: string;
  name: string;
  /** The load and the fault, as the table's details describe them. */
  load: string;
  injected: string;
  /** The load's shape; default 6 GET and 6 POST workers, 15 ms apart, failed POSTs retried 45 s. */
  traffic?: Partial<Omit<LoadOptions, 'baseUrl' | 'author'>>;
  /** Changes to the stack before the load starts; may return what undoes them once the load stopped. */
  before?: (findings: Findings) => Promise<void> | Promise<Undo>;
  /** The fault, with the load running; the load stops when it resolves. */
  fault: (context: ScenarioContext) => Promise<State>;
  /** With the load stopped, before the drain: recovery waits, checks of the load's record. */
  afterLoad?: (context: ScenarioContext, state: State) => Promise<void> | void;
  /** With the queue drained and every accepted entry persisted. */
  afterDrain?: (context: ScenarioContext, queue: QueueCounts, state: State) => Promise<void> | void;
  /** Which failed answers the fault explains (verify.ts); by default none. */
  expect?: Expectations | ((state: State) => Expectations);
}

/** A scenario as the runner sees it. */
export interface Scenario {
  id: string;
  name: string;
  load: string;
  injected: string;
  run(context: RunContext): Promise<ScenarioResult>;
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

const DEFAULT_TRAFFIC = { getWorkers: 6, postWorkers: 6, paceMs: 15, retryForMs: 45_000 };

function addRequests(into: ExtraRequests, more: ExtraRequests): void {
  into.requests += more.requests;
  into.ok2xx += more.ok2xx;
  for (const [key, count] of Object.entries(more.errors)) into.errors[key] = (into.errors[key] ?? 0) + count;
}

export function defineScenario<State>(spec: ScenarioSpec<State>): Scenario {
  const row = { id: spec.id, name: spec.name, load: spec.load, injected: spec.injected };
  return {
    ...row,
    async run(run) {
      const startedAt = Date.now();
      const notes: string[] = [];
      const problems: string[] = [];
      const extra: ExtraRequests = { requests: 0, ok2xx: 0, errors: {} };
      const findings: Findings = {
        run,
        startedAt,
        note: (text) => notes.push(text),
        problem: (text) => problems.push(text),
      };

      const undo = await spec.before?.(findings);
      const author = `chaos-${run.runId}-s${spec.id}`;
      // Made after `before`, which may take seconds: the load's clock starts here.
      const load = new Load({ ...DEFAULT_TRAFFIC, ...spec.traffic, baseUrl: BASE_URL, author });
      run.loads.push({ author, load });
      const accepted = (): number => load.submissions.filter((submission) => submission.accepted).length;
      const context: ScenarioContext = {
        ...findings,
        load,
        author,
        accepted,
        atLoadTime: async (ms) => {
          const wait = ms - load.now();
          if (wait > 0) await sleep(wait);
        },
        countRequests: (more) => {
          addRequests(extra, more);
        },
      };

      let state: State;
      try {
        load.start();
        try {
          state = await spec.fault(context);
        } finally {
          await load.stop();
        }
      } finally {
        if (typeof undo === 'function') await undo();
      }
      await spec.afterLoad?.(context, state);

      const queue = await waitDrained(author, accepted());
      if (queue.failed > 0) problems.push(`${queue.failed} jobs failed for good`);
      await spec.afterDrain?.(context, queue, state);

      const expectations = typeof spec.expect === 'function' ? spec.expect(state) : (spec.expect ?? {});
      const result = await reconcile(row, load, author, expectations, startedAt);
      const counted: ExtraRequests = { requests: result.requests, ok2xx: result.ok2xx, errors: { ...result.errors } };
      addRequests(counted, extra);
      return withFindings({ ...result, ...counted }, notes, problems);
    },
  };
}
