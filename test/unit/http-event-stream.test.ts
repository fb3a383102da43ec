// The live-events stream (GET /v1/admin/events, server-sent events) ends with its connection, including a connection
// that is gone before the stream starts: the admin check is asynchronous, and a client may leave (or its connection
// break on bytes that are not HTTP) while it runs. The app runs on a real socket; the admin check is a gate the test
// opens, so "the client left during the check" happens every time.
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { Registry } from 'prom-client';
import { routes } from '@enrolld/protocol';
import type { AdminPrincipal } from '@enrolld/core/admin-auth.js';
import { createFleetEvents, type FleetEvents } from '@enrolld/core/fleet/live-events.js';
import { createHttpApp, type HttpUseCases } from '../../server/src/http/app.js';
import { waitFor } from '../support/wait-for.js';

const OWNER: AdminPrincipal = { actor: 'bearer:test', role: 'owner', credential: 'bearer', name: 'test' };

/** An admin check of bearer tokens that, when held, waits until the test lets it through. */
function gatedAdminCheck() {
  let held: { asked(): void; opened: Promise<void> } | undefined;
  return {
    authenticate: {
      bearerEnabled: true,
      async bearer() {
        const gate = held;
        held = undefined;
        if (gate) {
          gate.asked();
          await gate.opened;
        }
        return OWNER;
      },
      certificate: () => Promise.reject(new Error('no admin certificates here')),
    } satisfies HttpUseCases['authenticateAdmin'],
    /** Holds the next check: `asked` resolves when it runs, `open()` lets it through. */
    holdNext(): { asked: Promise<void>; open(): void } {
      let asked!: () => void;
      let open!: () => void;
      const askedPromise = new Promise<void>((resolve) => (asked = resolve));
      held = { asked, opened: new Promise<void>((resolve) => (open = resolve)) };
      return { asked: askedPromise, open: () => open() };
    },
  };
}

describe('live-events stream and its connection', () => {
  let server: http.Server | undefined;
  let events: FleetEvents;

  async function start(authenticate: HttpUseCases['authenticateAdmin']): Promise<number> {
    events = createFleetEvents();
    const app = createHttpApp({
      logger: pino({ level: 'silent' }),
      registry: new Registry(),
      useCases: { authenticateAdmin: authenticate, fleetEvents: events } as HttpUseCases,
      popLinking: 'if-present',
      checkReadiness: async () => ({}),
      consoleSessionTtlMs: 60_000,
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  /** Opens the stream and resolves with the request once its first bytes arrived. */
  function openStream(port: number): Promise<{ request: http.ClientRequest; received: string[] }> {
    return new Promise((resolve, reject) => {
      const received: string[] = [];
      const request = http.get({ host: '127.0.0.1', port, path: routes.adminEvents, headers: { authorization: 'Bearer x' } }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          received.push(chunk);
          if (received.length === 1) resolve({ request, received });
        });
        res.on('error', () => undefined);
      });
      request.on('error', reject);
    });
  }

  it('a stream that was open stops listening when its client goes', async () => {
    const port = await start(gatedAdminCheck().authenticate);
    const { request, received } = await openStream(port);
    expect(events.subscriberCount()).toBe(1);
    events.publish({ type: 'enrolled', deviceId: 'dev-1', serial: '01', at: events.now() });
    await waitFor(() => received.join('').includes('event: enrolled'), 5000, 'the event on the stream');
    request.destroy();
    await waitFor(() => events.subscriberCount() === 0, 5000, 'the stream to stop listening');
  });

  it('a client that leaves while the admin check runs gets no stream that would never end', async () => {
    const gates = gatedAdminCheck();
    const port = await start(gates.authenticate);
    const gate = gates.holdNext();
    const serverSideClosed = new Promise<void>((resolve) => server!.once('connection', (socket) => socket.once('close', () => resolve())));
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => undefined);
    client.write(`GET ${routes.adminEvents} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer x\r\n\r\n`);
    await gate.asked;
    client.destroy();
    await serverSideClosed;
    gate.open();
    // A second stream, opened after the first check was let through: once it is live, the first handler has run.
    const second = await openStream(port);
    expect(events.subscriberCount()).toBe(1);
    second.request.destroy();
    await waitFor(() => events.subscriberCount() === 0, 5000, 'the second stream to stop listening');
  });
});
