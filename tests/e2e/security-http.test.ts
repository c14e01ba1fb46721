/**
 * The HTTP posture of the compose stack through nginx: security headers on every response
 * exactly once, proxied or made by nginx; no version or framework disclosed; Express trusting
 * exactly the nginx hop and limiting JSON bodies to 16 KiB. The containers' hardening is
 * security-containers.test.ts; what nginx itself allows (public paths, capacity, client
 * addresses, the rate limit) is edge-paths.test.ts, edge-capacity.test.ts and chaos scenario 10.
 *
 * Runs against the stack that e2e/run.ts started (INFLOW_URL, INFLOW_E2E_PROJECT).
 */
import { randomUUID } from 'node:crypto';
import t from 'tap';
import { BASE_URL, errorCode, execIn, firstHeader as one, rawExchange, rawRequest, serviceLogLines, waitFor, type RawResult } from '@inflow/test-support';

const SECURITY_HEADERS = ['x-content-type-options', 'referrer-policy', 'content-security-policy', 'x-instance-id', 'x-request-id'] as const;

type Answer = Pick<RawResult, 'status' | 'headerValues' | 'text'>;

const send = (path: string, options: Parameters<typeof rawRequest>[1] = {}): Promise<RawResult> => rawRequest(`${BASE_URL}${path}`, options);

const errorShape = (answer: Answer): boolean => errorCode(answer) !== undefined;

/** What is wrong with a response's headers: each security header exactly once, no version in Server, no X-Powered-By. */
function headerProblems(answer: Answer): string[] {
  const problems: string[] = [];
  for (const name of SECURITY_HEADERS) {
    const values = answer.headerValues.get(name) ?? [];
    if (values.length !== 1) problems.push(`${name} ${values.length} times ${JSON.stringify(values)}`);
  }
  if (one(answer, 'x-content-type-options') !== 'nosniff') problems.push('X-Content-Type-Options is not nosniff');
  if (JSON.stringify(answer.headerValues.get('server')) !== '["nginx"]') problems.push(`Server: ${JSON.stringify(answer.headerValues.get('server'))}`);
  if (answer.headerValues.has('x-powered-by')) problems.push('X-Powered-By present');
  return problems;
}

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
  const [badLine] = (await rawExchange(BASE_URL, 'get / HTTP/1.1\r\nHost: x\r\n\r\n')).answers;
  t.ok(badLine, 'a lower-case request line is answered');
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
  t.notOk(answer.headerValues.has('x-powered-by'), 'no X-Powered-By');
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
  const over = await execIn('web1', ['node', '-e', script(16 * 1024 + 1)]);
  t.match(over.stdout, /^413 null \{"error":\{"code":"payload_too_large"/, `16 KiB + 1 straight to the API: 413 (${over.stdout.slice(0, 120)})`);
  const at = await execIn('web1', ['node', '-e', script(16 * 1024)]);
  t.match(at.stdout, /^400 null \{"error":\{"code":"invalid_field","message":"message must be/, 'exactly 16 KiB: read, then refused by the field rule');
});
