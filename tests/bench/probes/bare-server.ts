/**
 * The proxy ceiling's upstream: a bare node:http server that answers like the API does (202 with
 * a small JSON body for a POST, after reading the body; 200 for anything else) and does nothing
 * else. It runs in a container of the app image, under the name web1, web2 or web3, behind an
 * nginx with the project's own nginx.conf, so the only difference from the real stack is our code.
 */
import { createServer } from 'node:http';

const instance = process.env['INSTANCE_ID'] ?? 'bare';
const accepted = JSON.stringify({ id: '00000000-0000-7000-8000-000000000000', status: 'queued', acceptedBy: instance });
const ok = JSON.stringify({ instanceId: instance });

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = req.method === 'POST' ? accepted : ok;
    res.writeHead(req.method === 'POST' ? 202 : 200, { 'content-type': 'application/json; charset=utf-8', 'x-instance-id': instance });
    res.end(body);
  });
});
// As in the API: above nginx's upstream keepalive_timeout (60 s).
server.keepAliveTimeout = 65_000;
server.listen(8080);
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
});
