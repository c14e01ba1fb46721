import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ConfigError, loadApiConfig, loadWorkerConfig, type Environment } from '../src/config.ts';

// The smallest environment both programs start with: the five required variables.
const REQUIRED: Readonly<Record<string, string>> = Object.freeze({
  REDIS_HOST: 'redis',
  DB_HOST: 'postgres',
  DB_NAME: 'inflow',
  DB_USER: 'inflow',
  DB_PASS: 's3cret',
});

const env = (overrides: Record<string, string | undefined> = {}): Environment => ({ ...REQUIRED, ...overrides });

type Loader = (env: Environment) => unknown;
type TestContext = Parameters<Parameters<typeof t.test>[0]>[0];
const LOADERS: readonly (readonly [string, Loader])[] = [
  ['api', loadApiConfig],
  ['worker', loadWorkerConfig],
];

/** Asserts that `load(environment)` throws a ConfigError naming `variable` first in its message. */
function assertConfigError(t: TestContext, load: Loader, environment: Environment, variable: string, what: string) {
  try {
    load(environment);
    t.fail(`${what}: expected a ConfigError naming ${variable}`);
  } catch (error) {
    t.type(error, ConfigError, `${what}: a ConfigError`);
    t.match(error, { name: 'ConfigError', variable }, `${what}: names ${variable}`);
    t.ok((error as Error).message.startsWith(`${variable} `), `${what}: the message starts with the variable`);
    t.notOk((error as Error).message.includes('\n'), `${what}: the message is one line`);
  }
}

t.test('required variables: missing or blank stops the load, naming the variable', async (t) => {
  for (const [service, load] of LOADERS) {
    for (const variable of Object.keys(REQUIRED)) {
      assertConfigError(t, load, env({ [variable]: undefined }), variable, `${service}: ${variable} missing`);
      assertConfigError(t, load, env({ [variable]: '' }), variable, `${service}: ${variable} empty`);
      assertConfigError(t, load, env({ [variable]: ' \t ' }), variable, `${service}: ${variable} blank`);
    }
  }
  t.match(
    (() => {
      try {
        loadApiConfig(env({ DB_PASS: undefined }));
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })(),
    /^DB_PASS is required/,
  );
});

t.test('DB_PASS_FILE: the password from a file (a Docker secret) while DB_PASS is unset', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'inflow-config-'));
  t.teardown(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const file = (name: string, contents: string) => {
    const path = join(dir, name);
    writeFileSync(path, contents);
    return path;
  };
  const withFile = (path: string, overrides: Record<string, string | undefined> = {}) => env({ DB_PASS: undefined, DB_PASS_FILE: path, ...overrides });
  const password = (load: Loader, environment: Environment) => (load(environment) as { db: { password: string } }).db.password;
  for (const [service, load] of LOADERS) {
    t.equal(password(load, withFile(file('plain', 'from-a-file'))), 'from-a-file', `${service}: the file's contents`);
    // As PostgreSQL's entrypoint reads POSTGRES_PASSWORD_FILE ($(< file)): trailing newlines go,
    // everything else stays.
    t.equal(password(load, withFile(file('echoed', ' two words \n\n'))), ' two words ', `${service}: trailing newlines dropped, spaces kept`);
    t.equal(password(load, withFile(` ${file('padded-path', 'x')} `)), 'x', `${service}: the path is trimmed like any value`);
    // DB_PASS wins whenever it is set; the file is not read (it does not even exist here).
    t.equal(password(load, withFile(join(dir, 'absent'), { DB_PASS: 'from-env' })), 'from-env', `${service}: DB_PASS set: DB_PASS`);
    assertConfigError(t, load, withFile(join(dir, 'absent'), { DB_PASS: '' }), 'DB_PASS', `${service}: DB_PASS empty is still refused`);
    assertConfigError(t, load, withFile(join(dir, 'absent')), 'DB_PASS_FILE', `${service}: a missing file`);
    assertConfigError(t, load, withFile(dir), 'DB_PASS_FILE', `${service}: a directory`);
    assertConfigError(t, load, withFile(file('empty', '\n')), 'DB_PASS_FILE', `${service}: an empty file`);
    assertConfigError(t, load, withFile(' '), 'DB_PASS_FILE', `${service}: a blank path`);
  }
  try {
    loadWorkerConfig(withFile(join(dir, 'absent')));
  } catch (error) {
    t.match((error as Error).message, /^DB_PASS_FILE names a file that cannot be read \(.*absent: ENOENT\)$/);
  }
});

