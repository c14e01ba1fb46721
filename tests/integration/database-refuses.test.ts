/**
 * PostgreSQL answers but refuses the programs as they are configured (issue 21, "What to build"
 * 1): first it is read-only (what a standby answers after a failover: 25006), then it refuses
 * the password (a rotated password: 28P01). Each lasts longer than the whole retry budget (made
 * short here: 2 attempts, 100 ms apart). Meanwhile every POST is accepted, the worker's gate is
 * closed and its /readyz and metrics say why, the API answers reads it cannot serve with 503
 * database_unavailable, and no job spends an attempt. Once the database takes writes again the
 * worker resumes by itself: every 202 is persisted once, and the failed set stays empty.
 *
 * The programs log in as a role of their own, `inflow_app`, with a password checked by SCRAM,
 * while the test's own connections (the kit's `inflow`) stay trusted: the kit's PostgreSQL
 * trusts every login, so the test rewrites pg_hba.conf through SQL (COPY … TO the hba_file,
 * then pg_reload_conf) before the programs start.
 *
 * "No attempt spent" is shown, not slept on: BullMQ counts each start of a job (`ats`, which a
 * hand-back through the rate limit does not undo) apart from each failed attempt (`atm`). The
 * test waits until a job was started more than twice the whole budget, then checks that no job
 * has a failed attempt and none is in the failed set.
 */
import pg from 'pg';
import t from 'tap';
import { http, postEntry, startStack, waitFor, type ErrorBody, type Stack } from '@inflow/test-support';

t.setTimeout(240_000);

const ATTEMPTS = 2;
const APP_ROLE = 'inflow_app';
const APP_PASSWORD = 'inflow-test-password';

type Checks = Record<string, { ok: boolean; error?: string; reason?: string }>;

/** Ends the programs' sessions: their pools log in again, and new sessions see the new settings. */
async function endAppSessions(stack: Stack): Promise<void> {
  await stack.pg.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1', [APP_ROLE]);
}

/** BullMQ's own counts for a job: how often it was started, and how many attempts failed. */
async function jobCounts(stack: Stack, id: string): Promise<{ started: number; failed: number }> {
  const [started, failed] = await stack.redis.client.hmget(`bull:entries:${id}`, 'ats', 'atm');
  return { started: Number(started ?? 0), failed: Number(failed ?? 0) };
}

/** A login as the programs' role with `password`: the error's SQLSTATE, or 'ok'. */
async function loginAs(stack: Stack, password: string): Promise<string> {
  const client = new pg.Client({ host: '127.0.0.1', port: stack.pg.port, user: APP_ROLE, password, database: 'inflow' });
  try {
    await client.connect();
    return 'ok';
  } catch (error) {
    return String((error as { code?: unknown }).code);
  } finally {
    await client.end().catch(() => undefined);
  }
}

