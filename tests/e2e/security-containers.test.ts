/**
 * The hardening of the compose stack's containers, as far as a test can see it: app containers
 * non-root with a read-only root fs and no capabilities, unprivileged nginx workers, data stores
 * out of reach and under an init, no secret in the images, an empty DB_PASS refused. What goes
 * over HTTP (security headers, Express's trust in the nginx hop) is security-http.test.ts.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { containerId, docker, exec, execIn, PROJECT, REPO_ROOT, runCompose, TEST_LABEL, waitFor } from '@inflow/test-support';

const APPS = ['web1', 'web2', 'web3', 'worker'] as const;

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

const inspect = async (service: string): Promise<Inspect> => (JSON.parse(await docker(['inspect', containerId(service)])) as [Inspect])[0];

t.test('app containers: non-root, read-only root fs with a tmpfs /tmp, no-new-privileges, all capabilities dropped', async (t) => {
  for (const service of APPS) {
    const info = await inspect(service);
    t.equal(info.HostConfig.ReadonlyRootfs, true, `${service}: read-only root fs`);
    t.ok(info.HostConfig.Tmpfs !== null && '/tmp' in info.HostConfig.Tmpfs, `${service}: tmpfs /tmp`);
    t.ok(info.HostConfig.SecurityOpt?.includes('no-new-privileges:true'), `${service}: no-new-privileges`);
    t.same(info.HostConfig.CapDrop, ['ALL'], `${service}: cap_drop ALL`);
    t.notOk(info.HostConfig.CapAdd?.length, `${service}: no capability added`);
    t.equal(info.HostConfig.Privileged, false, `${service}: not privileged`);
    t.equal(info.Config.User, 'node', `${service}: runs as the image's user "node"`);

    const ids = await execIn(service, ['node', '-e', 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)']);
    t.equal(ids.status, 0);
    t.not(ids.stdout.split(':')[0], '0', `${service}: uid ${ids.stdout} is not root`);
    const write = (path: string) => execIn(service, ['node', '-e', `require('node:fs').writeFileSync(${JSON.stringify(path)}, 'x')`]);
    const app = await write('/app/probe');
    t.not(app.status, 0, `${service}: /app is not writable`);
    t.match(app.stderr, /EROFS|EACCES/, `${service}: refused by the file system`);
    t.equal((await write('/tmp/probe')).status, 0, `${service}: /tmp is writable`);
    // The program itself: PID of node, not of the init, runs unprivileged too.
    const status = await execIn(service, ['node', '-e', "process.stdout.write(require('node:fs').readFileSync('/proc/self/status','utf8').match(/^CapEff:\\s*(\\S+)/m)[1])"]);
    t.equal(status.stdout, '0000000000000000', `${service}: no effective capabilities`);
  }
});

t.test('nginx: the master alone is root, its workers run as the nginx user', async (t) => {
  const result = await execIn('nginx', ['sh', '-c', 'grep -H -E "^(Name|Uid):" /proc/[0-9]*/status']);
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
  t.ok((await inspect('nginx')).HostConfig.SecurityOpt?.includes('no-new-privileges:true'), 'nginx: no-new-privileges');
});

t.test('PostgreSQL and Redis: not published, not on nginx\'s network, unreachable from nginx', async (t) => {
  for (const service of ['postgres', 'redis']) {
    const info = await inspect(service);
    const published = Object.values(info.NetworkSettings.Ports ?? {}).filter((bindings) => bindings !== null && bindings.length > 0);
    t.same(published, [], `${service}: no port published on the host`);
    t.same(Object.values(info.HostConfig.PortBindings ?? {}).filter((bindings) => bindings !== null && bindings.length > 0), [], `${service}: no port binding`);
    t.notOk((await execIn('nginx', ['getent', 'hosts', service])).status === 0, `${service}: the name does not resolve inside nginx`);
    const port = service === 'redis' ? 6379 : 5432;
    for (const { IPAddress } of Object.values(info.NetworkSettings.Networks)) {
      // One connection attempt from nginx's container to the data store's own address.
      const probe = await execIn('nginx', ['curl', '-sS', '--connect-timeout', '2', '--max-time', '3', '-o', '/dev/null', `http://${IPAddress}:${port}/`]);
      t.ok([7, 28].includes(probe.status), `${service} at ${IPAddress}:${port} cannot be connected to from nginx (curl exit ${probe.status}: ${probe.stderr.trim()})`);
    }
  }
  const backend = JSON.parse(await docker(['network', 'inspect', `${PROJECT}_backend`])) as [{ Internal: boolean }];
  t.equal(backend[0].Internal, true, 'the backend network is internal (no route out)');
});