t.test('host names: malformed values are refused', async (t) => {
  const bad = ['redis://redis:6379', 'two words', 'host/path', 'x'.repeat(254), 'rédis', 'a;b'];
  for (const [service, load] of LOADERS) {
    for (const variable of ['REDIS_HOST', 'DB_HOST']) {
      for (const value of bad) assertConfigError(t, load, env({ [variable]: value }), variable, `${service}: ${variable}=${JSON.stringify(value)}`);
    }
  }
  const good = loadApiConfig(env({ REDIS_HOST: '10.0.0.7', DB_HOST: '::1' }));
  t.match(good.redis, { mode: 'single', host: '10.0.0.7' });
  t.equal(good.db.host, '::1');
  t.match(loadApiConfig(env({ REDIS_HOST: '  redis.internal  ' })).redis, { host: 'redis.internal' }, 'values are trimmed');
});

// [variable, services that read it, malformed values, [raw, parsed] valid boundaries, default]
type IntegerCase = readonly [string, readonly string[], readonly string[], readonly (readonly [string, number])[]];
const INTEGERS: readonly IntegerCase[] = [
  ['REDIS_PORT', ['api', 'worker'], ['0', '65536', 'abc', '-1', '80.5', '1e3', '0x50', '+80', '80 80', '6379abc'], [['1', 1], ['65535', 65535], [' 6380 ', 6380]]],
  ['DB_PORT', ['api', 'worker'], ['0', '65536', 'postgres', '5432.0'], [['1', 1], ['65535', 65535]]],
  ['PORT', ['api'], ['0', '65536', 'http', '-80'], [['1', 1], ['65535', 65535]]],
  ['HEALTH_PORT', ['worker'], ['0', '65536', 'x'], [['1', 1], ['65535', 65535]]],
  // The API's least is 3 (API_POOL_MIN), the worker's 1: the next test.
  ['DB_POOL_MAX', ['api', 'worker'], ['0', '101', 'ten', '-5'], [['3', 3], ['100', 100]]],
  ['WORKER_CONCURRENCY', ['worker'], ['0', '1001', 'many', '2.5'], [['1', 1], ['1000', 1000]]],
  ['SHUTDOWN_TIMEOUT_MS', ['api', 'worker'], ['99', '600001', '5s', '-1'], [['100', 100], ['600000', 600000]]],
  ['TRUST_PROXY_HOPS', ['api'], ['11', '-1', 'true', '1.0'], [['0', 0], ['10', 10]]],
  ['ENTRY_JOB_ATTEMPTS', ['api'], ['0', '101', 'ten', '-1'], [['1', 1], ['100', 100]]],
  ['ENTRY_RETRY_DELAY_MS', ['api'], ['9', '600001', '1s', '-1'], [['10', 10], ['600000', 600000]]],
  ['IDEMPOTENCY_TTL_SECONDS', ['api'], ['59', '604801', '1h', '-1'], [['60', 60], ['604800', 604800]]],
  ['QUEUE_MEMORY_LIMIT_PERCENT', ['api'], ['9', '96', '80%', '0.8'], [['10', 10], ['95', 95]]],
  ['OPS_PORT', ['api'], ['0', '65536', 'ops', '-1'], [['1', 1], ['65535', 65535]]],
  ['EVENTS_MAX_STREAMS', ['api'], ['0', '10001', 'many', '-1', '1.5'], [['1', 1], ['10000', 10000]]],
  ['REDIS_REPLICA_ACKS', ['api'], ['11', '-1', 'one', '1.5'], [['0', 0], ['10', 10]]],
  ['REDIS_REPLICA_ACK_TIMEOUT_MS', ['api'], ['9', '1501', '1s', '-1'], [['10', 10], ['1500', 1500]]],
];

