/**
 * The test suite's tools come from images, never from the host, so that Docker and Node are all a
 * machine needs:
 * - the tools image (tests/tools/Dockerfile: wrk, Chromium with a Playwright server, shellcheck),
 *   built here on first use and tagged with a hash of its Dockerfile and build arguments, so it is
 *   built once and again only when one of them changes;
 * - promtool from the Prometheus image the stack runs (PROMETHEUS_IMAGE).
 * Every container started here carries the project's test label and is removed when it ends
 * (`docker run --rm`), or by its caller's teardown for those that run in the background.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { docker, exec, type RunResult } from './compose.ts';
import { sweepOrphans } from './containers.ts';
import { ownerLabelArgs, TEST_LABEL } from './labels.ts';
import { REPO_ROOT } from './services.ts';
import { waitFor } from './wait.ts';


const TOOLS_DIR = join(REPO_ROOT, 'tests', 'tools');
// The Node image the stack builds on (docker-compose.yml's default), Debian bookworm either way.
const NODE_IMAGE = process.env['NODE_IMAGE'] ?? 'node:24-bookworm-slim';
/** The Prometheus image compose runs (docker-compose.yml's default); promtool is in it. */
export const PROMETHEUS_IMAGE = process.env['PROMETHEUS_IMAGE'] ?? 'prom/prometheus:v2.53.0';

// The Playwright server in the image must speak the protocol of the client the tests load.
const playwrightVersion = (): string =>
  (JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', 'playwright-core', 'package.json'), 'utf8')) as { version: string }).version;

let built: Promise<string> | undefined;

/** The tools image's name, built first when this Dockerfile and these arguments have no image yet. */
export function toolsImage(): Promise<string> {
  built ??= (async () => {
    const buildArgs = { NODE_IMAGE, PLAYWRIGHT_VERSION: playwrightVersion() };
    const hash = createHash('sha256').update(readFileSync(join(TOOLS_DIR, 'Dockerfile'))).update(JSON.stringify(buildArgs)).digest('hex').slice(0, 16);
    const image = `inflow-test-tools:${hash}`;
    const present = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', image]);
    if (present.status === 0) return image;
    const args = Object.entries(buildArgs).flatMap(([name, value]) => ['--build-arg', `${name}=${value}`]);
    // Installing Chromium takes minutes on a slow machine.
    const result = await exec('docker', ['build', '-q', '--label', TEST_LABEL, ...args, '-t', image, TOOLS_DIR], { timeoutMs: 20 * 60_000 });
    if (result.status !== 0) throw new Error(`building the test tools image (tests/tools/Dockerfile) failed:\n${result.stderr.slice(-3_000)}\n${result.stdout.slice(-2_000)}`);
    return image;
  })();
  built.catch(() => {
    built = undefined;
  });
  return built;
}

/** Options of `docker run` before the image: mounts, network, environment… */
export type RunOptions = readonly string[];

/**
 * The labels of a container started here: its owner too, so that a run killed before its
 * teardown leaves nothing a later run does not remove (containers.ts's sweepOrphans).
 */
async function ownedLabels(): Promise<string[]> {
  await sweepOrphans().catch(() => undefined);
  return ownerLabelArgs();
}

/** Runs a command in a fresh container of `image`, removed when it ends; never throws. */
export async function runIn(image: string, options: RunOptions, command: readonly string[], timeoutMs = 300_000): Promise<RunResult> {
  return exec('docker', ['run', '--rm', ...(await ownedLabels()), ...options, image, ...command], { timeoutMs });
}

/** Runs a command of the tools image in a fresh container, removed when it ends; never throws. */
export async function runTool(options: RunOptions, command: readonly string[], timeoutMs?: number): Promise<RunResult> {
  return runIn(await toolsImage(), options, command, timeoutMs);
}

/** Starts a container of the tools image in the background; the caller removes it (`removeContainer`). */
export async function startTool(options: RunOptions, command: readonly string[]): Promise<string> {
  return (await docker(['run', '-d', '--rm', ...(await ownedLabels()), ...options, await toolsImage(), ...command])).trim();
}

/** Removes a container the tests started, whether it still runs or not. */
export async function removeContainer(id: string): Promise<void> {
  await exec('docker', ['rm', '-f', id]);
}

/**
 * promtool from the Prometheus image, in `dir` (mounted read-only at the same place relative to
 * the command's paths); never throws.
 */
export function promtool(dir: string, args: readonly string[]): Promise<RunResult> {
  return runIn(PROMETHEUS_IMAGE, ['-v', `${dir}:/rules:ro`, '-w', '/rules', '--entrypoint', 'promtool', '--network', 'none'], args, 120_000);
}

/** A Playwright server in a container of the tools image, and how to reach it from the host. */
export interface BrowserServer {
  /** The container: remove it with `removeContainer` when done. */
  id: string;
  wsEndpoint: string;
  /** The headers `chromium.connect` sends: the launch options of the image's Chromium. */
  headers: Record<string, string>;
}

// Debian's Chromium in the tools image, headless, without the extras that would reach out to
// Google, and without its sandbox (a container gives it no user namespaces).
const CHROMIUM_LAUNCH = {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
};

/**
 * Starts a Playwright server (`playwright-core run-server`) with the tools image's Chromium on
 * `network`, its port published on the host's loopback only, and waits until it answers. The
 * browser reaches the stack by its service names on that network; the tests reach the server
 * through the published port. `--unsafe` lets the client choose the browser binary and its flags
 * (the server takes them from the x-playwright-launch-options header); nobody else can reach it.
 * `secureOrigins`: origins Chromium treats as secure contexts, as it treats http://127.0.0.1, so
 * that a page served by a service name behaves as it does for a user on the loopback address.
 */
export async function startBrowserServer(network: string, options: { secureOrigins?: readonly string[] } = {}): Promise<BrowserServer> {
  const id = await startTool(
    ['--init', '--network', network, '-p', '127.0.0.1::3000', '--shm-size', '512m'],
    ['playwright-core', 'run-server', '--host', '0.0.0.0', '--port', '3000', '--unsafe'],
  );
  try {
    const published = (await docker(['port', id, '3000/tcp'])).trim().split('\n')[0] ?? '';
    const port = /:(\d+)$/.exec(published)?.[1];
    if (port === undefined) throw new Error(`the Playwright server's port is not published (docker port: ${published})`);
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/`).then((response) => response.ok, () => false)), {
      timeoutMs: 60_000,
      what: 'the Playwright server in the tools image to answer',
      intervalMs: 250,
    });
    const secure = (options.secureOrigins ?? []).map((origin) => `--unsafely-treat-insecure-origin-as-secure=${origin}`);
    const launch = { ...CHROMIUM_LAUNCH, args: [...CHROMIUM_LAUNCH.args, ...secure] };
    return { id, wsEndpoint: `ws://127.0.0.1:${port}/`, headers: { 'x-playwright-launch-options': JSON.stringify(launch) } };
  } catch (error) {
    await removeContainer(id);
    throw error;
  }
}
