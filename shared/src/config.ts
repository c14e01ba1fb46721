import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { DEFAULT_ENTRY_RETRY, type EntryRetryPolicy } from './queue.ts';

/**
 * Configuration is read from the environment once, at start, into a frozen object; nothing
 * else reads process.env. A missing or malformed variable is a ConfigError naming it.
 */
export class ConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, problem: string) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

export type Environment = Readonly<Record<string, string | undefined>>;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface RedisAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Where the apps find Redis: one server (REDIS_HOST, REDIS_PORT), or the Redis Sentinels that
 * name the current primary of a replicated Redis and announce its failovers (REDIS_SENTINELS,
 * REDIS_SENTINEL_MASTER; docs/guarantees.md).
 */
export type RedisConfig =
  | ({ readonly mode: 'single' } & RedisAddress)
  | { readonly mode: 'sentinel'; readonly sentinels: readonly RedisAddress[]; readonly masterName: string };

/**
 * How many Redis replicas must hold an accepted entry before the API answers 202 (Redis WAIT),
 * and how long it waits for them before it answers 503 queue_unavailable instead.
 */
export interface ReplicaAcks {
  /** 0: no WAIT, the single-Redis layout. */
  readonly count: number;
  readonly timeoutMs: number;
}

export interface DatabaseConfig {
  readonly host: string;
  readonly port: number;
  readonly name: string;
  readonly user: string;
  readonly password: string;
  /**
   * Largest number of pooled connections this process opens, in all (default 10). The API shares
   * them out (database.ts apiPoolShares), so it needs at least 3; the worker at least 1.
   */
  readonly poolMax: number;
}

interface CommonConfig {
  readonly instanceId: string;
  readonly logLevel: LogLevel;
  readonly redis: RedisConfig;
  readonly db: DatabaseConfig;
  /** How long a graceful shutdown may take before the process gives up waiting and exits. */
  readonly shutdownTimeoutMs: number;
}

export interface ApiConfig extends CommonConfig {
  readonly port: number;
  /** Express "trust proxy": the number of proxy hops in front of the API (nginx is one). */
  readonly trustProxyHops: number;
  /**
   * Port of the internal ops server: GET /metrics and the detailed GET /readyz (which dependency,
   * how long it took, why it failed). nginx never proxies it. Default 8081; never PORT.
   */
  readonly opsPort: number;
  /**
   * Most GET /api/events streams this process serves at once; the next one is answered 503
   * too_many_streams. Default 200 (see .env.example for why).
   */
  readonly eventsMaxStreams: number;
  /** Retries of an entry whose write failed for an unknown reason (see EntryRetryPolicy). */
  readonly entryRetry: EntryRetryPolicy;
  /** How long an Idempotency-Key is remembered: the window in which a retry is recognised. */
  readonly idempotencyTtlSeconds: number;
  /**
   * New entries are refused (503) once Redis uses this share of its maxmemory, in percent. The
   * rest is the worker's: at maxmemory Redis refuses every BullMQ script, the worker's too, and
   * the queue could never drain.
   */
  readonly queueMemoryLimitPercent: number;
  /** REDIS_REPLICA_ACKS, REDIS_REPLICA_ACK_TIMEOUT_MS (docs/guarantees.md). */
  readonly replicaAcks: ReplicaAcks;
}

export interface WorkerConfig extends CommonConfig {
  /** Jobs one worker process handles at once. */
  readonly concurrency: number;
  /** Port of the worker's small HTTP server for /healthz, /readyz and /metrics. */
  readonly healthPort: number;
}

// Each reader takes the raw value (undefined when unset or blank) and returns the typed value
// or throws a ConfigError naming the variable.
type Reader<T> = (variable: string, raw: string | undefined) => T;

const required =
  (what: string): Reader<string> =>
  (variable, raw) => {
    if (raw === undefined) throw new ConfigError(variable, `is required (${what})`);
    return raw;
  };

const withDefault =
  <T>(reader: Reader<T>, fallback: T | (() => T)): Reader<T> =>
  (variable, raw) => {
    if (raw !== undefined) return reader(variable, raw);
    return typeof fallback === 'function' ? (fallback as () => T)() : fallback;
  };

