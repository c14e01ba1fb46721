/**
 * What a real PostgreSQL answers the worker when it refuses it as configured, one case per
 * cause (shared/src/database-errors.ts): the write fails with the database's error, which is
 * classified `misconfigured` (the worker waits, spends no attempt), and the gate's probe
 * (EntriesRepository.probeWrite) fails the same way, so the worker resumes only once the
 * database takes writes. A `select 1` passes on a read-only database: the probe must not be one.
 */
import { randomUUID } from 'node:crypto';
import { startPostgres, type Teardown } from '@inflow/test-support';
import { classifyDatabaseError, createDatabase, createLogger, describeDatabaseRefusal, type DatabaseConfig } from '@inflow/shared';
import { sql } from 'kysely';
import t from 'tap';
import { EntriesRepository } from '../src/entries/entries.repository.ts';

const logger = createLogger({ service: 'test', instanceId: 'test', level: 'silent', sync: true });
const pg = await startPostgres(t);

/** The worker's repository as `config` connects, closed with the test. */
function repositoryAs(t: Teardown, config: Partial<DatabaseConfig>) {
  const database = createDatabase(pg.databaseConfig(config), logger);
  t.teardown(() => database.close());
  return { database, repository: new EntriesRepository(database.db) };
}

const row = () => ({
  id: randomUUID(),
  author: 'probe test',
  message: 'a row the database should refuse to take for its own sake',
  accepted_by: 'api-1',
  persisted_by: 'worker-test',
  created_at: new Date(),
});

/** A login role of its own (the kit's PostgreSQL trusts local logins: no password is checked). */
async function role(options: { grants?: string; settings?: string; login?: boolean } = {}): Promise<string> {
  const name = `r_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await pg.query(`CREATE ROLE ${name} ${options.login === false ? 'NOLOGIN' : 'LOGIN'}`);
  if (options.grants !== undefined) await pg.query(`GRANT ${options.grants} ON entries TO ${name}`);
  if (options.settings !== undefined) await pg.query(`ALTER ROLE ${name} SET ${options.settings}`);
  return name;
}

/** A database of its own with `schema` run in it. */
async function databaseWith(schema: string): Promise<string> {
  const name = `d_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  await pg.query(`CREATE DATABASE ${name}`);
  const { database } = repositoryAs(t, { name });
  await sql.raw(schema).execute(database.db);
  return name;
}

t.test('a database that takes writes: the probe passes and writes nothing', async (t) => {
  const { repository } = repositoryAs(t, {});
  const before = await pg.query<{ n: string }>('SELECT count(*) AS n FROM entries');
  await t.resolves(repository.probeWrite());
  const after = await pg.query<{ n: string }>('SELECT count(*) AS n FROM entries');
  t.equal(after.rows[0]?.n, before.rows[0]?.n, 'no row written');
});

const cases: readonly { what: string; sqlstate: RegExp; cause: string; config: () => Promise<Partial<DatabaseConfig>> }[] = [
  {
    what: 'a read-only database (what a standby answers after a failover)',
    sqlstate: /^25006$/,
    cause: 'read_only',
    config: async () => ({ user: await role({ grants: 'SELECT, INSERT', settings: 'default_transaction_read_only = on' }) }),
  },
  {
    what: 'a role that may not log in',
    sqlstate: /^28000$/,
    cause: 'authentication',
    config: async () => ({ user: await role({ grants: 'SELECT, INSERT', login: false }) }),
  },
  {
    what: 'a role without the INSERT privilege',
    sqlstate: /^42501$/,
    cause: 'privilege',
    config: async () => ({ user: await role({ grants: 'SELECT' }) }),
  },
  {
    what: 'a missing database',
    sqlstate: /^3D000$/,
    cause: 'database',
    config: () => Promise.resolve({ name: `missing_${randomUUID().slice(0, 8)}` }),
  },
  {
    what: 'a database without the entries table',
    sqlstate: /^42P01$/,
    cause: 'schema',
    config: async () => ({ name: await databaseWith('SELECT 1') }),
  },
  {
    what: 'an entries table without a column the worker writes (a migration not applied)',
    sqlstate: /^42703$/,
    cause: 'schema',
    config: async () => ({
      name: await databaseWith('CREATE TABLE entries (id uuid PRIMARY KEY, author text, message text, created_at timestamptz, persisted_at timestamptz DEFAULT now())'),
    }),
  },
];

for (const { what, sqlstate, cause, config } of cases) {
  t.test(`${what}: the write and the probe fail with ${sqlstate.source.slice(1, -1)}, misconfigured (${cause})`, async (t) => {
    const { repository } = repositoryAs(t, await config());
    for (const [name, call] of [
      ['the write', () => repository.insertMany([row()])],
      ['the probe', () => repository.probeWrite()],
    ] as const) {
      const error = await call().then(
        () => undefined,
        (error: unknown) => error,
      );
      t.match((error as { code?: string } | undefined)?.code, sqlstate, `${name} fails with PostgreSQL's ${sqlstate.source.slice(1, -1)}`);
      t.equal(classifyDatabaseError(error), 'misconfigured', `${name}: the database's error, not the entry's`);
      t.equal(describeDatabaseRefusal(error)?.cause, cause, `${name}: cause ${cause}`);
    }
  });
}

t.test('read-only: a select 1 passes where the probe fails', async (t) => {
  const { database, repository } = repositoryAs(t, { user: await role({ grants: 'SELECT, INSERT', settings: 'default_transaction_read_only = on' }) });
  await t.resolves(database.ping(), 'select 1 answers on a read-only database');
  await t.rejects(repository.probeWrite(), { code: '25006' }, 'the probe does not');
});
