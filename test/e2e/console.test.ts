// The web console in a real browser (Debian's chromium through playwright-core; no browser download): sign in →
// search → open a device → revoke it → see the live event and the session cut → a revoked certificate's reconnect
// stands out → bulk dry run → tokens CSV once → charts → audit. User strings planted with HTML (a revocation comment,
// a profile name) are shown as text. Then a browser with an admin client certificate signs in by it, without a token,
// until the admin is revoked. A refusal another broker process sent (coalesced, with a count) counts its repeats. One
// screenshot per page goes to test-artifacts/console/.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CREATED_TOKEN_CSV_COLUMNS, routes, type AuditListResponse } from '@enrolld/protocol';
import { createAdmin } from '../support/admin-certs.js';
import { REPO_ROOT } from '../support/processes.js';
import { connectWith, mustConnect } from '../support/renew-mqtt.js';
import { enrollDevice, type DeviceCreds } from '../support/renew-support.js';
import { createEnvironment, enrollIn } from '../support/environments.js';
import { httpsRequest } from '../support/http.js';
import { startTestServer, uniqueDeviceId, type TestServer } from '../support/server-harness.js';

// The browser globals the page functions below use (the test project compiles without the DOM library).
declare const document: { querySelector(selector: string): { textContent: string | null } | null; querySelectorAll(selector: string): { length: number } };
declare const window: { __pwned?: number };

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'test-artifacts', 'console');
const PLANTED_COMMENT = `<img src=x onerror="window.__pwned=1"><b>stolen</b> & "quoted"`;
const PLANTED_PROFILE = `<script>window.__pwned=2</script>line-7`;

