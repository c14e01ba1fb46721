// Container health probe without curl: exits 0 when the program's own HTTP endpoint answers 2xx.
//   node healthcheck.mjs [PATH]      PATH defaults to /healthz
// The port is the worker's HEALTH_PORT when set, else the API's PORT (both set by the image).
const port = process.env.HEALTH_PORT ?? process.env.PORT ?? '8080';
const path = process.argv[2] ?? '/healthz';

try {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2_500) });
  process.exit(response.ok ? 0 : 1);
} catch {
  process.exit(1);
}