const pick = (config: unknown, variable: string): unknown => {
  const path: Record<string, readonly string[]> = {
    REDIS_PORT: ['redis', 'port'],
    DB_PORT: ['db', 'port'],
    PORT: ['port'],
    HEALTH_PORT: ['healthPort'],
    DB_POOL_MAX: ['db', 'poolMax'],
    WORKER_CONCURRENCY: ['concurrency'],
    SHUTDOWN_TIMEOUT_MS: ['shutdownTimeoutMs'],
    TRUST_PROXY_HOPS: ['trustProxyHops'],
    ENTRY_JOB_ATTEMPTS: ['entryRetry', 'attempts'],
    ENTRY_RETRY_DELAY_MS: ['entryRetry', 'delayMs'],
    IDEMPOTENCY_TTL_SECONDS: ['idempotencyTtlSeconds'],
    QUEUE_MEMORY_LIMIT_PERCENT: ['queueMemoryLimitPercent'],
    OPS_PORT: ['opsPort'],
    EVENTS_MAX_STREAMS: ['eventsMaxStreams'],
    REDIS_REPLICA_ACKS: ['replicaAcks', 'count'],
    REDIS_REPLICA_ACK_TIMEOUT_MS: ['replicaAcks', 'timeoutMs'],
  };
  return (path[variable] ?? []).reduce<unknown>((value, key) => (value as Record<string, unknown>)[key], config);
};

t.test('integer variables: malformed or out of range is refused, boundaries accepted', async (t) => {
  for (const [variable, services, bad, good] of INTEGERS) {
    for (const [service, load] of LOADERS) {
      if (!services.includes(service)) {
        // A program reads only its own variables: a bad value of the other's is not its concern.
        t.doesNotThrow(() => load(env({ [variable]: 'garbage' })), `${service} ignores ${variable}`);
        continue;
      }
      for (const value of bad) assertConfigError(t, load, env({ [variable]: value }), variable, `${service}: ${variable}=${JSON.stringify(value)}`);
      for (const [raw, parsed] of good) t.equal(pick(load(env({ [variable]: raw })), variable), parsed, `${service}: ${variable}=${JSON.stringify(raw)}`);
      t.match(
        (() => {
          try {
            load(env({ [variable]: 'nope' }));
          } catch (error) {
            return (error as Error).message;
          }
          return '';
        })(),
        new RegExp(`^${variable} must be an integer from \\d+ to \\d+ \\(got "nope"\\)$`),
        `${service}: ${variable} message says what is expected and what was given`,
      );
    }
  }
});

t.test('DB_POOL_MAX: the API shares its pool out, one connection per share at least; the worker takes 1', async (t) => {
  for (const value of ['1', '2']) {
    t.throws(() => loadApiConfig(env({ DB_POOL_MAX: value })), { message: `DB_POOL_MAX must be an integer from 3 to 100 (got "${value}")` }, `api: ${value}`);
    t.equal(loadWorkerConfig(env({ DB_POOL_MAX: value })).db.poolMax, Number(value), `worker: ${value}`);
  }
});

t.test('OPS_PORT: never the same port as PORT, whichever of them is defaulted', async (t) => {
  assertConfigError(t, loadApiConfig, env({ PORT: '9000', OPS_PORT: '9000' }), 'OPS_PORT', 'both set to 9000');
  assertConfigError(t, loadApiConfig, env({ PORT: '8081' }), 'OPS_PORT', 'PORT set to the default ops port');
  assertConfigError(t, loadApiConfig, env({ OPS_PORT: '8080' }), 'OPS_PORT', 'OPS_PORT set to the default port');
  t.throws(() => loadApiConfig(env({ PORT: '9000', OPS_PORT: ' 9000 ' })), { message: 'OPS_PORT must differ from PORT (both are 9000)' });
  t.match(loadApiConfig(env({ PORT: '8081', OPS_PORT: '8080' })), { port: 8081, opsPort: 8080 }, 'swapped is fine');
  t.doesNotThrow(() => loadWorkerConfig(env({ PORT: '9000', OPS_PORT: '9000' })), 'the worker reads neither');
});