describe('console in chromium', () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const prefix = `${uniqueDeviceId('plant')}-`;
  const staging = `staging-${prefix.slice(-7, -1)}`;
  let devices: DeviceCreds[];
  let stagingDevice: DeviceCreds;

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    server = await startTestServer();
    devices = [];
    for (let i = 0; i < 3; i++) devices.push(await enrollDevice(server, `${prefix}${i}`));
    await server.db.pool.query('UPDATE devices SET profile = $1 WHERE id = $2', [PLANTED_PROFILE, devices[1]!.deviceId]);
    // An environment the fleet page offers as a filter, with one device of its own.
    await createEnvironment(server, staging);
    stagingDevice = await enrollIn(server, staging, uniqueDeviceId('stage'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
    const context = await browser.newContext({ ignoreHTTPSErrors: true, acceptDownloads: true, viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    // Any CSP violation, script error or failed asset is a failure of the page.
    page.on('console', (m) => m.type() === 'error' && !m.text().startsWith('Failed to load resource') && problems.push(`console: ${m.text()}`));
    // The one error answer expected: the refused sign-in.
    page.on('response', (r) => r.status() >= 400 && !(r.status() === 401 && r.url().endsWith('/console/sign-in')) && problems.push(`${r.status()} ${r.url()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => !r.url().includes('/v1/admin/events') && problems.push(`request failed: ${r.url()}`));
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.stop();
  });

  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  it('drives sign in → search → device → revoke → live event and cut → bulk dry run → tokens → charts → audit', async () => {
    // Sign-in: the shell redirects there, with a strict CSP on every console page.
    const first = await page.goto(`${server.apiUrl}/console/`);
    expect(page.url()).toBe(`${server.apiUrl}/console/sign-in`);
    const csp = first!.headers()['content-security-policy']!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    await page.fill('#token', 'eat_wrong-token');
    await Promise.all([page.waitForURL('**/console/sign-in'), page.click('button[type=submit]')]);
    await expect(page.textContent('.error')).resolves.toContain('not an admin token');
    expect(await page.content()).not.toMatch(/at \w+ \(|node:internal|Error:/);
    await shot('1-sign-in-refused');
    await page.fill('#token', server.adminToken);
    await Promise.all([page.waitForURL('**/console/'), page.click('button[type=submit]')]);
    expect(page.url()).not.toContain(server.adminToken.slice(4, 20));
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === '__Host-enrolld-console')!;
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
    expect(session.value).not.toContain(server.adminToken.slice(4));

    // Fleet search by prefix: the three devices, the planted profile shown as text.
    await page.waitForSelector('#fleet-search');
    await page.fill('#fleet-search input[name=prefix]', prefix);
    await page.click('#fleet-search button[type=submit]');
    await page.waitForFunction((p) => document.querySelectorAll('#fleet-table tbody tr').length === 3 && document.querySelector('#fleet-table tbody td a')?.textContent?.startsWith(p), prefix);
    expect(await page.locator('#fleet-table').textContent()).toContain(PLANTED_PROFILE);
    await shot('2-fleet');
    // The environment filter: only the staging environment's device; back to any environment, the three again.
    await page.fill('#fleet-search input[name=prefix]', '');
    await page.selectOption('#fleet-search select[name=env]', staging);
    await page.click('#fleet-search button[type=submit]');
    await page.waitForFunction((id) => document.querySelectorAll('#fleet-table tbody tr').length === 1 && document.querySelector('#fleet-table tbody td a')?.textContent === id, stagingDevice.deviceId);
    await shot('2-fleet-environment');
    await page.fill('#fleet-search input[name=prefix]', prefix);
    await page.selectOption('#fleet-search select[name=env]', '');
    await page.click('#fleet-search button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#fleet-table tbody tr').length === 3);
    // The token batch filter: each device enrolled with a token request of its own, so its batch holds only it.
    const batchOf = async (id: string) => (await server.db.pool.query<{ token_batch: string }>('SELECT token_batch FROM devices WHERE id = $1', [id])).rows[0]!.token_batch;
    const lastBatch = await batchOf(devices[2]!.deviceId);
    await page.fill('#fleet-search input[name=prefix]', '');
    await page.fill('#fleet-search input[name=batch]', lastBatch);
    await page.click('#fleet-search button[type=submit]');
    await page.waitForFunction((id) => document.querySelectorAll('#fleet-table tbody tr').length === 1 && document.querySelector('#fleet-table tbody td a')?.textContent === id, devices[2]!.deviceId);
    await shot('2-fleet-batch');
    await page.fill('#fleet-search input[name=batch]', '');
    await page.fill('#fleet-search input[name=prefix]', prefix);
    await page.click('#fleet-search button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#fleet-table tbody tr').length === 3);

    // The device page of a connected device.
    const victim = devices[0]!;
    const mqttSession = await mustConnect(server.running.mqttsPort, server.rootPem, victim);
    await page.click(`#fleet-table a:text-is("${victim.deviceId}")`);
    await page.waitForSelector('#device-id');
    await page.waitForFunction(() => document.querySelector('#device-connected')?.textContent === 'yes');
    await expect(page.locator('#timeline li').count()).resolves.toBe(1);
    await shot('3-device');

    // Revoke with a reason, a planted comment and the confirmation step; the live session is cut.
    await page.selectOption('#revoke-form select[name=reason]', 'keyCompromise');
    await page.fill('#revoke-form textarea[name=comment]', PLANTED_COMMENT);
    await page.click('#revoke');
    await page.waitForSelector('#confirm-revoke');
    await page.click('#confirm-revoke');
    await page.waitForFunction(() => document.querySelector('#revoke-result')?.textContent === 'Revoked 1 certificate(s).');
    await mqttSession.closed;
    await page.waitForFunction(() => document.querySelector('#device-status')?.textContent === 'revoked' && document.querySelector('#device-connected')?.textContent === 'no');
    await expect(page.locator('blockquote.comment').first().textContent()).resolves.toBe(PLANTED_COMMENT);
    await expect(page.locator('#timeline img, #timeline b').count()).resolves.toBe(0);
    await shot('4-device-revoked');

    // Live events: the revocation and the cut; then the revoked certificate tries again and stands out.
    await page.click('#nav-events');
    await page.waitForSelector(`li.event[data-type=revoked]:has-text("${victim.deviceId}")`);
    await page.waitForSelector(`li.event[data-type=disconnected]:has-text("${victim.deviceId}")`);
    const retry = await connectWith(server.running.mqttsPort, server.rootPem, victim);
    expect(retry).toMatchObject({ ok: false, code: 5 });
    const alarm = page.locator(`li.event-alarm:has-text("${victim.deviceId}")`);
    await alarm.waitFor();
    await expect(alarm.textContent()).resolves.toContain('Revoked certificate attempted connection');
    await expect(page.locator('.banner-alarm').textContent()).resolves.toContain('revoked certificate');
    // Another broker process's reconnect loop, as its relay sends it over Postgres (coalesced: one event, a count).
    const fromAnotherNode = { origin: 'another-broker', events: [{ type: 'refused', deviceId: victim.deviceId, serial: victim.serial, reason: 'revoked', at: new Date().toISOString(), count: 4 }] };
    await server.db.pool.query('SELECT pg_notify($1, $2)', ['enrolld_fleet_events', JSON.stringify(fromAnotherNode)]);
    await page.locator(`li.event-alarm:has-text("×4")`).waitFor();
    await expect(page.locator('.banner-alarm').textContent()).resolves.toContain('5 attempt(s)');
    await expect(page.locator('#nav-events .count-alarm').textContent()).resolves.toBe('5');
    await shot('5-live-events');

    // Bulk dry run over the prefix: the two left.
    await page.click('#nav-bulk');
    await page.fill('#bulk-form input[name=prefix]', prefix);
    await page.click('#dry-run');
    await page.waitForFunction(() => document.querySelector('#dry-run-count')?.textContent === '2');
    await shot('6-bulk-dry-run');
    // By token batch alone: the one device of that batch.
    await page.fill('#bulk-form input[name=prefix]', '');
    await page.fill('#bulk-form input[name=tokenBatch]', lastBatch);
    await page.click('#dry-run');
    await page.waitForFunction((id) => document.querySelector('#dry-run-count')?.textContent === '1' && document.querySelector('#dry-run-result td')?.textContent === id, devices[2]!.deviceId);
    await shot('6-bulk-batch');

    // Tokens: one token, downloaded once as CSV.
    await page.click('#nav-tokens');
    await page.fill('#token-form input[name=deviceId]', `${prefix}new`);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#token-form button[type=submit]')]);
    const csv = await new Promise<string>((resolve, reject) => {
      void download.createReadStream().then((stream) => {
        let text = '';
        stream.on('data', (c: Buffer) => (text += c.toString()));
        stream.on('end', () => resolve(text));
        stream.on('error', reject);
      });
    });
    expect(csv).toMatch(new RegExp(`^${CREATED_TOKEN_CSV_COLUMNS.join(',')}\\n${prefix}new,ebt_[A-Za-z0-9_-]{43},`));
    await page.waitForSelector('#token-result');
    await shot('7-tokens');

    // Charts: both drawn by uPlot.
    await page.click('#nav-charts');
    await page.waitForSelector('#chart-expiring canvas');
    await page.waitForSelector('#chart-connected canvas');
    await shot('8-charts');

    await page.click('#nav-audit');
    await page.waitForSelector('table.audit tbody tr');
    expect(await page.locator('table.audit').textContent()).toContain('console.signed-in');
    await shot('9-audit');

    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(problems).toEqual([]);
  }, 120_000);

  it('a state-changing request with the session cookie but without the CSRF token is refused', async () => {
    const res = await page.evaluate(async (id) => {
      const r = await fetch(`/v1/admin/devices/${id}/revoke`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      return r.status;
    }, devices[2]!.deviceId);
    expect(res).toBe(403);
    const { rows } = await server.db.pool.query('SELECT count(*)::int AS n FROM certificates WHERE device_id = $1 AND revoked_at IS NULL', [devices[2]!.deviceId]);
    expect(rows[0].n).toBe(1);
  });

  it('a browser with an admin client certificate signs in by it, without a token, until the admin is revoked', async () => {
    const admin = await createAdmin(server, uniqueDeviceId('console-admin'), 'operator');
    const context = await browser.newContext({
      ignoreHTTPSErrors: true,
      viewport: { width: 1280, height: 900 },
      clientCertificates: [{ origin: new URL(server.apiUrl).origin, cert: Buffer.from(admin.clientChainPem), key: Buffer.from(admin.keyPem) }],
    });
    const certPage = await context.newPage();
    const errors: string[] = [];
    certPage.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
    try {
      // Opening the console signs in: no sign-in page on the way, the header names the admin and its role.
      await certPage.goto(`${server.apiUrl}/console/`);
      expect(certPage.url()).toBe(`${server.apiUrl}/console/`);
      await certPage.waitForSelector('#fleet-search');
      await expect(certPage.textContent('#signed-in-as')).resolves.toBe(`cert:${admin.deviceId} · operator`);
      const session = (await context.cookies()).find((c) => c.name === '__Host-enrolld-console');
      expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: 'Strict' });
      await certPage.screenshot({ path: path.join(SHOTS, '10-signed-in-by-certificate.png'), fullPage: true });
      const signIns = await httpsRequest(`${server.apiUrl}${routes.adminAudit}?action=console.signed-in&actor=cert:${admin.deviceId}`, server.rootPem, { headers: { authorization: `Bearer ${server.adminToken}` } });
      expect(signIns.json<AuditListResponse>().events.map((e) => e.detail)).toEqual([{ credential: 'certificate' }]);

      // Signed out, the sign-in page offers the certificate (and the token form) instead of signing in again at once.
      await Promise.all([certPage.waitForURL('**/console/sign-in'), certPage.click('.signout button[type=submit]')]);
      await expect(certPage.textContent('#certificate-sign-in')).resolves.toContain(`Continue as cert:${admin.deviceId}`);

      // Revoked, the certificate signs in no more, and the page says why.
      const revoked = await httpsRequest(server.apiUrl + routes.adminAdminRevoke(admin.deviceId), server.rootPem, { method: 'POST', headers: { authorization: `Bearer ${server.adminToken}` } });
      expect(revoked.status).toBe(200);
      await certPage.goto(`${server.apiUrl}/console/`);
      expect(certPage.url()).toBe(`${server.apiUrl}/console/sign-in`);
      await expect(certPage.textContent('#certificate-refused')).resolves.toContain('is revoked');
      await certPage.screenshot({ path: path.join(SHOTS, '11-certificate-revoked.png'), fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
