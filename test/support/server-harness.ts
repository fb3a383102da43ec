import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CreatedToken } from '@enrolld/protocol';
import { routes } from '@enrolld/protocol';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import { buildUp, type BuiltUp, type UpEndpoints } from '../../server/src/compose/up.js';
import { postJson } from './http.js';
import { createTestDatabase, type TestDatabase } from './pg.js';

export interface TestServer {
  /** The wired `enrolld up`: its use cases, broker (resync, hasSession…) and jobs (sweepNow) for explicit triggers. */
  running: BuiltUp & UpEndpoints;
  apiUrl: string;
  home: string;
  rootPem: string;
  chainPem: string;
  adminToken: string;
  db: TestDatabase;
  /**
   * A bootstrap token; `replace` consents to re-issuing an id that already has a live certificate; `profile` and
   * `group` go into the certificate it enrolls.
   */
  createToken(deviceId: string, ttlSeconds?: number, options?: TokenOptions): Promise<string>;
  /** Stops the composition but keeps the database and ENROLLD_HOME, for a restart (`restartOf`). */
  halt(): Promise<void>;
  stop(): Promise<void>;
}

export interface TokenOptions {
  replace?: boolean;
  profile?: string;
  group?: string;
}

export interface TestServerOptions {
  env?: Record<string, string>;
  /** Point the server at this URL instead of the test database directly (e.g. through a TcpProxy). */
  databaseUrl?: (db: TestDatabase) => Promise<string> | string;
  /** Start on the database and ENROLLD_HOME of a halted server instead of fresh ones (a restart with other settings). */
  restartOf?: Pick<TestServer, 'db' | 'home'>;
}

/** The real composition (`enrolld up`) on its own database, a temp ENROLLD_HOME and port 0. */
export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const db = options.restartOf?.db ?? (await createTestDatabase());
  const home = options.restartOf?.home ?? (await mkdtemp(path.join(tmpdir(), 'enrolld-test-')));
  const databaseUrl = options.databaseUrl ? await options.databaseUrl(db) : db.url;
  const config = loadConfig({
    ENROLLD_HOME: home,
    HTTPS_PORT: '0',
    MQTTS_PORT: '0',
    LISTEN_HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    ...options.env,
  });
  const built = await buildUp(config, createLogger(config.logLevel));
  let endpoints: UpEndpoints;
  try {
    endpoints = await built.listen();
  } catch (error) {
    await built.stop();
    throw error;
  }
  const running = Object.assign(built, endpoints);
  const rootPem = await readFile(config.paths.rootCert, 'utf8');
  const chainPem = await readFile(path.join(home, 'ca', 'chain.pem'), 'utf8');
  const adminToken = (await readFile(config.paths.adminTokenFile, 'utf8')).trim();
  return {
    running,
    apiUrl: running.apiUrl,
    home,
    rootPem,
    chainPem,
    adminToken,
    db,
    async createToken(deviceId, ttlSeconds, options) {
      const res = await postJson(running.apiUrl + routes.adminTokens, rootPem, { deviceId, ttlSeconds, ...options }, { authorization: `Bearer ${adminToken}` });
      if (res.status !== 201) throw new Error(`token create failed: ${res.status} ${res.text}`);
      return res.json<CreatedToken[]>()[0]!.token;
    },
    halt: () => running.stop(),
    async stop() {
      await running.stop();
      await db.drop();
      await rm(home, { recursive: true, force: true });
    },
  };
}

let counter = 0;
/** A device id no other test uses. */
export function uniqueDeviceId(prefix = 'dev'): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`;
}