t.test('read-only, then a refused password, each past the retry budget: every 202 persisted, none failed', async (t) => {
  const stack = await startStack(t, {
    apis: 0,
    workers: 0,
    env: { ENTRY_JOB_ATTEMPTS: String(ATTEMPTS), ENTRY_RETRY_DELAY_MS: '100', DB_USER: APP_ROLE, DB_PASS: APP_PASSWORD },
  });
  await stack.pg.query(`CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${APP_PASSWORD}'`);
  await stack.pg.query(`GRANT SELECT, INSERT ON entries TO ${APP_ROLE}`);
  const hbaFile = (await stack.pg.query<{ hba_file: string }>('SHOW hba_file')).rows[0]?.hba_file;
  if (hbaFile === undefined) throw new Error('no hba_file');
  await stack.pg.query(
    `COPY (SELECT unnest(ARRAY['local all all trust', 'host all ${APP_ROLE} all scram-sha-256', 'host all all all trust'])) TO '${hbaFile}'`,
  );
  await stack.pg.query('SELECT pg_reload_conf()');
  await waitFor(async () => (await loginAs(stack, 'not-the-password')) === '28P01', { timeoutMs: 15_000, what: 'PostgreSQL to check the password' });
  t.equal(await loginAs(stack, APP_PASSWORD), 'ok', 'the programs’ password is accepted');

  const api = await stack.addApi();
  const worker = await stack.addWorker();
  const accepted: string[] = [];
  const accept = async (phase: string, count: number) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const result = await postEntry(api.url, { author: phase, message: `${phase} ${i}` });
      t.equal(result.status, 202, `${phase} POST ${i}: 202 (${result.text})`);
      ids.push(result.body.id);
    }
    accepted.push(...ids);
    return ids;
  };
  const workerReadiness = () => http<ErrorBody & { checks: Checks }>(`${worker.url}/readyz`);
  const workerMetrics = async () => (await http(`${worker.url}/metrics`)).text;

  /** Waits until a job of `ids` was started more than twice the whole budget; none may have spent an attempt. */
  const noAttemptSpent = async (phase: string, ids: readonly string[]) => {
    const started = await waitFor(
      async () => {
        const counts = await Promise.all(ids.map((id) => jobCounts(stack, id)));
        const spent = counts.filter((count) => count.failed > 0);
        if (spent.length > 0) throw new Error(`${phase}: ${spent.length} jobs spent attempts`);
        const most = Math.max(...counts.map((count) => count.started));
        return most > 2 * ATTEMPTS ? most : undefined;
      },
      { timeoutMs: 60_000, what: `${phase}: a job started more than ${2 * ATTEMPTS} times`, intervalMs: 100 },
    );
    t.ok(started > 2 * ATTEMPTS, `${phase}: a job was started ${started} times, past the budget of ${ATTEMPTS} attempts`);
    const counts = await Promise.all(ids.map((id) => jobCounts(stack, id)));
    t.same(counts.filter((count) => count.failed > 0), [], `${phase}: no job spent an attempt`);
    t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, `${phase}: the failed set is empty`);
    t.same(worker.logs.filter((line) => line.msg === 'entry attempt failed, will retry'), [], `${phase}: no attempt was logged`);
    t.equal(worker.child.exitCode, null, `${phase}: the worker keeps running`);
  };

  const resumed = async (phase: string, ids: readonly string[]) => {
    await waitFor(async () => (await workerReadiness()).status === 200, { timeoutMs: 30_000, what: `${phase}: the worker to be ready again` });
    const rows = await waitFor(
      async () => {
        const found = (await stack.rows()).filter((row) => row.author === phase);
        return found.length >= ids.length ? found : undefined;
      },
      { timeoutMs: 60_000, what: `${phase}: its entries to be persisted`, intervalMs: 250 },
    );
    t.same(rows.map((row) => row.id).sort(), [...ids].sort(), `${phase}: every 202 persisted, once`);
    t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, `${phase}: none failed`);
    t.match(await workerMetrics(), /^inflow_worker_database_available\{[^}]*\} 1$/m, `${phase}: the gate is open again`);
  };

  // -- read-only: what a standby answers after a failover ---------------------------------------
  await stack.pg.query(`ALTER ROLE ${APP_ROLE} SET default_transaction_read_only = on`);
  await endAppSessions(stack);
  const readOnly = await accept('read-only', 10);
  const closedReadOnly = await waitFor(
    async () => {
      const result = await workerReadiness();
      return /read-only/.test(result.body.checks['consumer']?.error ?? '') ? result : undefined;
    },
    { timeoutMs: 30_000, what: "the worker's /readyz to say the database is read-only" },
  );
  t.equal(closedReadOnly.status, 503);
  t.match(closedReadOnly.body.checks['consumer']?.error, /^waiting for the database since .*: PostgreSQL refuses: the database is read-only .*\(25006\); no job is taken/);
  t.notMatch(JSON.stringify(closedReadOnly.body), /inflow_app|read-only transaction/, "no role name nor PostgreSQL's own text");
  const readOnlyMetrics = await workerMetrics();
  t.match(readOnlyMetrics, /^inflow_worker_database_available\{[^}]*\} 0$/m);
  t.match(readOnlyMetrics, /^inflow_worker_database_refusal\{cause="read_only"[^}]*\} 1$/m, 'the alert reads cause="read_only"');
  t.match(readOnlyMetrics, /^inflow_worker_database_refusal\{cause="authentication"[^}]*\} 0$/m);
  // PostgreSQL's own error is in the log, and only there.
  await worker.waitForLog((line) => line.kind === 'misconfigured' && (line['err'] as { code?: unknown } | undefined)?.code === '25006');
  // A read-only database still serves reads.
  t.equal((await http(`${api.url}/api/entries`)).status, 200, 'reads are served by a read-only database');
  t.equal((await http(`${api.opsUrl}/readyz`)).status, 200, 'the API is ready: it reads, and enqueues');
  await noAttemptSpent('read-only', readOnly);

  await stack.pg.query(`ALTER ROLE ${APP_ROLE} RESET default_transaction_read_only`);
  await endAppSessions(stack);
  await resumed('read-only', readOnly);

  // -- a refused password: the role's password was rotated, the programs still have the old one --
  await stack.pg.query(`ALTER ROLE ${APP_ROLE} PASSWORD 'rotated-elsewhere'`);
  await endAppSessions(stack);
  const refused = await accept('password refused', 10);
  const closedAuth = await waitFor(
    async () => {
      const result = await workerReadiness();
      return /28P01/.test(result.body.checks['consumer']?.error ?? '') ? result : undefined;
    },
    { timeoutMs: 30_000, what: "the worker's /readyz to say the password is refused" },
  );
  t.match(closedAuth.body.checks['consumer']?.error, /PostgreSQL refuses: password authentication failed \(28P01\); no job is taken/);
  t.notMatch(JSON.stringify(closedAuth.body.checks['consumer']), /inflow_app/, 'no role name in the reason');
  t.match(await workerMetrics(), /^inflow_worker_database_refusal\{cause="authentication"[^}]*\} 1$/m, 'the alert reads cause="authentication"');

  // The API cannot read: 503 database_unavailable, never 500; its ops /readyz says why in words.
  const opsReady = await waitFor(
    async () => {
      const result = await http<ErrorBody & { checks: Checks }>(`${api.opsUrl}/readyz`);
      return result.body.checks['postgres']?.reason === 'PostgreSQL refuses: password authentication failed (28P01)' ? result : undefined;
    },
    { timeoutMs: 30_000, what: "the API's ops /readyz to say the password is refused" },
  );
  t.equal(opsReady.status, 503);
  t.match(opsReady.body, { error: { code: 'dependency_unavailable', message: 'not ready: postgres unavailable' } });
  const publicReady = await http<ErrorBody>(`${api.url}/readyz`);
  t.same(publicReady.body, { error: { code: 'not_ready', message: 'this instance is not ready to serve requests; retry' } }, 'the public /readyz says no more');
  for (const path of ['/api/entries', `/api/entries/${refused[0] ?? ''}`]) {
    const read = await http<ErrorBody>(`${api.url}${path}`);
    t.equal(read.status, 503, `GET ${path}: 503`);
    t.match(read.body, { error: { code: 'database_unavailable' } });
    t.notMatch(read.text, /password|inflow_app/, 'no raw error in the answer');
  }
  await noAttemptSpent('password refused', refused);

  await stack.pg.query(`ALTER ROLE ${APP_ROLE} PASSWORD '${APP_PASSWORD}'`);
  await resumed('password refused', refused);
  await waitFor(async () => (await http(`${api.opsUrl}/readyz`)).status === 200, { timeoutMs: 30_000, what: 'the API to be ready again' });

  // Every 202 of the test, persisted once; nothing failed; the same processes throughout.
  const all = (await stack.rows()).map((row) => row.id);
  t.same([...all].sort(), [...accepted].sort(), 'every accepted entry is a row, once');
  t.equal(await stack.redis.client.zcard('bull:entries:failed'), 0, 'the failed set is empty');
  t.equal(worker.child.exitCode, null);
  t.equal(api.child.exitCode, null);
  const list = await http<{ entries: unknown[] }>(`${api.url}/api/entries?limit=200`);
  t.equal(list.status, 200, 'reads work again without a restart');
  t.equal(list.body.entries.length, accepted.length);
});
