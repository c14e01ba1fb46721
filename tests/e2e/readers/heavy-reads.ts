/**
 * One client that opens `count` list reads at once, each on a connection of its own, reads every
 * answer to its end and stops: the heavy reader of edge-reads.test.ts. Runs in a container of the
 * tools image in nginx's network namespace, so that nginx sees it as an address of its own
 * (127.0.0.1), apart from the test process on the host.
 *
 *   node heavy-reads.ts URL COUNT
 *
 * Prints one JSON line when every request is on its way ({"started": COUNT}), and one when all
 * have ended: {"statuses": {"200": n, "429": n, …}, "errors": n, "seconds": s}. Bounded: exactly
 * COUNT requests, each given up after 120 s (counted as an error).
 */
import { request } from 'node:http';

const [url = '', countText = ''] = process.argv.slice(2);
const count = Number(countText);
if (url === '' || !Number.isInteger(count) || count < 1) throw new Error('usage: node heavy-reads.ts URL COUNT');

const say = (line: unknown) => process.stdout.write(`${JSON.stringify(line)}\n`);

/** The status of one GET, read to its end; 0 for a network error or a timeout. */
function get(): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false }, (res) => {
      res.resume();
      res.on('end', () => {
        resolve(res.statusCode ?? 0);
      });
      res.on('error', () => {
        resolve(0);
      });
    });
    req.setTimeout(120_000, () => req.destroy(new Error('no answer in 120 s')));
    req.on('error', () => {
      resolve(0);
    });
    req.end();
  });
}

const startedAt = performance.now();
const pending = Array.from({ length: count }, () => get());
say({ started: count });
const statuses: Record<string, number> = {};
let errors = 0;
for (const status of await Promise.all(pending)) {
  if (status === 0) errors += 1;
  else statuses[status] = (statuses[status] ?? 0) + 1;
}
say({ statuses, errors, seconds: Number(((performance.now() - startedAt) / 1000).toFixed(2)) });
