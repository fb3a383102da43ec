// A small in-process stand-in for enrolld, for the simulator's own tests and measurements only (the real
// e2e test runs the real server). Real TLS and a real aedes broker; the CA, tokens and revocation are in memory.
// It follows the wire contract of protocol/ (docs/architecture.md §10): REST + EST enrollment, REST/EST/MQTT renewal, admin tokens and
// revocation, a broker that takes the identity from the peer cert, refuses revoked certs with CONNACK 5, cuts
// live sessions on revocation, and supersedes a predecessor when its successor connects.
import 'reflect-metadata';
import { randomBytes, randomUUID, webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer } from 'node:tls';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { Socket } from 'node:net';
import * as x509 from '@peculiar/x509';
import { Aedes } from 'aedes';
import type { Client } from 'aedes';
import { identityUri, problemType, routes, topics, type IdentityKind } from '@enrolld/protocol';
import type { ProblemKind } from '@enrolld/protocol';
import { contextTag, integer, oid, pemToDer, sequence, setOf, splitPem, tlv } from '@enrolld/device-sim';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
const crypto = webcrypto;
x509.cryptoProvider.set(crypto as unknown as Parameters<typeof x509.cryptoProvider.set>[1]);
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGN = { name: 'ECDSA', hash: 'SHA-256' } as const;

interface CertRecord {
  serial: string;
  deviceId: string;
  kind: IdentityKind;
  pem: string;
  predecessor: string | undefined;
  revoked: boolean;
}

export interface FakeStackOptions {
  certLifetimeSeconds?: number;
  /** revoke the predecessor when its successor first connects (docs/architecture.md §8) */
  supersedeOnConnect?: boolean;
  /** refuse revoked certs as enrolld's broker does with its CRL: destroy the socket after the handshake, no CONNACK */
  refuseRevokedAtTls?: boolean;
}

