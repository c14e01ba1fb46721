/**
 * The page on :9999, in a real headless Chromium, against the compose stack through nginx: what
 * a person sees. Submitting an entry and watching it become persisted (with the replica that
 * accepted it and the worker that wrote it), a field error, a 503 that keeps the text and retries
 * with the same Idempotency-Key, the balancing probe naming three replicas, an entry POSTed by
 * someone else arriving over the event stream without a reload, and HTML-looking input shown as
 * text, the queue health card. Leaves a screenshot in test-results/page.png.
 *
 * The browser is the tools image's Chromium (tests/tools/Dockerfile), driven through a Playwright
 * server in a container on nginx's compose network: it opens the page as http://nginx/, the
 * service's name there; the test's own requests go to the published port as before.
 *
 * INFLOW_URL set: runs against that stack as it is (no compose up/down); INFLOW_E2E_PROJECT
 * names its compose project, whose nginx the browser reaches.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import t from 'tap';
import {
  BASE_URL,
  containerId,
  docker,
  down,
  removeContainer,
  REPO_ROOT,
  startBrowserServer,
  up,
  waitFor,
} from '@inflow/test-support';

const OWN_STACK = process.env['INFLOW_URL'] === undefined;
const RESULTS = join(REPO_ROOT, 'test-results');
/** The page as the browser, on nginx's network, opens it: by the service's name. */
const PAGE_URL = 'http://nginx';
const origin = new URL(PAGE_URL).origin;

let browser: Browser | undefined;
let browserContainer: string | undefined;
let page: Page;
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];
/** Every message the page's EventSource received (Chromium's DevTools protocol reports them). */
const streamed: { eventName: string; data: string }[] = [];

interface Accepted {
  id: string;
  acceptedBy: string;
}

async function postDirectly(author: string, message: string): Promise<Accepted> {
  const response = await fetch(`${BASE_URL}/api/entries`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ author, message }),
  });
  if (response.status !== 202) throw new Error(`POST answered ${response.status}: ${await response.text()}`);
  return (await response.json()) as Accepted;
}

/** The row of an entry on the page, once it shows `status`. */
async function waitForRow(selector: string, status: string, timeoutMs = 30_000) {
  const row = page.locator(`#entry-list li.entry${selector}[data-status="${status}"]`);
  await row.first().waitFor({ state: 'visible', timeout: timeoutMs });
  return row.first();
}

// page.evaluate takes strings here: the tests are compiled without the DOM library.
const text = async (locator: ReturnType<Page['locator']>) => ((await locator.textContent()) ?? '').trim();

/** The compose network nginx serves the replicas on (compose names it <project>_edge). */
async function edgeNetwork(): Promise<string> {
  const [nginx] = JSON.parse(await docker(['inspect', containerId('nginx')])) as [{ NetworkSettings: { Networks: Record<string, unknown> } }];
  const network = Object.keys(nginx.NetworkSettings.Networks).find((name) => name.endsWith('_edge'));
  if (network === undefined) throw new Error('the nginx container is on no *_edge network');
  return network;
}

t.before(async () => {
  if (OWN_STACK) {
    down();
    await up();
  }
  mkdirSync(RESULTS, { recursive: true });
  // A user opens the page on the loopback address, a secure context (its Cross-Origin-Opener-Policy
  // applies): so does the browser here, by the service's name.
  const server = await startBrowserServer(await edgeNetwork(), { secureOrigins: [origin] });
  browserContainer = server.id;
  browser = await chromium.connect(server.wsEndpoint, { headers: server.headers, timeout: 120_000 });
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
  page = await context.newPage();
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  page.on('request', (request) => {
    if (new URL(request.url()).origin !== origin) foreignRequests.push(request.url());
  });
  const cdp = await context.newCDPSession(page);
  cdp.on('Network.eventSourceMessageReceived', (event) => streamed.push({ eventName: event.eventName, data: event.data }));
  await cdp.send('Network.enable');
});

t.teardown(async () => {
  await browser?.close();
  if (browserContainer !== undefined) await removeContainer(browserContainer);
  if (OWN_STACK) down();
});

t.test('the page loads from one replica, with its security headers, and goes live', async (t) => {
  const response = await page.goto(`${PAGE_URL}/`);
  t.equal(response?.status(), 200);
  const headers = response?.headers() ?? {};
  t.match(headers['content-security-policy'], /default-src 'self'/);
  t.equal(headers['x-content-type-options'], 'nosniff');
  t.ok(headers['referrer-policy'], 'a Referrer-Policy');
  t.match(await page.title(), /inflow/);
  const servedBy = await text(page.locator('#served-by'));
  t.match(servedBy, /^web[123]$/, `served by ${servedBy}`);
  t.equal(headers['x-instance-id'], servedBy, 'the page names the replica that served it');

  await page.locator('#live[data-state="live"]').waitFor({ timeout: 15_000 });
  t.match(await text(page.locator('#live')), /Live · stream from web[123]/);
  t.match(await page.getAttribute('#author', 'aria-describedby'), /author-error/);
  t.equal(await page.locator('label[for="author"]').count(), 1, 'the author input is labelled');
  t.equal(await page.locator('label[for="message"]').count(), 1, 'the message input is labelled');
});