t.test('INSTANCE_ID and LOG_LEVEL', async (t) => {
  for (const [service, load] of LOADERS) {
    for (const value of ['api 1', 'api/1', 'a'.repeat(64), 'äpi', 'api:1']) {
      assertConfigError(t, load, env({ INSTANCE_ID: value }), 'INSTANCE_ID', `${service}: INSTANCE_ID=${JSON.stringify(value)}`);
    }
    for (const value of ['INFO', 'verbose', 'warning', '1']) {
      assertConfigError(t, load, env({ LOG_LEVEL: value }), 'LOG_LEVEL', `${service}: LOG_LEVEL=${JSON.stringify(value)}`);
    }
    t.match(load(env({ INSTANCE_ID: 'a'.repeat(63) })), { instanceId: 'a'.repeat(63) });
    t.match(load(env({ INSTANCE_ID: 'api-1.eu_west' })), { instanceId: 'api-1.eu_west' });
    for (const level of ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) {
      t.match(load(env({ LOG_LEVEL: level })), { logLevel: level });
    }
  }
});

t.test('defaults', async (t) => {
  const api = loadApiConfig(env());
  t.same(api, {
    instanceId: hostname().slice(0, 63),
    logLevel: 'info',
    redis: { mode: 'single', host: 'redis', port: 6379 },
    db: { host: 'postgres', port: 5432, name: 'inflow', user: 'inflow', password: 's3cret', poolMax: 10 },
    shutdownTimeoutMs: 8000,
    port: 8080,
    trustProxyHops: 1,
    entryRetry: { attempts: 10, delayMs: 500 },
    idempotencyTtlSeconds: 900,
    queueMemoryLimitPercent: 80,
    opsPort: 8081,
    eventsMaxStreams: 200,
    replicaAcks: { count: 0, timeoutMs: 1000 },
  });
  const worker = loadWorkerConfig(env({ INSTANCE_ID: '  ' }));
  t.same(worker, {
    instanceId: hostname().slice(0, 63),
    logLevel: 'info',
    redis: { mode: 'single', host: 'redis', port: 6379 },
    db: { host: 'postgres', port: 5432, name: 'inflow', user: 'inflow', password: 's3cret', poolMax: 10 },
    shutdownTimeoutMs: 8000,
    concurrency: 64,
    healthPort: 8081,
  });
});

t.test('every variable is read', async (t) => {
  const all = {
    ...REQUIRED,
    REDIS_PORT: '6380',
    DB_PORT: '5433',
    PORT: '3000',
    HEALTH_PORT: '3001',
    INSTANCE_ID: 'api-2',
    LOG_LEVEL: 'warn',
    DB_POOL_MAX: '20',
    WORKER_CONCURRENCY: '8',
    SHUTDOWN_TIMEOUT_MS: '5000',
    TRUST_PROXY_HOPS: '2',
    ENTRY_JOB_ATTEMPTS: '3',
    ENTRY_RETRY_DELAY_MS: '250',
    IDEMPOTENCY_TTL_SECONDS: '3600',
    QUEUE_MEMORY_LIMIT_PERCENT: '70',
    OPS_PORT: '3002',
    EVENTS_MAX_STREAMS: '50',
    REDIS_REPLICA_ACKS: '1',
    REDIS_REPLICA_ACK_TIMEOUT_MS: '500',
  };
  t.same(loadApiConfig(all), {
    instanceId: 'api-2',
    logLevel: 'warn',
    redis: { mode: 'single', host: 'redis', port: 6380 },
    db: { host: 'postgres', port: 5433, name: 'inflow', user: 'inflow', password: 's3cret', poolMax: 20 },
    shutdownTimeoutMs: 5000,
    port: 3000,
    trustProxyHops: 2,
    entryRetry: { attempts: 3, delayMs: 250 },
    idempotencyTtlSeconds: 3600,
    queueMemoryLimitPercent: 70,
    opsPort: 3002,
    eventsMaxStreams: 50,
    replicaAcks: { count: 1, timeoutMs: 500 },
  });
  t.same(loadWorkerConfig(all), {
    instanceId: 'api-2',
    logLevel: 'warn',
    redis: { mode: 'single', host: 'redis', port: 6380 },
    db: { host: 'postgres', port: 5433, name: 'inflow', user: 'inflow', password: 's3cret', poolMax: 20 },
    shutdownTimeoutMs: 5000,
    concurrency: 8,
    healthPort: 3001,
  });
});

