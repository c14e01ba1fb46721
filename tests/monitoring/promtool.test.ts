/**
 * The Prometheus configuration and alert rules (deploy/prometheus/) checked and unit-tested with
 * promtool: `promtool check config`, `promtool check rules`, and `promtool test rules` on
 * alerts.test.yml, whose cases fire and do not fire each alert on synthetic series. promtool
 * runs from the Prometheus image the stack runs (PROMETHEUS_IMAGE), in a container, the folder
 * mounted read-only: the host needs no promtool.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { promtool as runPromtool, REPO_ROOT } from '@inflow/test-support';

const DIR = join(REPO_ROOT, 'deploy', 'prometheus');

async function promtool(...args: string[]) {
  const result = await runPromtool(DIR, args);
  return { status: result.status, output: `${result.stdout}\n${result.stderr}` };
}

interface Rule {
  alert?: string;
  for?: string;
  annotations?: Record<string, string>;
}

const rules = (parse(readFileSync(join(DIR, 'alerts.yml'), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((group) => group.rules);
const alerts = rules.filter((rule): rule is Rule & { alert: string } => typeof rule.alert === 'string');

t.test('promtool check config', async (t) => {
  const { status, output } = await promtool('check', 'config', 'prometheus.yml');
  t.equal(status, 0, output);
  t.match(output, /SUCCESS: prometheus\.yml is valid/);
});

t.test('promtool check rules', async (t) => {
  const { status, output } = await promtool('check', 'rules', 'alerts.yml');
  t.equal(status, 0, output);
  t.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

t.test('promtool test rules: every alert fires and stays silent in the unit tests', async (t) => {
  const { status, output } = await promtool('test', 'rules', 'alerts.test.yml');
  t.equal(status, 0, output);
  t.match(output, /SUCCESS/);
});

t.test('each alert has a for:, a severity and a summary that says what to do; each is unit-tested both ways', async (t) => {
  const cases = (parse(readFileSync(join(DIR, 'alerts.test.yml'), 'utf8')) as {
    tests: { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
  }).tests.flatMap((test) => test.alert_rule_test ?? []);
  t.ok(alerts.length >= 7, `${alerts.length} alerts`);
  for (const alert of alerts) {
    t.match(alert.for, /^\d+[smh]$/, `${alert.alert} has a for:`);
    t.ok((alert.annotations?.['summary'] ?? '').length > 40, `${alert.alert} has a summary`);
    const own = cases.filter((c) => c.alertname === alert.alert);
    t.ok(own.some((c) => (c.exp_alerts ?? []).length > 0), `${alert.alert}: a case where it fires`);
    t.ok(own.some((c) => (c.exp_alerts ?? []).length === 0), `${alert.alert}: a case where it does not`);
  }
});

t.test('docs/operations.md documents every alert', async (t) => {
  const operations = readFileSync(join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
  for (const alert of alerts) t.ok(operations.includes(alert.alert), `docs/operations.md names ${alert.alert}`);
});
