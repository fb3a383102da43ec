// The hash-chained audit trail through the real composition: every writer is chained (tokens, enrollment, revocation,
// concurrent appenders), GET /v1/admin/audit reads it, and `enrolld audit verify` names the first row altered, inserted
// or deleted by SQL behind enrolld's back.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { routes, type AuditListResponse, type AuditVerificationBody, type EnrollResponse } from '@enrolld/protocol';
import { AUDIT_CHAIN_LOCK_KEY } from '@enrolld/db';
import { makeCsr } from '../support/csr-factory.js';
import { httpsRequest, postJson } from '../support/http.js';
import { ENROLLD_BIN, REPO_ROOT } from '../support/processes.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

const run = promisify(execFile);

describe('audit trail', () => {
  let server: TestServer;
  const auth = () => ({ authorization: `Bearer ${server.adminToken}` });

  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(async () => {
    await server?.stop();
  });

  async function get<T>(path: string): Promise<{ status: number; body: T }> {
    const res = await httpsRequest(server.apiUrl + path, server.rootPem, { headers: auth() });
    return { status: res.status, body: res.json<T>() };
  }

  async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    try {
      const { stdout, stderr } = await run(process.execPath, [ENROLLD_BIN, ...args], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', ENROLLD_HOME: server.home, ENROLLD_URL: server.apiUrl },
      });
      return { code: 0, stdout, stderr };
    } catch (error) {
      const e = error as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  async function enrollAndRevoke(): Promise<string> {
    const deviceId = uniqueDeviceId('audit');
    const token = await server.createToken(deviceId);
    const csr = await makeCsr({ cn: deviceId });
    const enrolled = await postJson(server.apiUrl + routes.enroll, server.rootPem, { token, csr: csr.pem });
    expect(enrolled.status).toBe(201);
    expect(enrolled.json<EnrollResponse>().deviceId).toBe(deviceId);
    const revoked = await postJson(server.apiUrl + routes.adminRevokeDevice(deviceId), server.rootPem, { reason: 'keyCompromise' }, auth());
    expect(revoked.status).toBe(200);
    return deviceId;
  }

  it('the chain trigger takes the lock key db/src/transaction.ts names', async () => {
    const { rows } = await server.db.pool.query<{ src: string }>(`SELECT prosrc AS src FROM pg_proc WHERE proname = 'enrolld_audit_chain'`);
    expect(rows[0]!.src).toContain(`pg_advisory_xact_lock(${AUDIT_CHAIN_LOCK_KEY})`);
  });

  it('token creation, enrollment and revocation are chained, and the log reads back newest first with filters', async () => {
    const deviceId = await enrollAndRevoke();
    const { status, body } = await get<AuditListResponse>(`${routes.adminAudit}?deviceId=${deviceId}`);
    expect(status).toBe(200);
    expect(body.events.map((e) => e.action)).toEqual(['certificate.revoked', 'certificate.issued', 'token.created']);
    expect(body.events[0]!.detail).toMatchObject({ reasonCode: 1 });
    const seqs = body.events.map((e) => e.seq);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
    const byAction = await get<AuditListResponse>(`${routes.adminAudit}?action=certificate.revoked&limit=1`);
    expect(byAction.body.events).toHaveLength(1);
    expect(byAction.body.events[0]!.deviceId).toBe(deviceId);
    const verify = await get<AuditVerificationBody>(routes.adminAuditVerify);
    expect(verify.body).toMatchObject({ ok: true, firstBreak: null });
    expect(verify.body.head!.seq).toBe(verify.body.rows);
  });

  it('pages by keyset and answers 400 to a bad query', async () => {
    const all: number[] = [];
    let before: number | null = null;
    do {
      const page: { body: AuditListResponse } = await get<AuditListResponse>(`${routes.adminAudit}?limit=2${before ? `&before=${before}` : ''}`);
      all.push(...page.body.events.map((e) => e.seq));
      before = page.body.next;
    } while (before !== null);
    const { rows } = await server.db.pool.query<{ n: string }>('SELECT count(*) AS n FROM audit_events');
    expect(all).toHaveLength(Number(rows[0]!.n));
    expect(new Set(all).size).toBe(all.length);
    for (const bad of ['limit=0', 'before=-1', 'since=not-a-date', 'colour=red']) {
      const res = await get<{ type: string }>(`${routes.adminAudit}?${bad}`);
      expect(res.status).toBe(400);
    }
  });

  it('concurrent appenders (token batches, revocations, plain appends) leave one gapless chain', async () => {
    const before = (await get<AuditVerificationBody>(routes.adminAuditVerify)).body.rows;
    const work = [
      ...Array.from({ length: 8 }, () => enrollAndRevoke()),
      ...Array.from({ length: 8 }, (_, i) => postJson(server.apiUrl + routes.adminTokens, server.rootPem, { prefix: `${uniqueDeviceId('conc')}-${i}-`, count: 25 }, auth())),
      ...Array.from({ length: 20 }, (_, i) => server.running.useCases.audit.append({ action: 'test.appended', actor: `writer-${i}` })),
    ];
    await Promise.all(work);
    const verify = await get<AuditVerificationBody>(routes.adminAuditVerify);
    expect(verify.body.firstBreak).toBeNull();
    // 8 × (token + issued + revoked) + 8 × 25 tokens + 20 appends.
    expect(verify.body.rows - before).toBe(8 * 3 + 8 * 25 + 20);
    const { rows } = await server.db.pool.query<{ n: string; max: string }>('SELECT count(*) AS n, max(chain_seq) AS max FROM audit_events');
    expect(Number(rows[0]!.max)).toBe(Number(rows[0]!.n));
  });

  it('`enrolld audit verify` passes on an intact chain', async () => {
    const ok = await cli('audit', 'verify');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^audit chain intact: \d+ rows, head seq \d+ hash [0-9a-f]{64}$/m);
  });

  it('names a row inserted with the chain trigger disabled', async () => {
    const client = await server.db.pool.connect();
    try {
      await client.query('ALTER TABLE audit_events DISABLE TRIGGER audit_events_chain');
      await client.query(`INSERT INTO audit_events (action, actor) VALUES ('certificate.issued', 'forger')`);
      await client.query('ALTER TABLE audit_events ENABLE TRIGGER audit_events_chain');
    } finally {
      client.release();
    }
    const forged = await server.db.pool.query<{ id: string }>(`SELECT id FROM audit_events WHERE actor = 'forger'`);
    const out = await cli('audit', 'verify');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`row id ${forged.rows[0]!.id} is not in the chain`);
    await server.db.pool.query(`DELETE FROM audit_events WHERE actor = 'forger'`);
    expect((await cli('audit', 'verify')).code).toBe(0);
  });

  // The tampering tests below run last, in this order, and repair nothing: the deletion comes before the altered row.
  it('names exactly the row an UPDATE altered', async () => {
    const { rows } = await server.db.pool.query<{ id: string; chain_seq: string }>(
      `SELECT id, chain_seq FROM audit_events WHERE action = 'certificate.revoked' AND chain_seq < (SELECT max(chain_seq) FROM audit_events)
        ORDER BY chain_seq DESC LIMIT 1`,
    );
    const victim = rows[0]!;
    await server.db.pool.query(`UPDATE audit_events SET actor = 'nobody' WHERE id = $1`, [victim.id]);
    const out = await cli('audit', 'verify');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`row id ${victim.id} (chain seq ${victim.chain_seq}) was altered`);
    const json = await cli('audit', 'verify', '--json');
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout).firstBreak).toMatchObject({ kind: 'altered', id: Number(victim.id), seq: Number(victim.chain_seq) });
    // A forger who also recomputes the row's hash is caught at the next row, which names the replaced one.
    await server.db.pool.query(
      `UPDATE audit_events SET hash = sha256(prev_hash || enrolld_audit_content(chain_seq, id, at, action, actor, device_id, serial, request_id, detail))
        WHERE id = $1`,
      [victim.id],
    );
    const rehashed = await get<AuditVerificationBody>(routes.adminAuditVerify);
    expect(rehashed.body.firstBreak).toMatchObject({ kind: 'relinked', seq: Number(victim.chain_seq) + 1 });
    expect(rehashed.body.firstBreak!.message).toContain(`row id ${victim.id} (seq ${victim.chain_seq}) was replaced`);
  });

  it('names a deleted row by its missing seq and the intact row before the gap', async () => {
    const { rows } = await server.db.pool.query<{ id: string; chain_seq: string }>(`SELECT id, chain_seq FROM audit_events ORDER BY chain_seq LIMIT 2`);
    const [first, second] = rows;
    await server.db.pool.query('DELETE FROM audit_events WHERE id = $1', [second!.id]);
    const deleted = await get<AuditVerificationBody>(routes.adminAuditVerify);
    expect(deleted.body.firstBreak).toMatchObject({ kind: 'deleted', id: Number(first!.id), seq: Number(second!.chain_seq) });
    const out = await cli('audit', 'verify');
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`chain seq ${second!.chain_seq} missing: deleted after row id ${first!.id}`);
  });
});