t.test('REDIS_SENTINELS: the sentinels replace REDIS_HOST and REDIS_PORT', async (t) => {
  for (const [service, load] of LOADERS) {
    const config = load(env({ REDIS_HOST: undefined, REDIS_PORT: 'not read', REDIS_SENTINELS: ' sentinel1:26379, sentinel2:26380 ,10.0.0.3:26379' })) as { redis: unknown };
    t.same(
      config.redis,
      {
        mode: 'sentinel',
        sentinels: [
          { host: 'sentinel1', port: 26379 },
          { host: 'sentinel2', port: 26380 },
          { host: '10.0.0.3', port: 26379 },
        ],
        masterName: 'inflow',
      },
      `${service}: every sentinel, the default master name`,
    );
    t.match(load(env({ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'queue-1' })), { redis: { mode: 'sentinel', masterName: 'queue-1' } }, `${service}: REDIS_SENTINEL_MASTER`);
    t.match(load(env({ REDIS_SENTINELS: ' ' })), { redis: { mode: 'single', host: 'redis', port: 6379 } }, `${service}: blank is unset: one Redis`);
    t.ok(Object.isFrozen((load(env({ REDIS_SENTINELS: 's:1' })) as { redis: { sentinels: object[] } }).redis.sentinels[0]), `${service}: frozen down to each address`);
    for (const bad of ['sentinel1', 'sentinel1:', ':26379', 's:0', 's:65536', 's:26379,', 'redis://s:26379', 'a b:1', 's:1,s:1']) {
      assertConfigError(t, load, env({ REDIS_SENTINELS: bad }), 'REDIS_SENTINELS', `${service}: REDIS_SENTINELS=${JSON.stringify(bad)}`);
    }
    assertConfigError(t, load, env({ REDIS_SENTINELS: 's:1', REDIS_SENTINEL_MASTER: 'a b' }), 'REDIS_SENTINEL_MASTER', `${service}: a master name with a space`);
    // Without sentinels REDIS_HOST is what the apps connect to, and stays required.
    assertConfigError(t, load, env({ REDIS_HOST: undefined }), 'REDIS_HOST', `${service}: no sentinels, no REDIS_HOST`);
  }
  t.throws(() => loadApiConfig(env({ REDIS_SENTINELS: 's:1,s:1' })), { message: 'REDIS_SENTINELS names s:1 twice' });
  t.throws(() => loadApiConfig(env({ REDIS_SENTINELS: 's:1,t' })), { message: 'REDIS_SENTINELS must be host:port pairs separated by commas (got "t")' });
  t.same(loadApiConfig(env()).replicaAcks, { count: 0, timeoutMs: 1000 }, 'no replica acks by default, 1 s when asked for');
});

t.test('the result is frozen, nested objects included', async (t) => {
  for (const [service, load] of LOADERS) {
    const config = load(env()) as { logLevel: string; redis: object; db: object };
    t.ok(Object.isFrozen(config), `${service}: config frozen`);
    t.ok(Object.isFrozen(config.redis), `${service}: redis frozen`);
    t.ok(Object.isFrozen(config.db), `${service}: db frozen`);
  }
});

t.test('the environment object is only read', async (t) => {
  const source = { ...REQUIRED, PORT: ' 3000 ' };
  const before = JSON.stringify(source);
  loadApiConfig(source);
  t.equal(JSON.stringify(source), before);
});