t.test('PostgreSQL and Redis run under docker-init: an orphaned probe dying does not restart PostgreSQL', async (t) => {
  for (const service of ['postgres', 'redis']) {
    t.equal((await inspect(service)).HostConfig.Init, true, `${service}: init: true`);
  }
  // What a health probe killed at its timeout leaves behind: a process whose parent is gone.
  // Adopted by a postmaster running as PID 1, its death by a signal was taken for a crashed
  // backend and the whole server restarted (docker-library/postgres#1349).
  const since = new Date().toISOString();
  const orphan = await execIn('postgres', ['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!']);
  t.equal(orphan.status, 0, orphan.stderr);
  const pid = orphan.stdout.trim();
  t.equal((await execIn('postgres', ['sh', '-c', `kill -PIPE ${pid}`])).status, 0, 'the orphan is killed by SIGPIPE');
  // Once it is reaped (a zombie still answers kill -0), its parent has heard of its death: a
  // postmaster that had adopted it would have logged the crash and begun its restart by then.
  await waitFor(async () => (await execIn('postgres', ['sh', '-c', `kill -0 ${pid} 2>/dev/null`])).status !== 0, {
    timeoutMs: 30_000,
    what: `the orphan ${pid} to be reaped`,
    intervalMs: 100,
  });
  const logs = await exec('docker', ['logs', '--since', since, containerId('postgres')]);
  t.notMatch(`${logs.stdout}${logs.stderr}`, /terminated by signal|reinitializing|recovery/, 'PostgreSQL did not restart');
  t.equal((await execIn('postgres', ['pg_isready', '-h', '127.0.0.1', '-q'])).status, 0, 'and still accepts connections');
});

t.test('no secret baked into the app images', async (t) => {
  for (const service of ['web1', 'worker']) {
    const image = (await inspect(service)).Image;
    const history = await docker(['history', '--no-trunc', '--format', '{{.CreatedBy}}', image]);
    t.notMatch(history, /DB_PASS|POSTGRES_PASSWORD|inflow-local-only/, `${service} image history holds no password`);
    const [config] = JSON.parse(await docker(['image', 'inspect', image])) as [{ Config: { Env: string[] | null } }];
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
    const image = (await inspect(service)).Image;
    const run = spawnSync(
      'docker',
      ['run', '--rm', '--label', TEST_LABEL, '--network', 'none', '-e', 'DB_PASS=', '-e', 'DB_HOST=postgres', '-e', 'DB_NAME=inflow', '-e', 'DB_USER=inflow', '-e', 'REDIS_HOST=redis', image],
      { encoding: 'utf8', timeout: 60_000 },
    );
    t.equal(run.status, 78, `${service}'s program exits 78 (EX_CONFIG)`);
    const line = JSON.parse(run.stderr.trim().split('\n').at(-1) ?? '{}') as { variable?: string; msg?: string };
    t.equal(line.variable, 'DB_PASS', `${service}: names DB_PASS`);
    t.match(line.msg, /invalid configuration: .*password/i, `${service}: "${line.msg ?? ''}"`);
  }
  const postgresImage = (await inspect('postgres')).Config.Image;
  const postgres = spawnSync('docker', ['run', '--rm', '--label', TEST_LABEL, '--network', 'none', '-e', 'POSTGRES_PASSWORD=', '-e', 'POSTGRES_USER=inflow', postgresImage], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  t.not(postgres.status, 0, 'postgres refuses to initialise with an empty password');
  t.match(postgres.stderr, /superuser password is not specified/, 'and says why');
});

