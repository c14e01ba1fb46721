// Container health probe without curl: exits 0 when the program's own HTTP endpoint answers 2xx.
//   node healthcheck.mjs [PATH]      PATH defaults to /healthz
// The port is the worker's HEALTH_PORT when set, else the API's PORT (both set by the image).
// node:http rather than fetch: fetch (undici) compiles its WebAssembly HTTP parser on first use,
// which made each probe take about 5 s instead of 1 s on a busy two-core host.
import { get } from 'node:http';

const port = process.env.HEALTH_PORT ?? process.env.PORT ?? '8080';
const path = process.argv[2] ?? '/healthz';

const request = get({ host: '127.0.0.1', port, path, timeout: 2_500 }, (response) => {
  response.resume();
  process.exit(response.statusCode >= 200 && response.statusCode < 300 ? 0 : 1);
});
request.on('timeout', () => request.destroy(new Error('timed out')));
request.on('error', () => process.exit(1));