t.test('an entry sent from the form becomes persisted, naming the replica and the worker', async (t) => {
  const message = `hello from the page ${Date.now()}`;
  await page.fill('#author', 'Ada');
  await page.fill('#message', message);
  await page.click('#submit-button');
  await page.locator('#form-status').getByText('Accepted by').waitFor({ timeout: 10_000 });
  t.equal(await page.inputValue('#message'), '', 'the message box is cleared for the next entry');
  t.equal(await page.inputValue('#author'), 'Ada', 'the author is kept');

  const row = await waitForRow(`:has(.entry-message:text-is(${JSON.stringify(message)}))`, 'persisted');
  t.equal(await text(row.locator('.entry-message')), message);
  t.equal(await text(row.locator('.entry-author')), 'Ada');
  const acceptedBy = await text(row.locator('[data-role="accepted-by"] .instance-tag'));
  const persistedBy = await text(row.locator('[data-role="persisted-by"] .instance-tag'));
  t.match(acceptedBy, /^web[123]$/, `accepted by ${acceptedBy}`);
  t.equal(persistedBy, 'worker', 'persisted by the worker');
  t.equal(await text(row.locator('.status-badge')), 'persisted');
});

t.test('a validation error is shown next to the field it names', async (t) => {
  await page.fill('#author', '   ');
  await page.fill('#message', 'an entry without an author');
  await page.click('#submit-button');
  const error = page.locator('#author-error');
  await error.waitFor({ state: 'visible', timeout: 10_000 });
  t.match(await text(error), /author/);
  t.equal(await page.getAttribute('#author', 'aria-invalid'), 'true');
  t.equal(await page.evaluate('document.activeElement && document.activeElement.id'), 'author', 'the field with the error has the focus');
  t.equal(await page.inputValue('#message'), 'an entry without an author', 'what was typed is kept');
  t.ok(await page.locator('#message-error').isHidden(), 'no error on the other field');
  await page.fill('#author', 'Ada');
  t.ok(await error.isHidden(), 'typing in the field clears its error');
});

t.test('a 503 keeps the text; the retry sends the same Idempotency-Key; no double submit', async (t) => {
  const keys: string[] = [];
  page.on('request', (request) => {
    if (request.method() === 'POST' && request.url().endsWith('/api/entries')) keys.push(request.headers()['idempotency-key'] ?? '');
  });
  // The 503 is held until the test has seen the form while the request is in flight.
  let answer503 = (): void => undefined;
  const held = new Promise<void>((resolve) => {
    answer503 = resolve;
  });
  await page.route('**/api/entries', async (route) => {
    if (route.request().method() !== 'POST') return route.fallback();
    await held;
    return route.fulfill({
      status: 503,
      contentType: 'application/json',
      headers: { 'retry-after': '1' },
      body: JSON.stringify({ error: { code: 'queue_unavailable', message: 'the queue is unavailable right now' } }),
    });
  });
  const message = `sent twice, stored once ${Date.now()}`;
  await page.fill('#message', message);
  // Two submits at once: the second is ignored while the first is in flight.
  await page.evaluate(`{
    const form = document.getElementById('entry-form');
    form.requestSubmit();
    form.requestSubmit();
  }`);
  t.ok(await page.locator('#submit-button').isDisabled(), 'the button is disabled while sending');
  answer503();
  const formError = page.locator('#form-error');
  await formError.waitFor({ state: 'visible', timeout: 10_000 });
  t.match(await text(formError), /could not accept your entry right now/);
  t.equal(await page.inputValue('#message'), message, 'the message is kept');
  t.equal(keys.length, 1, 'one request for two submits');

  await page.unroute('**/api/entries');
  await page.click('#submit-button');
  await page.locator('#form-status').getByText('Accepted by').waitFor({ timeout: 10_000 });
  t.ok(await formError.isHidden(), 'the error is gone');
  t.equal(keys.length, 2);
  t.equal(keys[0], keys[1], 'the retry reused the Idempotency-Key');
  t.match(keys[0], /^page-[0-9a-f]{32}$/);
  await waitForRow(`:has(.entry-message:text-is(${JSON.stringify(message)}))`, 'persisted');
  t.pass('the retried entry was persisted');
});

t.test('the balancing probe shows three instances', async (t) => {
  await page.click('#balance-button');
  await page.locator('#balance-status').getByText('30 of 30 answered').waitFor({ timeout: 20_000 });
  const labels = await page.locator('#balance-bars .bar-row .bar-label').allTextContents();
  const counts = (await page.locator('#balance-bars .bar-row .bar-count').allTextContents()).map(Number);
  const rows = labels.map((instance, i) => ({ instance, count: counts[i] ?? Number.NaN }));
  t.same(rows.map((row) => row.instance), ['web1', 'web2', 'web3'], 'one bar per replica');
  t.equal(rows.reduce((sum, row) => sum + row.count, 0), 30, 'the counts add up to 30');
  for (const row of rows) t.ok(row.count >= 5, `${row.instance} answered ${row.count}`);
  t.match(await text(page.locator('#balance-status')), /by 3 instances/);
});

