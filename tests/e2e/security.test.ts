/**
 * The security posture of the compose stack, as far as a test can see it: hardened app
 * containers, unprivileged nginx workers, data stores out of reach, no secret in the images,
 * an empty DB_PASS refused, security headers on every response exactly once, no version or
 * framework disclosed, and Express trusting exactly the nginx hop. What nginx itself allows
 * (public paths, capacity, client addresses, the rate limit) is edge-nginx.test.ts and chaos
 * scenario 10.
 *
 * INFLOW_URL set: runs against that stack as it is (no compose up/down); INFLOW_E2E_PROJECT must
 * then name its compose project.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { BASE_URL, containerId, docker, down, PROJECT, REPO_ROOT, runCompose, serviceLogLines, up, waitFor } from '@inflow/test-support';

const OWN_STACK = process.env['INFLOW_URL'] === undefined;
const APPS = ['web1', 'web2', 'web3', 'worker'] as const;
const SECURITY_HEADERS = ['x-content-type-options', 'referrer-policy', 'content-security-policy', 'x-instance-id', 'x-request-id'] as const;

interface Answer {
  status: number;
  /** Header names (lower case) with every value sent, in order: a duplicate shows as two values. */
  headers: Map<string, string[]>;
  text: string;
}

function send(path: string, options: { method?: string; headers?: Record<string, string>; body?: string; agent?: Agent } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const req = httpRequest(
      `${BASE_URL}${path}`,
      {
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
        headers: { ...(body === undefined ? {} : { 'content-length': String(body.length) }), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const headers = new Map<string, string[]>();
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const name = (res.rawHeaders[i] ?? '').toLowerCase();
            headers.set(name, [...(headers.get(name) ?? []), res.rawHeaders[i + 1] ?? '']);
          }
          resolve({ status: res.statusCode ?? 0, headers, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes `raw` on one connection and parses every response that comes back (Content-Length framed). */
function rawExchange(raw: string): Promise<Answer[]> {
  const { hostname, port } = new URL(BASE_URL);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.setTimeout(30_000, () => socket.destroy(new Error('no end of the responses in 30 s')));
    socket.on('close', () => {
      const data = Buffer.concat(chunks);
      const answers: Answer[] = [];
      let at = 0;
      while (at < data.length) {
        const end = data.indexOf('\r\n\r\n', at);
        if (end < 0) break;
        const [statusLine = '', ...lines] = data.subarray(at, end).toString('latin1').split('\r\n');
        const headers = new Map<string, string[]>();
        for (const line of lines) {
          const colon = line.indexOf(':');
          const name = line.slice(0, colon).toLowerCase();
          headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
        }
        const length = Number(headers.get('content-length')?.[0] ?? 'NaN');
        if (Number.isNaN(length)) {
          reject(new Error(`a response without Content-Length: ${statusLine}`));
          return;
        }
        answers.push({ status: Number(statusLine.split(' ')[1]), headers, text: data.subarray(end + 4, end + 4 + length).toString('utf8') });
        at = end + 4 + length;
      }
      resolve(answers);
    });
    socket.write(raw);
  });
}

const one = (answer: Answer, name: string): string | undefined => answer.headers.get(name)?.[0];

function errorShape(answer: Answer): boolean {
  try {
    const { error } = JSON.parse(answer.text) as { error?: { code?: unknown; message?: unknown } };
    return typeof error?.code === 'string' && typeof error.message === 'string';
  } catch {
    return false;
  }
}

/** What is wrong with a response's headers: each security header exactly once, no version in Server, no X-Powered-By. */
function headerProblems(answer: Answer): string[] {
  const problems: string[] = [];
  for (const name of SECURITY_HEADERS) {
    const values = answer.headers.get(name) ?? [];
    if (values.length !== 1) problems.push(`${name} ${values.length} times ${JSON.stringify(values)}`);
  }
  if (one(answer, 'x-content-type-options') !== 'nosniff') problems.push('X-Content-Type-Options is not nosniff');
  if (JSON.stringify(answer.headers.get('server')) !== '["nginx"]') problems.push(`Server: ${JSON.stringify(answer.headers.get('server'))}`);
  if (answer.headers.has('x-powered-by')) problems.push('X-Powered-By present');
  return problems;
}

interface Inspect {
  Image: string;
  Config: { User: string; Image: string; Env: string[] | null };
  HostConfig: {
    Init: boolean | null;
    ReadonlyRootfs: boolean;
    Tmpfs: Record<string, string> | null;
    SecurityOpt: string[] | null;
    CapDrop: string[] | null;
    CapAdd: string[] | null;
    Privileged: boolean;
    PortBindings: Record<string, unknown[] | null> | null;
  };
  NetworkSettings: { Ports: Record<string, unknown[] | null> | null; Networks: Record<string, { IPAddress: string }> };
}

const inspect = (service: string): Inspect => (JSON.parse(docker(['inspect', containerId(service)]).stdout) as [Inspect])[0];

function execIn(service: string, command: readonly string[]): { status: number; stdout: string; stderr: string } {
  const result = spawnSync('docker', ['exec', containerId(service), ...command], { encoding: 'utf8', timeout: 30_000 });
  return { status: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

t.before(async () => {
  if (OWN_STACK) {
    down();
    await up();
  }
});
t.teardown(() => {
  if (OWN_STACK) down();
});

t.test('app containers: non-root, read-only root fs with a tmpfs /tmp, no-new-privileges, all capabilities dropped', async (t) => {
  for (const service of APPS) {
    const info = inspect(service);
    t.equal(info.HostConfig.ReadonlyRootfs, true, `${service}: read-only root fs`);
    t.ok(info.HostConfig.Tmpfs !== null && '/tmp' in info.HostConfig.Tmpfs, `${service}: tmpfs /tmp`);
    t.ok(info.HostConfig.SecurityOpt?.includes('no-new-privileges:true'), `${service}: no-new-privileges`);
    t.same(info.HostConfig.CapDrop, ['ALL'], `${service}: cap_drop ALL`);
    t.notOk(info.HostConfig.CapAdd?.length, `${service}: no capability added`);
    t.equal(info.HostConfig.Privileged, false, `${service}: not privileged`);
    t.equal(info.Config.User, 'node', `${service}: runs as the image's user "node"`);

    const ids = execIn(service, ['node', '-e', 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)']);
    t.equal(ids.status, 0);
    t.not(ids.stdout.split(':')[0], '0', `${service}: uid ${ids.stdout} is not root`);
    const write = (path: string) => execIn(service, ['node', '-e', `require('node:fs').writeFileSync(${JSON.stringify(path)}, 'x')`]);
    const app = write('/app/probe');
    t.not(app.status, 0, `${service}: /app is not writable`);
    t.match(app.stderr, /EROFS|EACCES/, `${service}: refused by the file system`);
    t.equal(write('/tmp/probe').status, 0, `${service}: /tmp is writable`);
    // The program itself: PID of node, not of the init, runs unprivileged too.
    const status = execIn(service, ['node', '-e', "process.stdout.write(require('node:fs').readFileSync('/proc/self/status','utf8').match(/^CapEff:\\s*(\\S+)/m)[1])"]);
    t.equal(status.stdout, '0000000000000000', `${service}: no effective capabilities`);
  }
});

t.test('nginx: the master alone is root, its workers run as the nginx user', async (t) => {
  const result = execIn('nginx', ['sh', '-c', 'grep -H -E "^(Name|Uid):" /proc/[0-9]*/status']);
  t.equal(result.status, 0, result.stderr);
  const processes = new Map<string, { name?: string; uid?: string }>();
  for (const line of result.stdout.split('\n')) {
    const match = /^(\/proc\/\d+)\/status:(Name|Uid):\s+(\S+)/.exec(line);
    if (match === null) continue;
    const [, pid = '', field, value = ''] = match;
    const entry = processes.get(pid) ?? {};
    if (field === 'Name') entry.name = value;
    else entry.uid = value;
    processes.set(pid, entry);
  }
  const nginx = [...processes.values()].filter((entry) => entry.name === 'nginx');
  t.equal(nginx.filter((entry) => entry.uid === '0').length, 1, 'one root process (the master, which binds port 80)');
  t.ok(nginx.filter((entry) => entry.uid !== '0').length >= 1, `workers unprivileged (uids ${nginx.map((entry) => entry.uid).join(', ')})`);
  t.ok(inspect('nginx').HostConfig.SecurityOpt?.includes('no-new-privileges:true'), 'nginx: no-new-privileges');
});

t.test('PostgreSQL and Redis: not published, not on nginx\'s network, unreachable from nginx', async (t) => {
  for (const service of ['postgres', 'redis']) {
    const info = inspect(service);
    const published = Object.values(info.NetworkSettings.Ports ?? {}).filter((bindings) => bindings !== null && bindings.length > 0);
    t.same(published, [], `${service}: no port published on the host`);
    t.same(Object.values(info.HostConfig.PortBindings ?? {}).filter((bindings) => bindings !== null && bindings.length > 0), [], `${service}: no port binding`);
    t.notOk(execIn('nginx', ['getent', 'hosts', service]).status === 0, `${service}: the name does not resolve inside nginx`);
    const port = service === 'redis' ? 6379 : 5432;
    for (const { IPAddress } of Object.values(info.NetworkSettings.Networks)) {
      // One connection attempt from nginx's container to the data store's own address.
      const probe = execIn('nginx', ['curl', '-sS', '--connect-timeout', '2', '--max-time', '3', '-o', '/dev/null', `http://${IPAddress}:${port}/`]);
      t.ok([7, 28].includes(probe.status), `${service} at ${IPAddress}:${port} cannot be connected to from nginx (curl exit ${probe.status}: ${probe.stderr.trim()})`);
    }
  }
  const backend = JSON.parse(docker(['network', 'inspect', `${PROJECT}_backend`]).stdout) as [{ Internal: boolean }];
  t.equal(backend[0].Internal, true, 'the backend network is internal (no route out)');
});

t.test('PostgreSQL and Redis run under docker-init: an orphaned probe dying does not restart PostgreSQL', async (t) => {
  for (const service of ['postgres', 'redis']) {
    t.equal(inspect(service).HostConfig.Init, true, `${service}: init: true`);
  }
  // What a health probe killed at its timeout leaves behind: a process whose parent is gone.
  // Adopted by a postmaster running as PID 1, its death by a signal was taken for a crashed
  // backend and the whole server restarted (docker-library/postgres#1349).
  const since = new Date().toISOString();
  const orphan = execIn('postgres', ['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!']);
  t.equal(orphan.status, 0, orphan.stderr);
  t.equal(execIn('postgres', ['sh', '-c', `kill -PIPE ${orphan.stdout.trim()}`]).status, 0, 'the orphan is killed by SIGPIPE');
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const logs = spawnSync('docker', ['logs', '--since', since, containerId('postgres')], { encoding: 'utf8' });
  t.notMatch(`${logs.stdout}${logs.stderr}`, /terminated by signal|reinitializing|recovery/, 'PostgreSQL did not restart');
  t.equal(execIn('postgres', ['pg_isready', '-h', '127.0.0.1', '-q']).status, 0, 'and still accepts connections');
});

t.test('no secret baked into the app images', async (t) => {
  for (const service of ['web1', 'worker']) {
    const image = inspect(service).Image;
    const history = docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image]).stdout;
    t.notMatch(history, /DB_PASS|POSTGRES_PASSWORD|inflow-local-only/, `${service} image history holds no password`);
    const [config] = JSON.parse(docker(['image', 'inspect', image]).stdout) as [{ Config: { Env: string[] | null } }];
    const env = config.Config.Env ?? [];
    t.notOk(env.some((variable) => /^(DB_PASS|POSTGRES_PASSWORD)=|PASSWORD|SECRET|TOKEN/i.test(variable)), `${service} image Env: ${env.join(' ')}`);
  }
});

t.test('.env.example holds placeholders only', async (t) => {
  const lines = readFileSync(join(REPO_ROOT, '.env.example'), 'utf8').split('\n');
  const secrets = lines.map((line) => /^([A-Z_]*(PASS|SECRET|TOKEN|KEY)[A-Z_]*)=(.*)$/.exec(line)).filter((match) => match !== null);
  t.ok(secrets.length >= 1, 'DB_PASS is documented');
  for (const [, name, , value] of secrets) {
    t.match(value, /^(change-me|<[^>]*>|)$/, `${name ?? ''}=${value ?? ''} is a placeholder`);
  }
  t.notMatch(lines.join('\n'), /inflow-local-only/, 'not even the local-only compose default');
});

t.test('an empty DB_PASS is refused; an unset one falls back to the local-only default', async (t) => {
  const withoutPassword = { ...process.env };
  delete withoutPassword['DB_PASS'];
  const passwordsIn = (config: string) => [...config.matchAll(/^\s*(DB_PASS|POSTGRES_PASSWORD): (.*)$/gm)].map((match) => `${match[1] ?? ''}=${match[2] ?? ''}`);
  const unset = runCompose(['config'], { env: withoutPassword }).stdout;
  t.same(new Set(passwordsIn(unset)), new Set(['DB_PASS=inflow-local-only', 'POSTGRES_PASSWORD=inflow-local-only']), 'unset: the out-of-the-box default');
  const empty = runCompose(['config'], { env: { ...withoutPassword, DB_PASS: '' } }).stdout;
  t.same(new Set(passwordsIn(empty)), new Set(["DB_PASS=''", "POSTGRES_PASSWORD=''"]), 'empty: passed on as empty, not replaced by the default');
  t.equal(passwordsIn(empty).length, 5, 'to the four apps and postgres');

  // What those containers then do with it, each on its own (no network needed to refuse).
  for (const service of ['web1', 'worker']) {
    const image = inspect(service).Image;
    const run = spawnSync(
      'docker',
      ['run', '--rm', '--network', 'none', '-e', 'DB_PASS=', '-e', 'DB_HOST=postgres', '-e', 'DB_NAME=inflow', '-e', 'DB_USER=inflow', '-e', 'REDIS_HOST=redis', image],
      { encoding: 'utf8', timeout: 60_000 },
    );
    t.equal(run.status, 78, `${service}'s program exits 78 (EX_CONFIG)`);
    const line = JSON.parse(run.stderr.trim().split('\n').at(-1) ?? '{}') as { variable?: string; msg?: string };
    t.equal(line.variable, 'DB_PASS', `${service}: names DB_PASS`);
    t.match(line.msg, /invalid configuration: .*password/i, `${service}: "${line.msg ?? ''}"`);
  }
  const postgresImage = inspect('postgres').Config.Image;
  const postgres = spawnSync('docker', ['run', '--rm', '--network', 'none', '-e', 'POSTGRES_PASSWORD=', '-e', 'POSTGRES_USER=inflow', postgresImage], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.not(postgres.status, 0, 'postgres refuses to initialise with an empty password');
  t.match(postgres.stderr, /superuser password is not specified/, 'and says why');
});

t.test('security headers exactly once on proxied and nginx-made responses; no version, no X-Powered-By', async (t) => {
  t.same(headerProblems(await send('/api/instance')), [], 'proxied GET /api/instance');
  t.same(headerProblems(await send('/api/nope')), [], 'proxied API 404');
  t.same(headerProblems(await send('/api/entries', { method: 'DELETE' })), [], 'proxied API 405');
  const page = await send('/');
  t.same(headerProblems(page), [], 'the page');
  t.match(one(page, 'content-security-policy'), /default-src 'self'/, 'the page has the API\'s policy');
  const accepted = await send('/api/entries', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author: 'security', message: 'headers' }),
  });
  t.equal(accepted.status, 202);
  t.same(headerProblems(accepted), [], 'proxied 202');

  const health = await send('/nginx-health');
  t.same(headerProblems(health), [], 'nginx /nginx-health');
  t.equal(one(health, 'x-instance-id'), 'nginx');
  t.match(one(health, 'content-security-policy'), /default-src 'none'/, "nginx's answers forbid everything");

  const nginxErrors: [string, Answer][] = [
    ['413', await send('/api/entries', { method: 'POST', headers: { 'content-type': 'application/json' }, body: 'x'.repeat(20_000) })],
    ['414', await send(`/api/entries/${'a'.repeat(10_000)}`)],
    ['405 TRACE', await send('/api/entries', { method: 'TRACE' })],
    ['404 /metrics', await send('/metrics')],
    ['404 /Metrics/', await send('/Metrics/')],
    ['431 huge header', await send('/api/instance', { headers: { 'x-huge': 'h'.repeat(10_000) } })],
  ];
  const [badLine] = await rawExchange('get / HTTP/1.1\r\nHost: x\r\n\r\n');
  if (badLine !== undefined) nginxErrors.push(['400 bad request line', badLine]);
  for (const [what, answer] of nginxErrors) {
    t.ok(answer.status >= 400 && answer.status < 500, `${what}: a 4xx (${answer.status})`);
    t.ok(errorShape(answer), `${what}: the error shape (${answer.text.slice(0, 120)})`);
    t.same(headerProblems(answer), [], `nginx ${what}: headers`);
    t.equal(one(answer, 'x-instance-id'), 'nginx', `${what}: made by nginx`);
  }
});

t.test('Express: trusts exactly the nginx hop, limits JSON bodies to 16 KiB, hides X-Powered-By', async (t) => {
  const requestId = `trust-proxy-${randomUUID()}`;
  const answer = await send('/api/instance', { headers: { 'x-forwarded-for': '203.0.113.7, 198.51.100.9', 'x-request-id': requestId } });
  t.equal(answer.status, 200);
  t.notOk(answer.headers.has('x-powered-by'), 'no X-Powered-By');
  const instance = one(answer, 'x-instance-id') ?? '';
  const apiLine = await waitFor(
    () => serviceLogLines(instance).find((line) => (line['req'] as { id?: string } | undefined)?.id === requestId),
    { timeoutMs: 10_000, what: `${instance}'s log line for ${requestId}`, intervalMs: 250 },
  );
  const nginxLine = await waitFor(() => serviceLogLines('nginx').find((line) => line['requestId'] === requestId), {
    timeoutMs: 10_000,
    what: `nginx's log line for ${requestId}`,
    intervalMs: 250,
  });
  const clientIp = (apiLine['req'] as { clientIp?: string }).clientIp;
  t.equal(clientIp, nginxLine['remoteAddr'], `req.ip is the address nginx saw (${String(nginxLine['remoteAddr'])})`);
  t.not(clientIp, '203.0.113.7', 'not what the client wrote into X-Forwarded-For');
  t.not(clientIp, '198.51.100.9');

  // The API's own limit, behind nginx's: straight to a replica from inside its container.
  const script = (bytes: number) =>
    `fetch('http://127.0.0.1:8080/api/entries',{method:'POST',headers:{'content-type':'application/json'},` +
    `body:JSON.stringify({author:'a',message:'m'.repeat(${bytes - 27})})}).then(async r=>process.stdout.write(r.status+' '+r.headers.get('x-powered-by')+' '+await r.text()))`;
  const over = execIn('web1', ['node', '-e', script(16 * 1024 + 1)]);
  t.match(over.stdout, /^413 null \{"error":\{"code":"payload_too_large"/, `16 KiB + 1 straight to the API: 413 (${over.stdout.slice(0, 120)})`);
  const at = execIn('web1', ['node', '-e', script(16 * 1024)]);
  t.match(at.stdout, /^400 null \{"error":\{"code":"invalid_field","message":"message must be/, 'exactly 16 KiB: read, then refused by the field rule');
});