class HttpProblem extends Error {
  constructor(readonly status: number, readonly kind: ProblemKind, detail: string) {
    super(detail);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** certs-only SignedData (RFC 5652 §5.1 with no signers), as an EST server answers. */
function pkcs7CertsOnly(pems: string[]): Buffer {
  const certs = pems.map((p) => pemToDer(p));
  const signedData = sequence(integer(1), setOf(), sequence(oid('1.2.840.113549.1.7.1')), contextTag(0, Buffer.concat(certs)), tlv(0x31, Buffer.alloc(0)));
  return sequence(oid('1.2.840.113549.1.7.2'), contextTag(0, signedData));
}

export class FakeStack {
  readonly home = mkdtempSync(join(tmpdir(), 'sim-fake-'));
  readonly adminToken = randomBytes(16).toString('hex');
  certLifetimeSeconds: number;
  /**
   * Lifetime of a renewed certificate; unset, the same as certLifetimeSeconds. A test that checks one rotation wave
   * sets it long, so no second wave (and its brief reconnects) overlaps what it counts afterwards.
   */
  successorLifetimeSeconds: number | undefined;
  supersedeOnConnect: boolean;
  refuseRevokedAtTls: boolean;
  httpsPort = 0;
  mqttsPort = 0;
  readonly tokens = new Map<string, { deviceId: string; used: boolean; csr?: string; serial?: string }>();
  readonly certs = new Map<string, CertRecord>();
  readonly clients = new Map<string, Client>();
  /** when each cut happened (serial → ms), for tests */
  readonly cuts: Array<{ deviceId: string; at: number }> = [];
  /** Devices cut off from the broker (partition): their live socket is dropped and every new one is closed after the handshake. */
  readonly partitioned = new Set<string>();
  issued = 0;
  private rootPem = '';
  private interPem = '';
  private interKey: CryptoKey | undefined;
  private interCert: x509.X509Certificate | undefined;
  private serverPem = '';
  private serverKeyPem = '';
  private https: HttpsServer | undefined;
  private tls: TlsServer | undefined;
  private broker: Aedes | undefined;
  private readonly sockets = new Set<Socket>();

  constructor(opts: FakeStackOptions = {}) {
    this.certLifetimeSeconds = opts.certLifetimeSeconds ?? 3600;
    this.successorLifetimeSeconds = undefined;
    this.supersedeOnConnect = opts.supersedeOnConnect ?? true;
    this.refuseRevokedAtTls = opts.refuseRevokedAtTls ?? false;
  }

  get apiUrl(): string {
    return `https://localhost:${this.httpsPort}`;
  }
  get brokerUrl(): string {
    return `mqtts://localhost:${this.mqttsPort}`;
  }
  get caFile(): string {
    return join(this.home, 'ca', 'root.pem');
  }
  get adminTokenFile(): string {
    return join(this.home, 'admin-token');
  }

  async start(): Promise<void> {
    await this.makePki();
    this.https = createHttpsServer(
      { cert: this.serverPem + this.interPem, key: this.serverKeyPem, ca: [this.rootPem, this.interPem], requestCert: true, rejectUnauthorized: false },
      (req, res) => void this.route(req, res),
    );
    this.https.keepAliveTimeout = 5_000;
    await new Promise<void>((r) => this.https?.listen(0, '127.0.0.1', r));
    const addr = this.https.address();
    this.httpsPort = typeof addr === 'object' && addr ? addr.port : 0;
    await this.startBroker();
  }

  private async makePki(): Promise<void> {
    const now = Date.now();
    const rootKeys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: 'CN=Fake enrolld Root', keys: rootKeys, signingAlgorithm: SIGN, notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    });
    const interKeys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const inter = await x509.X509CertificateGenerator.create({
      subject: 'CN=Fake enrolld Issuing CA', issuer: root.subject, publicKey: interKeys.publicKey, signingKey: rootKeys.privateKey, signingAlgorithm: SIGN,
      notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
      extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
    });
    const serverKeys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
    const server = await x509.X509CertificateGenerator.create({
      subject: 'CN=localhost', issuer: inter.subject, publicKey: serverKeys.publicKey, signingKey: interKeys.privateKey, signingAlgorithm: SIGN,
      notBefore: new Date(now - 60_000), notAfter: new Date(now + 86_400_000),
      extensions: [
        new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }]),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      ],
    });
    this.rootPem = root.toString('pem') + '\n';
    this.interPem = inter.toString('pem') + '\n';
    this.interKey = interKeys.privateKey;
    this.interCert = inter;
    this.serverPem = server.toString('pem') + '\n';
    const pkcs8 = Buffer.from(await crypto.subtle.exportKey('pkcs8', serverKeys.privateKey));
    this.serverKeyPem = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64')}\n-----END PRIVATE KEY-----\n`;
    mkdirSync(join(this.home, 'ca'), { recursive: true });
    writeFileSync(this.caFile, this.rootPem);
    writeFileSync(this.adminTokenFile, `${this.adminToken}\n`, { mode: 0o600 });
  }

  private async startBroker(): Promise<void> {
    const broker = await Aedes.createBroker({
      // identity from the peer cert; clientId must equal it; a revoked serial gets CONNACK 5 (MQTT 3.1.1 §3.2.2.3)
      authenticate: (client, _u, _p, done) => {
        const peer = (client.conn as TLSSocket).getPeerCertificate();
        const serial = String(peer.serialNumber ?? '').toLowerCase();
        const record = this.certs.get(serial);
        const deny = (code: 2 | 5): void => done(Object.assign(new Error('denied'), { returnCode: code }), false);
        if (!record || record.deviceId !== client.id) return deny(5);
        if (record.revoked) return deny(5);
        (client as Client & { serial?: string }).serial = serial;
        (client as Client & { kind?: IdentityKind }).kind = record.kind;
        done(null, true);
      },
      authorizePublish: (client, packet, cb) => {
        // A service may send commands to any device (the built-in `service` profile); a device stays in its prefix.
        if (client && (client as Client & { kind?: IdentityKind }).kind === 'service') {
          return cb(/^devices\/[^/]+\/commands$/.test(packet.topic) ? null : new Error('denied'));
        }
        if (!client || !packet.topic.startsWith(topics.prefix(client.id))) return cb(new Error('denied'));
        if (packet.topic === topics.renew(client.id)) {
          void this.renewOverMqtt(client, packet.payload.toString());
        }
        cb(null);
      },
      authorizeSubscribe: (client, sub, cb) => {
        const service = (client as Client & { kind?: IdentityKind }).kind === 'service';
        const allowed = service ? sub.topic === topics.allTelemetry || sub.topic === topics.allCommandAcks : sub.topic.startsWith(topics.prefix(client.id));
        cb(null, allowed ? sub : null);
      },
    });
    broker.on('client', (client) => {
      const serial = (client as Client & { serial?: string }).serial;
      this.clients.set(client.id, client);
      const record = serial ? this.certs.get(serial) : undefined;
      if (this.supersedeOnConnect && record?.predecessor) {
        const old = this.certs.get(record.predecessor);
        if (old) old.revoked = true;
      }
    });
    broker.on('clientDisconnect', (client) => {
      if (this.clients.get(client.id) === client) this.clients.delete(client.id);
    });
    this.broker = broker;
    this.tls = createTlsServer(
      { cert: this.serverPem + this.interPem, key: this.serverKeyPem, ca: [this.rootPem, this.interPem], requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' },
      (socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        const serial = String(socket.getPeerCertificate().serialNumber ?? '').toLowerCase();
        if (this.refuseRevokedAtTls && this.certs.get(serial)?.revoked) return void socket.destroy();
        const deviceId = this.certs.get(serial)?.deviceId;
        if (deviceId !== undefined && this.partitioned.has(deviceId)) return void socket.destroy();
        broker.handle(socket);
      },
    );
    this.tls.on('connection', (s: Socket) => s.setNoDelay(true));
    await new Promise<void>((r) => this.tls?.listen(this.mqttsPort, '127.0.0.1', r));
    const addr = this.tls.address();
    this.mqttsPort = typeof addr === 'object' && addr ? addr.port : 0;
  }

  private async stopBroker(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    this.clients.clear();
    await new Promise<void>((r) => (this.tls ? this.tls.close(() => r()) : r()));
    await new Promise<void>((r) => (this.broker ? this.broker.close(() => r()) : r()));
  }

  /** Cuts one device off the broker while it stays in `partitioned`: a device that cannot come back. */
  partition(deviceId: string): void {
    this.partitioned.add(deviceId);
    this.clients.get(deviceId)?.conn.destroy();
  }

  /** Broker down for `downMs`, then back on the same port. */
  async restartBroker(downMs = 500): Promise<void> {
    await this.stopBroker();
    await new Promise((r) => setTimeout(r, downMs));
    await this.startBroker();
  }

  dropAll(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    await this.stopBroker();
    this.https?.closeAllConnections();
    await new Promise<void>((r) => (this.https ? this.https.close(() => r()) : r()));
    rmSync(this.home, { recursive: true, force: true });
  }

  revokeDevice(deviceId: string): void {
    for (const c of this.certs.values()) if (c.deviceId === deviceId) c.revoked = true;
    const client = this.clients.get(deviceId);
    if (client) {
      this.cuts.push({ deviceId, at: Date.now() });
      client.close();
    }
  }

  // ── issuance ──────────────────────────────────────────────────────────────────────────────────────

  private async issue(deviceId: string, csrPem: string, predecessor?: string, kind: IdentityKind = 'device'): Promise<CertRecord> {
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    if (!(await csr.verify())) throw new HttpProblem(400, 'bad-csr', 'CSR signature does not verify');
    const cn = csr.subjectName.getField('CN')[0];
    if (cn !== undefined && cn !== deviceId) throw new HttpProblem(400, 'identity-mismatch', 'CSR names another device');
    const now = Date.now();
    const lifetimeSeconds = (predecessor === undefined ? undefined : this.successorLifetimeSeconds) ?? this.certLifetimeSeconds;
    const bytes = randomBytes(16);
    bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40; // positive, no leading zero octet
    const serial = bytes.toString('hex');
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial, subject: `CN=${deviceId}`, issuer: this.interCert?.subject ?? '', publicKey: await csr.publicKey.export(crypto),
      signingKey: this.interKey as CryptoKey, signingAlgorithm: SIGN,
      notBefore: new Date(Math.floor(now / 1000) * 1000 - 1000), notAfter: new Date(Math.floor(now / 1000) * 1000 + lifetimeSeconds * 1000 - 1000),
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: identityUri(kind, deviceId) }]),
      ],
    });
    const record: CertRecord = { serial, deviceId, kind, pem: cert.toString('pem') + '\n', predecessor, revoked: false };
    this.certs.set(serial, record);
    this.issued++;
    return record;
  }

  private enrollShape(r: CertRecord): object {
    const cert = new NodeX509(r.pem);
    const [notBefore, notAfter] = [Date.parse(cert.validFrom), Date.parse(cert.validTo)];
    // RENEWAL_WINDOW's default: the last third of the lifetime.
    const renewAfter = new Date(notAfter - (notAfter - notBefore) / 3).toISOString();
    return { deviceId: r.deviceId, serial: r.serial, certificate: r.pem, chain: this.interPem + this.rootPem, notAfter: cert.validTo, renewAfter };
  }

  private currentCert(req: IncomingMessage): CertRecord {
    const sock = req.socket as TLSSocket;
    const peer = sock.getPeerCertificate();
    if (!sock.authorized || !peer.serialNumber) throw new HttpProblem(401, 'unauthorized', 'a valid client certificate is required');
    const record = this.certs.get(peer.serialNumber.toLowerCase());
    if (!record) throw new HttpProblem(401, 'unauthorized', 'unknown certificate');
    if (record.revoked) throw new HttpProblem(403, 'revoked', 'certificate revoked');
    return record;
  }

  private async renewOverMqtt(client: Client, body: string): Promise<void> {
    const serial = (client as Client & { serial?: string }).serial ?? '';
    const current = this.certs.get(serial);
    try {
      if (!current || current.revoked) throw new HttpProblem(403, 'revoked', 'certificate revoked');
      const { csr } = JSON.parse(body) as { csr: string };
      const next = await this.issue(client.id, csr, serial);
      client.publish({ cmd: 'publish', topic: topics.renewAccepted(client.id), payload: Buffer.from(JSON.stringify(this.enrollShape(next))), qos: 0, retain: false, dup: false }, () => {});
    } catch (err) {
      const p = err instanceof HttpProblem ? err : new HttpProblem(400, 'bad-request', (err as Error).message);
      client.publish({ cmd: 'publish', topic: topics.renewRejected(client.id), payload: Buffer.from(JSON.stringify({ type: problemType(p.kind), title: p.kind, status: p.status, detail: p.message })), qos: 0, retain: false, dup: false }, () => {});
    }
  }

  // ── HTTP ──────────────────────────────────────────────────────────────────────────────────────────

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'https://x');
      const path = url.pathname;
      if (req.method === 'GET' && path === routes.healthz) return void res.end('ok');
      if (req.method !== 'POST') throw new HttpProblem(404, 'not-found', path);
      const body = await readBody(req);
      if (path === routes.adminTokens) {
        this.admin(req);
        const b = JSON.parse(body) as { prefix?: string; count?: number; deviceId?: string };
        const ids = b.deviceId ? [b.deviceId] : Array.from({ length: b.count ?? 0 }, (_, i) => `${b.prefix}${String(i + 1).padStart(5, '0')}`);
        const batchId = randomUUID();
        const out = ids.map((deviceId) => {
          const token = randomBytes(16).toString('base64url');
          this.tokens.set(token, { deviceId, used: false });
          return { deviceId, token, expiresAt: new Date(Date.now() + 86_400_000).toISOString(), issuedAs: 'new', batchId };
        });
        return this.json(res, 201, out);
      }
      if (path === routes.adminServices) {
        this.admin(req);
        const b = JSON.parse(body) as { name: string; csr: string };
        return this.json(res, 201, this.enrollShape(await this.issue(b.name, b.csr, undefined, 'service')));
      }
      const revoke = /^\/v1\/admin\/devices\/([^/]+)\/revoke$/.exec(path);
      if (revoke?.[1]) {
        this.admin(req);
        this.revokeDevice(decodeURIComponent(revoke[1]));
        return this.json(res, 200, { revoked: true });
      }
      if (path === routes.enroll) {
        const { token, csr } = JSON.parse(body) as { token: string; csr: string };
        return this.json(res, 201, this.enrollShape(await this.enrollWith(token, csr)));
      }
      if (path === routes.est.simpleenroll) {
        const auth = Buffer.from((req.headers.authorization ?? '').replace(/^Basic /, ''), 'base64').toString();
        const token = auth.slice(auth.indexOf(':') + 1);
        const record = await this.enrollWith(token, derToCsrPem(body));
        return this.pkcs7(res, [record.pem, this.interPem]);
      }
      if (path === routes.renew) {
        const current = this.currentCert(req);
        const { csr } = JSON.parse(body) as { csr: string };
        return this.json(res, 201, this.enrollShape(await this.issue(current.deviceId, csr, current.serial)));
      }
      if (path === routes.est.simplereenroll) {
        const current = this.currentCert(req);
        const next = await this.issue(current.deviceId, derToCsrPem(body), current.serial);
        return this.pkcs7(res, [this.interPem, next.pem]);
      }
      throw new HttpProblem(404, 'not-found', path);
    } catch (err) {
      const p = err instanceof HttpProblem ? err : new HttpProblem(400, 'bad-request', (err as Error).message);
      res.writeHead(p.status, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ type: problemType(p.kind), title: p.kind, status: p.status, detail: p.message }));
    }
  }

  private async enrollWith(token: string, csr: string): Promise<CertRecord> {
    const t = this.tokens.get(token);
    if (!t) throw new HttpProblem(401, 'unauthorized', 'unknown, used or expired token');
    if (t.used) {
      // a retry with the same CSR gets the same cert (docs/architecture.md §5)
      if (t.csr === csr && t.serial) return this.certs.get(t.serial) as CertRecord;
      throw new HttpProblem(401, 'unauthorized', 'unknown, used or expired token');
    }
    t.used = true;
    const record = await this.issue(t.deviceId, csr);
    t.csr = csr;
    t.serial = record.serial;
    return record;
  }

  private admin(req: IncomingMessage): void {
    if (req.headers.authorization !== `Bearer ${this.adminToken}`) throw new HttpProblem(401, 'unauthorized', 'admin token required');
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private pkcs7(res: ServerResponse, pems: string[]): void {
    const body = pkcs7CertsOnly(pems.flatMap((p) => splitPem(p))).toString('base64');
    res.writeHead(200, { 'content-type': 'application/pkcs7-mime; smime-type=certs-only', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }
}

function derToCsrPem(base64: string): string {
  const b64 = base64.replace(/\s+/g, '');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64.match(/.{1,64}/g)?.join('\n')}\n-----END CERTIFICATE REQUEST-----\n`;
}