const integer =
  (min: number, max: number): Reader<number> =>
  (variable, raw) => {
    const value = raw === undefined || !/^\d+$/.test(raw) ? Number.NaN : Number(raw);
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(variable, `must be an integer from ${min} to ${max} (got "${raw ?? ''}")`);
    }
    return value;
  };

const port = integer(1, 65_535);

/** `read`, refusing the value of another variable: two servers of one process need two ports. */
const differentFrom =
  <T>(read: Reader<T>, other: { variable: string; value: T }): Reader<T> =>
  (variable, raw) => {
    const value = read(variable, raw);
    if (value === other.value) throw new ConfigError(variable, `must differ from ${other.variable} (both are ${String(value)})`);
    return value;
  };

const hostName: Reader<string> = (variable, raw) => {
  const value = required('a host name or IP address')(variable, raw);
  if (!/^[A-Za-z0-9._:-]{1,253}$/.test(value)) {
    throw new ConfigError(variable, `must be a host name or IP address (got "${value}")`);
  }
  return value;
};

const identifier =
  (what: string): Reader<string> =>
  (variable, raw) => {
    const value = required(what)(variable, raw);
    if (!/^[A-Za-z0-9._-]{1,63}$/.test(value)) {
      throw new ConfigError(variable, `must be 1 to 63 letters, digits, ".", "_" or "-" (got "${value}")`);
    }
    return value;
  };

/** `host:port,host:port`: at least one address, each once. */
const addressList: Reader<RedisAddress[]> = (variable, raw) => {
  const addresses = required('host:port pairs separated by commas')(variable, raw)
    .split(',')
    .map((item) => item.trim())
    .map((item) => {
      const match = /^(.+):(\d{1,5})$/.exec(item);
      const portNumber = Number(match?.[2]);
      if (match?.[1] === undefined || !/^[A-Za-z0-9._-]{1,253}$/.test(match[1]) || portNumber < 1 || portNumber > 65_535) {
        throw new ConfigError(variable, `must be host:port pairs separated by commas (got "${item}")`);
      }
      return { host: match[1], port: portNumber };
    });
  const seen = new Set<string>();
  for (const { host, port: portNumber } of addresses) {
    const key = `${host}:${String(portNumber)}`;
    if (seen.has(key)) throw new ConfigError(variable, `names ${key} twice`);
    seen.add(key);
  }
  return addresses;
};

const logLevel: Reader<LogLevel> = (variable, raw) => {
  const level = LOG_LEVELS.find((candidate) => candidate === raw);
  if (level === undefined) throw new ConfigError(variable, `must be one of ${LOG_LEVELS.join(', ')} (got "${raw ?? ''}")`);
  return level;
};

/**
 * The contents of the file a variable names (a Docker or Kubernetes secret), without its trailing
 * newlines (`echo … > file` adds one): what PostgreSQL's entrypoint reads from
 * POSTGRES_PASSWORD_FILE with `$(< file)`, so both sides agree on the password.
 */