t.test('entries POSTed by someone else arrive over the stream, without a reload', async (t) => {
  await page.evaluate("window.inflowMarker = 'still the same document'");
  const streamFrom = await page.getAttribute('#live', 'data-instance');
  const accepted: Accepted[] = [];
  for (let i = 0; i < 6; i += 1) accepted.push(await postDirectly('curl', `posted directly ${i} ${Date.now()}`));
  const acceptors = new Set(accepted.map((entry) => entry.acceptedBy));
  t.ok(acceptors.size >= 2, `accepted by ${[...acceptors].join(', ')}`);
  t.ok(accepted.some((entry) => entry.acceptedBy !== streamFrom), `some by another replica than the stream's (${streamFrom ?? '?'})`);
  for (const entry of accepted) {
    const row = await waitForRow(`[data-id="${entry.id}"]`, 'persisted', 20_000);
    t.equal(await text(row.locator('[data-role="accepted-by"] .instance-tag')), entry.acceptedBy, `${entry.id} accepted by ${entry.acceptedBy}`);
    t.equal(await text(row.locator('[data-role="persisted-by"] .instance-tag')), 'worker');
  }
  const viaStream = accepted.filter((entry) => streamed.some((message) => message.eventName === 'entries' && message.data.includes(entry.id)));
  t.equal(viaStream.length, accepted.length, 'each came through the event stream, whichever replica accepted it');
  t.equal(
    await page.evaluate('window.inflowMarker'),
    'still the same document',
    'no reload',
  );
});

t.test('HTML-looking input is shown as text, never as markup', async (t) => {
  const author = '<b>bold</b> & <i>co</i>';
  const message = `<img src=x onerror="window.inflowXss=1"><script>window.inflowXss=2</script> ${Date.now()}`;
  await page.fill('#author', author);
  await page.fill('#message', message);
  await page.click('#submit-button');
  const row = await waitForRow(`:has(.entry-message:text-is(${JSON.stringify(message)}))`, 'persisted');
  t.equal(await text(row.locator('.entry-author')), author);
  t.equal(await text(row.locator('.entry-message')), message);
  t.equal(await page.locator('#entry-list img, #entry-list script, #entry-list b, #entry-list i').count(), 0, 'no element made from the input');
  t.equal(await page.evaluate('window.inflowXss'), undefined, 'nothing ran');

  // A direct POST arrives through the stream and is rendered the same way.
  const direct = await postDirectly('<script>alert(1)</script>', '<a href="javascript:alert(1)">click</a>');
  const directRow = await waitForRow(`[data-id="${direct.id}"]`, 'persisted', 20_000);
  t.equal(await text(directRow.locator('.entry-message')), '<a href="javascript:alert(1)">click</a>');
  t.equal(await directRow.locator('a, script').count(), 0);
});

t.test('the queue health card shows the backlog and whether the worker keeps up', async (t) => {
  const verdict = page.locator('#queue-verdict');
  t.equal(await page.getAttribute('#queue-verdict', 'role'), 'status', 'the verdict is a status region');
  await verdict.getByText('The worker keeps up: nothing is waiting.').waitFor({ timeout: 30_000 });
  t.equal(await text(page.locator('#queue-waiting')), '0');
  t.equal(await page.locator('#queue-counts dt').count(), 4, 'four labelled counts');

  // A backlog that grows at every poll (from /api/stats, answered here): the worker is behind.
  let waiting = 100;
  await page.route('**/api/stats', (route) => {
    waiting += 50;
    return route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ queue: { waiting, active: 64, delayed: 0, failed: 2 } }),
    });
  });
  await verdict.getByText(/The worker is not keeping up: \d+ waiting and growing\. 2 entries failed for good\./).waitFor({ timeout: 30_000 });
  t.equal(await page.getAttribute('#queue-verdict', 'data-state'), 'behind');
  t.match(await text(page.locator('#queue-trend')), /The backlog grew by \d+ in the last \d+ s\./);
  t.equal(await text(page.locator('#queue-failed')), '2');
  await page.unroute('**/api/stats');
  await verdict.getByText('The worker keeps up: nothing is waiting.').waitFor({ timeout: 30_000 });
  t.pass('back to the real queue: nothing waiting');
});

t.test('no request left the origin and the page logged no error; screenshot', async (t) => {
  await waitFor(async () => (await page.locator('#entry-list li.entry:not([data-status="persisted"])').count()) === 0, {
    timeoutMs: 20_000,
    what: 'every shown entry to be persisted',
  });
  t.same(foreignRequests, [], 'no request to another host');
  // Chromium logs every non-2xx response; the 400 and the 503 above were provoked.
  const unexpected = consoleErrors.filter((line) => !/^Failed to load resource: .* status of (400|503) /.test(line));
  t.same(unexpected, [], `no other console error, CSP violations included (${unexpected.join(' | ')})`);
  await page.screenshot({ path: join(RESULTS, 'page.png'), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: join(RESULTS, 'page-narrow.png'), fullPage: true });
  t.pass(`screenshots in ${RESULTS}`);
});
