// The plain-HTTP port of a standalone `enrolld broker` (BROKER_HTTP_PORT): /healthz, /readyz and /metrics, nothing
// else. The MQTT port only speaks mutual TLS, so without this a load balancer or an orchestrator could only open a TCP
// connection to it, and a node that refuses every CONNECT (CONNACK 3) would still look healthy; and Prometheus could not
// scrape the broker's metrics. No admin routes: it serves nothing secret and changes nothing.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { problemDocument, routes, type ProblemKind } from '@enrolld/protocol';
import { readinessAnswer } from './readiness.js';

export interface BrokerHttpDeps {
  host: string;
  port: number;
  registry: Registry;
  /** Each thing the broker needs to admit a CONNECT: true when it has it (the same checks as `enrolld up`'s /readyz). */
  checkReadiness: () => Record<string, boolean>;
}

export interface BrokerHttpServer {
  listen(): Promise<{ port: number }>;
  close(): Promise<void>;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

function sendProblem(res: http.ServerResponse, kind: ProblemKind, detail: string, extensions: Record<string, unknown> = {}): void {
  const problem = problemDocument(kind, detail, extensions);
  sendJson(res, problem.status, problem, 'application/problem+json');
}

export function createBrokerHttpServer(deps: BrokerHttpDeps): BrokerHttpServer {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const known = path === routes.healthz || path === routes.readyz || path === routes.metrics;
    if (!known) return sendProblem(res, 'not-found', `this port serves only ${routes.healthz}, ${routes.readyz} and ${routes.metrics}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return sendProblem(res, 'bad-request', `${path} answers GET only`);
    }
    // Alive: the process answers. Restart it when this fails, never because a dependency is down.
    if (path === routes.healthz) return sendJson(res, 200, { status: 'alive' });
    // Ready to admit. 503 names what is missing, so a load balancer sends no devices here until it is back.
    if (path === routes.readyz) {
      const answer = readinessAnswer(deps.checkReadiness(), 'admit devices');
      return sendJson(res, answer.status, answer.body, answer.contentType);
    }
    deps.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': deps.registry.contentType, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      },
      (error: unknown) => sendProblem(res, 'internal', `metrics could not be collected: ${error instanceof Error ? error.message : String(error)}`),
    );
  });
  // A scraper or a probe that holds its connection open must not keep the broker from stopping.
  server.keepAliveTimeout = 5000;
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  let listening = false;
  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: deps.host, port: deps.port }, () => {
          server.off('error', reject);
          listening = true;
          resolve({ port: (server.address() as AddressInfo).port });
        });
      });
    },
    async close() {
      if (!listening) return;
      listening = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