const fileContents =
  (what: string): Reader<string> =>
  (variable, raw) => {
    const path = required(`the path of a file holding ${what}`)(variable, raw);
    let contents: string;
    try {
      contents = readFileSync(path, 'utf8').replace(/\n+$/, '');
    } catch (error) {
      throw new ConfigError(variable, `names a file that cannot be read (${path}: ${(error as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (contents === '') throw new ConfigError(variable, `names an empty file (${path})`);
    return contents;
  };

function reader(env: Environment) {
  return <T>(variable: string, read: Reader<T>): T => {
    const raw = env[variable]?.trim();
    return read(variable, raw === '' ? undefined : raw);
  };
}

/**
 * DB_PASS; only while DB_PASS is unset, the contents of the file DB_PASS_FILE names (a Docker
 * secret: deploy/swarm/). DB_PASS_FILE is not even looked at when DB_PASS is set, empty included.
 */
function readPassword(env: Environment): string {
  const read = reader(env);
  if (env['DB_PASS'] === undefined && env['DB_PASS_FILE'] !== undefined) return read('DB_PASS_FILE', fileContents('the PostgreSQL password'));
  return read('DB_PASS', required('the PostgreSQL password, or DB_PASS_FILE naming a file that holds it'));
}

/**
 * The smallest DB_POOL_MAX the API can share out: one connection each for readiness, list reads
 * and small reads (database.ts apiPoolShares).
 */
export const API_POOL_MIN = 3;

/** The sentinels when REDIS_SENTINELS is set (REDIS_HOST and REDIS_PORT are then not read), else one Redis. */
function readRedis(env: Environment): RedisConfig {
  const read = reader(env);
  if (env['REDIS_SENTINELS']?.trim()) {
    return {
      mode: 'sentinel',
      sentinels: read('REDIS_SENTINELS', addressList),
      masterName: read('REDIS_SENTINEL_MASTER', withDefault(identifier('the name the sentinels monitor the primary by'), 'inflow')),
    };
  }
  return { mode: 'single', host: read('REDIS_HOST', hostName), port: read('REDIS_PORT', withDefault(port, 6379)) };
}

/** `poolMin`: the smallest DB_POOL_MAX the program can use (the API shares its pool: database.ts). */
function readCommon(env: Environment, poolMin: number): CommonConfig {
  const read = reader(env);
  return {
    // The container's host name is unique per replica, which is what the instance id must be.
    instanceId: read('INSTANCE_ID', withDefault(identifier('the instance id'), () => hostname().slice(0, 63))),
    logLevel: read('LOG_LEVEL', withDefault(logLevel, 'info')),
    redis: readRedis(env),
    db: {
      host: read('DB_HOST', hostName),
      port: read('DB_PORT', withDefault(port, 5432)),
      name: read('DB_NAME', required('the PostgreSQL database name')),
      user: read('DB_USER', required('the PostgreSQL user')),
      // Never defaulted: a forgotten password must stop the process, not be guessed.
      password: readPassword(env),
      poolMax: read('DB_POOL_MAX', withDefault(integer(poolMin, 100), 10)),
    },
    shutdownTimeoutMs: read('SHUTDOWN_TIMEOUT_MS', withDefault(integer(100, 600_000), 8_000)),
  };
}

/** Frozen all the way down (the sentinels' addresses are two levels deep). */
function freeze<T extends object>(config: T): Readonly<T> {
  for (const value of Object.values(config)) {
    if (typeof value === 'object' && value !== null) freeze(value as object);
  }
  return Object.freeze(config);
}

export function loadApiConfig(env: Environment): ApiConfig {
  const read = reader(env);
  const common = readCommon(env, API_POOL_MIN);
  const httpPort = read('PORT', withDefault(port, 8080));
  return freeze({
    ...common,
    port: httpPort,
    trustProxyHops: read('TRUST_PROXY_HOPS', withDefault(integer(0, 10), 1)),
    opsPort: read('OPS_PORT', differentFrom(withDefault(port, 8081), { variable: 'PORT', value: httpPort })),
    eventsMaxStreams: read('EVENTS_MAX_STREAMS', withDefault(integer(1, 10_000), 200)),
    entryRetry: {
      attempts: read('ENTRY_JOB_ATTEMPTS', withDefault(integer(1, 100), DEFAULT_ENTRY_RETRY.attempts)),
      delayMs: read('ENTRY_RETRY_DELAY_MS', withDefault(integer(10, 600_000), DEFAULT_ENTRY_RETRY.delayMs)),
    },
    idempotencyTtlSeconds: read('IDEMPOTENCY_TTL_SECONDS', withDefault(integer(60, 7 * 24 * 3600), 900)),
    queueMemoryLimitPercent: read('QUEUE_MEMORY_LIMIT_PERCENT', withDefault(integer(10, 95), 80)),
    replicaAcks: {
      count: read('REDIS_REPLICA_ACKS', withDefault(integer(0, 10), 0)),
      // At most 1.5 s: a WAIT holds the producer's connection, and every command behind it (the
      // readiness PING, with its 2 s deadline, among them) waits with it.
      timeoutMs: read('REDIS_REPLICA_ACK_TIMEOUT_MS', withDefault(integer(10, 1_500), 1_000)),
    },
  });
}

export function loadWorkerConfig(env: Environment): WorkerConfig {
  const read = reader(env);
  return freeze({
    ...readCommon(env, 1),
    concurrency: read('WORKER_CONCURRENCY', withDefault(integer(1, 1_000), 64)),
    healthPort: read('HEALTH_PORT', withDefault(port, 8081)),
  });
}
