/**
 * The chaos suite: faults injected into the compose stack under load, and an account of every
 * answer. Brings the stack up itself (tests/support/compose.ts, as project INFLOW_E2E_PROJECT on
 * INFLOW_PORT), runs the scenarios (scenarios/index.ts: one file each, the order they run in,
 * every one built on the skeleton of scenario.ts) one after the other, prints a table of the
 * counts, writes it to test-results/chaos.json and chaos.md, removes the stack (volumes too) and
 * exits non-zero on any loss, duplicate or unexpected failure.
 *
 *   npm run chaos                                   (from the repository root)
 *   node chaos/run.ts [--only 1,3] [--reuse] [--keep]   (from tests/)
 *
 * --only: run only these scenarios. --reuse: use the stack already running as the project
 * (no build, no initial `down`). --keep: leave the stack running afterwards.
 *
 * The stack runs with a short retry budget (retry-budget.ts): scenario 7 keeps PostgreSQL down
 * ten times as long, and no scenario may end with a failed job. A stack started otherwise
 * (--reuse) keeps its own budget.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  BASE_URL,
  down,
  duplicateIds,
  PROJECT,
  queueCounts,
  REPO_ROOT,
  resolveContainers,
  up,
  waitHealthy,
} from '@inflow/test-support';
import { CHAOS_RETRY } from './retry-budget.ts';
import type { RunContext } from './scenario.ts';
import { SCENARIOS } from './scenarios/index.ts';
import type { ScenarioResult } from './verify.ts';

process.env['ENTRY_JOB_ATTEMPTS'] = String(CHAOS_RETRY.attempts);
process.env['ENTRY_RETRY_DELAY_MS'] = String(CHAOS_RETRY.delayMs);

const { values } = parseArgs({
  options: { only: { type: 'string' }, reuse: { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } },
});
const only = values.only?.split(',').map((id) => id.trim());
const selected = SCENARIOS.filter((scenario) => only === undefined || only.includes(scenario.id));

const say = (line: string): void => {
  process.stdout.write(`${new Date().toISOString().slice(11, 19)}  ${line}\n`);
};

function errorsText(errors: Record<string, number>): string {
  const entries = Object.entries(errors).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0 ? 'none' : entries.map(([status, count]) => `${status}: ${count}`).join(', ');
}

function markdown(results: readonly ScenarioResult[], meta: Record<string, string>): string {
  const header =
    '| # | scenario | requests | 2xx | errors (method status: count) | failed GETs | entries submitted | accepted (202) | persisted | lost | duplicated | persisted without 202 (in flight) | retries replayed | result |';
  const rule = `|${' --- |'.repeat(14)}`;
  const rows = results.map((r) =>
    [
      r.id,
      r.name,
      r.requests,
      r.ok2xx,
      errorsText(r.errors),
      r.failedGets,
      r.submitted,
      r.accepted,
      r.persisted,
      r.lost,
      r.duplicated,
      r.inFlightPersisted,
      r.replayed,
      r.passed ? 'PASS' : 'FAIL',
    ].join(' | '),
  );
  const details = results.map((r) =>
    [
      `### ${r.id}. ${r.name} (${r.seconds} s)`,
      '',
      `- load: ${r.load}`,
      `- injected: ${r.injected}`,
      ...r.notes.map((note) => `- ${note}`),
      ...r.problems.map((problem) => `- **problem:** ${problem}`),
    ].join('\n'),
  );
  return [
    '# Chaos run',
    '',
    ...Object.entries(meta).map(([name, value]) => `- ${name}: ${value}`),
    '',
    header,
    rule,
    ...rows.map((row) => `| ${row} |`),
    '',
    ...details,
    '',
  ].join('\n');
}

/** A row for a scenario that has no counts of its own to show. */
function unfinished(scenario: { id: string; name: string; load: string; injected: string }, problems: string[]): ScenarioResult {
  return {
    id: scenario.id,
    name: scenario.name,
    load: scenario.load,
    injected: scenario.injected,
    seconds: 0,
    requests: 0,
    ok2xx: 0,
    errors: {},
    failedGets: 0,
    submitted: 0,
    accepted: 0,
    neverAccepted: 0,
    replayed: 0,
    persisted: 0,
    lost: 0,
    duplicated: 0,
    inFlightPersisted: 0,
    notes: [],
    problems,
    passed: false,
  };
}

async function main(): Promise<number> {
  const startedAt = Date.now();
  const runId = `${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, '')}-${randomBytes(2).toString('hex')}`;
  say(`chaos run ${runId}: project ${PROJECT}, ${BASE_URL}, scenarios ${selected.map((s) => s.id).join(', ')}`);
  if (!values.reuse) {
    down();
    say('building and starting the stack');
    await up();
  } else {
    await waitHealthy();
  }
  resolveContainers();
  const upSeconds = Math.round((Date.now() - startedAt) / 1000);
  say(`stack healthy after ${upSeconds} s`);

  const context: RunContext = { runId, loads: [] };
  const results: ScenarioResult[] = [];
  let crashed: unknown;
  try {
    for (const scenario of selected) {
      say(`scenario ${scenario.id}: ${scenario.name}`);
      try {
        const result = await scenario.run(context);
        results.push(result);
        say(`  ${result.passed ? 'PASS' : 'FAIL'}: ${result.requests} requests, ${result.accepted} accepted, ${result.persisted} persisted, ${result.lost} lost, ${result.duplicated} duplicated`);
        for (const note of result.notes) say(`  - ${note}`);
        for (const problem of result.problems) say(`  ! ${problem}`);
      } catch (error) {
        say(`  scenario ${scenario.id} could not finish: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
        results.push(unfinished(scenario, [`the scenario did not finish: ${error instanceof Error ? error.message : String(error)}`]));
      }
    }
    const duplicates = await duplicateIds();
    const queue = await queueCounts();
    if (duplicates > 0) say(`! ${duplicates} ids occur in more than one row`);
    if ((queue?.failed ?? 0) > 0) say(`! ${queue?.failed ?? 0} jobs in the failed set`);
    if (duplicates > 0 || (queue?.failed ?? 0) > 0) {
      results.push(unfinished({ id: '*', name: 'whole database', load: '', injected: '' }, [`${duplicates} duplicate ids, ${queue?.failed ?? 0} failed jobs`]));
    }
  } catch (error) {
    crashed = error;
  } finally {
    if (!values.keep) down();
  }

  const meta = {
    run: runId,
    project: PROJECT,
    url: BASE_URL,
    'stack up (build included)': `${upSeconds} s`,
    'total runtime': `${Math.round((Date.now() - startedAt) / 1000)} s`,
  };
  const text = markdown(results, meta);
  process.stdout.write(`\n${text}\n`);
  const dir = join(REPO_ROOT, 'test-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'chaos.md'), text);
  writeFileSync(join(dir, 'chaos.json'), `${JSON.stringify({ ...meta, results }, null, 2)}\n`);
  if (crashed !== undefined) throw crashed instanceof Error ? crashed : new Error('the chaos run failed', { cause: crashed });
  const failed = results.filter((result) => !result.passed);
  say(failed.length === 0 ? `all ${results.length} scenarios passed` : `${failed.length} of ${results.length} scenarios failed`);
  return failed.length === 0 && results.length === selected.length ? 0 : 1;
}

process.exitCode = await main();
