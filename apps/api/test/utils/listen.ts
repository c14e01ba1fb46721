import { once } from 'node:events';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Teardown } from '@inflow/test-support';

/** Listens on a free loopback port; closed (connections included) by the test's teardown. */
export async function listen(t: Teardown, app: RequestListener): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  return { server, url: `http://127.0.0.1:${String((server.address() as AddressInfo).port)}` };
}
