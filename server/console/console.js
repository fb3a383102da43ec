// The enrolld console: a small preact + htm app over the admin API (/v1/admin/…), signed in by a session cookie.
// Every string from the server is rendered as text (htm/preact escape it); nothing is ever set as HTML.
import { html, render, useEffect, useRef, useState } from './vendor/htm-preact.js';
import uPlot from './vendor/uPlot.esm.js';

const REASONS = ['unspecified', 'keyCompromise', 'cACompromise', 'affiliationChanged', 'superseded', 'cessationOfOperation', 'privilegeWithdrawn', 'aACompromise'];
const STATUSES = ['active', 'pending', 'expired', 'revoked'];

let csrf = '';

async function api(path, { method = 'GET', body, accept = 'application/json' } = {}) {
  const headers = { accept };
  if (method !== 'GET') headers['x-csrf-token'] = csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  if (res.status === 401) {
    location.assign('/console/sign-in');
    throw new Error('signed out');
  }
  if (!res.ok) {
    let detail = `HTTP ${res.status}`;
    try {
      const problem = await res.json();
      detail = problem.detail ?? problem.title ?? detail;
    } catch {
      // not a problem document
    }
    throw new Error(detail);
  }
  return accept === 'application/json' ? res.json() : res.blob();
}

const fmt = (iso) => (iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '—');

// ---- live events: one EventSource for the whole app -------------------------------------------------------------

const live = { events: [], listeners: new Set() };
function startLiveEvents() {
  const source = new EventSource('/v1/admin/events');
  for (const type of ['enrolled', 'renewed', 'revoked', 'connected', 'disconnected', 'refused']) {
    source.addEventListener(type, (message) => {
      live.events.unshift(JSON.parse(message.data));
      live.events.length = Math.min(live.events.length, 500);
      for (const listener of live.listeners) listener();
    });
  }
}
function useLiveEvents() {
  const [, setTick] = useState(0);
  useEffect(() => {
    const listener = () => setTick((t) => t + 1);
    live.listeners.add(listener);
    return () => live.listeners.delete(listener);
  }, []);
  return live.events;
}

/** Attempts with a revoked certificate; an event another node coalesced counts its repeats. */
function revokedAttempts(events) {
  return events.filter((e) => e.type === 'refused' && e.reason === 'revoked').reduce((n, e) => n + (e.count ?? 1), 0);
}

function describeEvent(e) {
  switch (e.type) {
    case 'refused':
      return e.reason === 'revoked' ? 'Revoked certificate attempted connection' : `Connection refused: ${e.reason}`;
    case 'revoked':
      return `Revoked (${e.reason})`;
    case 'enrolled':
      return 'Enrolled';
    case 'renewed':
      return 'Renewed';
    case 'connected':
      return 'Connected';
    case 'disconnected':
      return 'Disconnected';
    default:
      return e.type;
  }
}

function EventRow({ e }) {
  const alarm = e.type === 'refused' && e.reason === 'revoked';
  return html`<li class=${`event event-${e.type}${alarm ? ' event-alarm' : ''}`} data-type=${e.type} data-reason=${e.reason ?? ''}>
    <time>${fmt(e.at)}</time>
    <strong>${describeEvent(e)}</strong>
    ${e.deviceId ? html`<a href=${`#/device/${encodeURIComponent(e.deviceId)}`}>${e.deviceId}</a>` : ''}
    ${e.serial ? html`<code>${e.serial}</code>` : ''}
    ${e.count > 1 ? html`<span class="event-count" title="repeats within half a second, shown once">×${e.count}</span>` : ''}
  </li>`;
}

function EventsPage() {
  const events = useLiveEvents();
  const alarms = revokedAttempts(events);
  return html`<section>
    <h2>Live events</h2>
    ${alarms > 0 ? html`<p class="banner-alarm" role="alert">${alarms} attempt(s) with a revoked certificate</p>` : ''}
    ${events.length === 0 ? html`<p class="muted">Waiting for enrollments, renewals, revocations and refused connections…</p>` : ''}
    <ul class="events" id="events">${events.map((e, i) => html`<${EventRow} key=${i} e=${e} />`)}</ul>
  </section>`;
}

// ---- fleet -------------------------------------------------------------------------------------------------------

function FleetPage() {
  const [filters, setFilters] = useState({ prefix: '', env: '', status: '', profile: '', expiresWithinDays: '', batch: '', connected: '' });
  const [environments, setEnvironments] = useState([]);
  const [page, setPage] = useState(undefined);
  const [cursors, setCursors] = useState([]);
  const [error, setError] = useState('');
  const [elapsed, setElapsed] = useState(undefined);

  async function load(after) {
    const q = new URLSearchParams({ limit: '50' });
    for (const key of ['prefix', 'env', 'status', 'profile', 'expiresWithinDays', 'batch', 'connected']) if (filters[key]) q.set(key, filters[key].trim());
    if (after) q.set('after', after);
    const started = performance.now();
    try {
      setPage(await api(`/v1/admin/fleet?${q}`));
      setElapsed(Math.round(performance.now() - started));
      setError('');
    } catch (e) {
      setError(e.message);
    }
  }
  useEffect(() => {
    void load();
    api('/v1/admin/environments').then((list) => setEnvironments(list.environments.map((e) => e.name)), (e) => setError(e.message));
  }, []);
  const set = (key) => (ev) => setFilters({ ...filters, [key]: ev.target.type === 'checkbox' ? ev.target.checked : ev.target.value });

  return html`<section>
    <h2>Fleet</h2>
    <form class="filters" id="fleet-search" onSubmit=${(ev) => { ev.preventDefault(); setCursors([]); void load(); }}>
      <label>Id prefix <input name="prefix" value=${filters.prefix} onInput=${set('prefix')} /></label>
      <label>Environment <select name="env" value=${filters.env} onChange=${set('env')}>
        <option value="">any</option>${environments.map((name) => html`<option value=${name}>${name}</option>`)}
      </select></label>
      <label>Status <select name="status" value=${filters.status} onChange=${set('status')}>
        <option value="">any</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Profile <input name="profile" value=${filters.profile} onInput=${set('profile')} /></label>
      <label>Expires within (days) <input name="expiresWithinDays" type="number" min="0" value=${filters.expiresWithinDays} onInput=${set('expiresWithinDays')} /></label>
      <label>Token batch <input name="batch" size="36" placeholder="batch id" value=${filters.batch} onInput=${set('batch')} /></label>
      <label>Connected now <select name="connected" value=${filters.connected} onChange=${set('connected')}>
        <option value="">any</option><option value="true">connected</option><option value="false">not connected</option>
      </select></label>
      <button type="submit">Search</button>
    </form>
    ${error ? html`<p class="error">${error}</p>` : ''}
    ${page ? html`<table class="devices" id="fleet-table">
      <thead><tr><th>Device</th><th>Environment</th><th>Status</th><th>Profile</th><th>Connected</th><th>Token batch</th><th>Current serial</th><th>Not after</th></tr></thead>
      <tbody>${page.devices.map((d) => html`<tr>
        <td><a href=${`#/device/${encodeURIComponent(d.id)}`}>${d.id}</a></td>
        <td>${d.environment}</td>
        <td><span class=${`status status-${d.status}`}>${d.status}</span></td>
        <td>${d.profile}</td>
        <td>${d.connected ? html`<span class="badge-on">connected</span>` : d.lastSeen ? `seen ${fmt(d.lastSeen)}` : '—'}</td>
        <td><code title=${d.tokenBatch ?? ''}>${d.tokenBatch ? d.tokenBatch.slice(0, 8) : '—'}</code></td>
        <td><code>${d.currentSerial ?? '—'}</code></td>
        <td>${fmt(d.notAfter)}</td>
      </tr>`)}</tbody>
    </table>
    <p class="pager">
      <span class="muted">${page.devices.length} shown${elapsed !== undefined ? ` · ${elapsed} ms` : ''}</span>
      ${cursors.length > 0 ? html`<button type="button" onClick=${() => { const prev = cursors.slice(0, -1); setCursors(prev); void load(prev.at(-1)); }}>Previous</button>` : ''}
      ${page.next ? html`<button type="button" id="next-page" onClick=${() => { setCursors([...cursors, page.next]); void load(page.next); }}>Next</button>` : ''}
    </p>` : ''}
  </section>`;
}

// ---- device ------------------------------------------------------------------------------------------------------

function timeline(device) {
  const comments = new Map(device.events.filter((e) => e.action === 'certificate.revoked' && e.detail.comment).map((e) => [e.serial, e.detail.comment]));
  const entries = [];
  for (const c of device.certificates) {
    if (c.issuedAt) entries.push({ at: c.issuedAt, kind: c.predecessorSerial ? 'renewed' : 'issued', serial: c.serial, text: c.predecessorSerial ? `renewed (replaces ${c.predecessorSerial})` : 'issued' });
    if (c.revokedAt) {
      const superseded = c.revocationReason === 'superseded';
      entries.push({ at: c.revokedAt, kind: superseded ? 'superseded' : 'revoked', serial: c.serial, text: superseded ? 'superseded' : `revoked: ${c.revocationReason}`, comment: comments.get(c.serial) });
    }
  }
  return entries.sort((a, b) => a.at.localeCompare(b.at));
}

const PRESENCE_REFRESH_MS = 2000;

function DevicePage({ id }) {
  const [device, setDevice] = useState(undefined);
  const [error, setError] = useState('');
  const [reason, setReason] = useState('keyCompromise');
  const [comment, setComment] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [result, setResult] = useState('');
  const events = useLiveEvents();

  async function load() {
    try {
      setDevice(await api(`/v1/admin/fleet/devices/${encodeURIComponent(id)}`));
    } catch (e) {
      setError(e.message);
    }
  }
  useEffect(() => {
    void load();
  }, [id]);
  // A live event about this device (a cut session, a revocation elsewhere) refreshes the page.
  const latest = events.find((e) => e.deviceId === id);
  useEffect(() => {
    if (latest) void load();
  }, [latest]);
  // Presence is cluster-wide (every broker writes it to Postgres within a fraction of a second) while live events are this
  // process's broker's only: read it again every few seconds.
  useEffect(() => {
    const timer = setInterval(() => void load(), PRESENCE_REFRESH_MS);
    return () => clearInterval(timer);
  }, [id]);

  async function revoke() {
    try {
      const answer = await api(`/v1/admin/devices/${encodeURIComponent(id)}/revoke`, { method: 'POST', body: { reason, ...(comment ? { comment } : {}) } });
      setResult(answer.outcome === 'revoked' ? `Revoked ${answer.serials.length} certificate(s).` : 'Nothing left to revoke.');
      setConfirming(false);
      await load();
    } catch (e) {
      setResult(`Revoke failed: ${e.message}`);
    }
  }

  if (error) return html`<section><h2>Device</h2><p class="error">${error}</p></section>`;
  if (!device) return html`<section><p class="loading">Loading…</p></section>`;
  const live = device.certificates.filter((c) => c.status === 'active' || c.status === 'pending').length;
  return html`<section>
    <h2 id="device-id">${device.id}</h2>
    <dl class="facts">
      <dt>Status</dt><dd><span class=${`status status-${device.status}`} id="device-status">${device.status}</span></dd>
      <dt>Environment</dt><dd>${device.environment}</dd>
      <dt>Profile</dt><dd>${device.profile}</dd>
      <dt>Token batch</dt><dd><code id="device-batch">${device.tokenBatch ?? '—'}</code></dd>
      <dt>Connected now</dt><dd id="device-connected">${device.connected ? 'yes' : 'no'}</dd>
      <dt>Last seen</dt><dd>${fmt(device.lastSeen)}</dd>
      <dt>Current serial</dt><dd><code>${device.currentSerial ?? '—'}</code></dd>
    </dl>
    <h3>Lineage</h3>
    <ol class="timeline" id="timeline">${timeline(device).map((t) => html`<li class=${`tl tl-${t.kind}`}>
      <time>${fmt(t.at)}</time> <strong>${t.text}</strong> <code>${t.serial}</code>
      ${t.comment ? html`<blockquote class="comment">${t.comment}</blockquote>` : ''}
    </li>`)}</ol>
    <h3>Revoke</h3>
    ${live === 0 ? html`<p class="muted">No certificate left to revoke.</p>` : html`<form class="revoke" id="revoke-form" onSubmit=${(ev) => { ev.preventDefault(); setConfirming(true); }}>
      <label>Reason <select name="reason" value=${reason} onChange=${(ev) => setReason(ev.target.value)}>
        ${REASONS.map((r) => html`<option value=${r}>${r}</option>`)}
      </select></label>
      <label>Comment <textarea name="comment" maxlength="500" value=${comment} onInput=${(ev) => setComment(ev.target.value)}></textarea></label>
      ${confirming
        ? html`<div class="confirm" role="alertdialog">
            <p>Revoke ${live} certificate(s) of <strong>${device.id}</strong> with reason <strong>${reason}</strong>? Live sessions end at once. This cannot be undone.</p>
            <button type="button" class="danger" id="confirm-revoke" onClick=${revoke}>Confirm revoke</button>
            <button type="button" onClick=${() => setConfirming(false)}>Cancel</button>
          </div>`
        : html`<button type="submit" class="danger" id="revoke">Revoke…</button>`}
    </form>`}
    ${result ? html`<p class="result" id="revoke-result">${result}</p>` : ''}
    <h3>Audit</h3>
    <table class="audit"><tbody>${device.events.map((e) => html`<tr><td>${fmt(e.at)}</td><td>${e.action}</td><td>${e.actor}</td><td><code>${e.serial ?? ''}</code></td><td>${e.detail.comment ?? ''}</td></tr>`)}</tbody></table>
  </section>`;
}

// ---- tokens ------------------------------------------------------------------------------------------------------

function TokensPage() {
  const [mode, setMode] = useState('single');
  const [form, setForm] = useState({ deviceId: '', prefix: '', count: '10', ttl: '', replace: false, afterCompromise: false });
  const [message, setMessage] = useState('');
  const link = useRef(undefined);
  const set = (key) => (ev) => setForm({ ...form, [key]: ev.target.type === 'checkbox' ? ev.target.checked : ev.target.value });

  async function create(ev) {
    ev.preventDefault();
    const body = mode === 'single' ? { deviceId: form.deviceId } : { prefix: form.prefix, count: Number(form.count) };
    if (form.ttl) body.ttlSeconds = Number(form.ttl);
    // Ids that already have certificates need the admin's consent (the server answers 409 without it).
    if (form.replace) body.replace = true;
    if (form.afterCompromise) body.afterCompromise = true;
    try {
      const csv = await api('/v1/admin/tokens', { method: 'POST', body, accept: 'text/csv' });
      // The tokens exist only in this download: the server keeps their hashes, and the page keeps nothing.
      const url = URL.createObjectURL(csv);
      link.current.href = url;
      link.current.download = mode === 'single' ? `token-${form.deviceId}.csv` : `tokens-${form.prefix}.csv`;
      link.current.click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
      // The batch id is the CSV's batchId column (the same on every line): `enrolld revoke --batch` takes it.
      const [header, first] = (await csv.text()).split('\n');
      const batch = first?.split(',')[header.split(',').indexOf('batchId')];
      setMessage(`Created ${mode === 'single' ? 1 : form.count} token(s) in batch ${batch ?? '?'}; the CSV was downloaded once and is not shown again.`);
    } catch (e) {
      setMessage(`Failed: ${e.message}`);
    }
  }

  return html`<section>
    <h2>Bootstrap tokens</h2>
    <p class="tabs">
      <button type="button" class=${mode === 'single' ? 'on' : ''} onClick=${() => setMode('single')}>One device</button>
      <button type="button" class=${mode === 'batch' ? 'on' : ''} onClick=${() => setMode('batch')}>A batch</button>
    </p>
    <form class="filters" id="token-form" onSubmit=${create}>
      ${mode === 'single'
        ? html`<label>Device id <input name="deviceId" required value=${form.deviceId} onInput=${set('deviceId')} /></label>`
        : html`<label>Prefix <input name="prefix" required value=${form.prefix} onInput=${set('prefix')} /></label>
               <label>Count <input name="count" type="number" min="1" max="100000" value=${form.count} onInput=${set('count')} /></label>`}
      <label>Lifetime (seconds, optional) <input name="ttl" type="number" min="1" value=${form.ttl} onInput=${set('ttl')} /></label>
      <label class="check"><input name="replace" type="checkbox" checked=${form.replace} onChange=${set('replace')} /> Replace a live certificate</label>
      <label class="check"><input name="afterCompromise" type="checkbox" checked=${form.afterCompromise} onChange=${set('afterCompromise')} /> Re-enroll after a key compromise</label>
      <button type="submit">Create and download CSV</button>
    </form>
    <a ref=${link} class="hidden">download</a>
    ${message ? html`<p class="result" id="token-result">${message}</p>` : ''}
  </section>`;
}

// ---- bulk revocation ---------------------------------------------------------------------------------------------

function BulkPage() {
  const [sel, setSel] = useState({ prefix: '', profile: '', tokenBatch: '', status: '', issuedBefore: '', issuedAfter: '' });
  const [reason, setReason] = useState('keyCompromise');
  const [preview, setPreview] = useState(undefined);
  const [confirming, setConfirming] = useState(false);
  const [job, setJob] = useState(undefined);
  const [error, setError] = useState('');
  const set = (key) => (ev) => {
    setSel({ ...sel, [key]: ev.target.value });
    setPreview(undefined);
  };
  const selector = () => Object.fromEntries(Object.entries(sel).map(([k, v]) => [k, v.trim()]).filter(([, v]) => v !== ''));

  async function dryRun(ev) {
    ev.preventDefault();
    try {
      setPreview(await api('/v1/admin/revocations', { method: 'POST', body: { selector: selector(), reason, dryRun: true } }));
      setError('');
    } catch (e) {
      setError(e.message);
    }
  }
  async function execute() {
    setConfirming(false);
    try {
      let current = await api('/v1/admin/revocations', { method: 'POST', body: { selector: selector(), reason } });
      setJob(current);
      while (current.status === 'queued' || current.status === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 300));
        current = await api(`/v1/admin/revocations/${current.id}`);
        setJob(current);
      }
    } catch (e) {
      setError(e.message);
    }
  }

  return html`<section>
    <h2>Bulk revocation</h2>
    <form class="filters" id="bulk-form" onSubmit=${dryRun}>
      <label>Id prefix <input name="prefix" value=${sel.prefix} onInput=${set('prefix')} /></label>
      <label>Profile <input name="profile" value=${sel.profile} onInput=${set('profile')} /></label>
      <label>Token batch <input name="tokenBatch" size="36" placeholder="batch id" value=${sel.tokenBatch} onInput=${set('tokenBatch')} /></label>
      <label>Status <select name="status" value=${sel.status} onChange=${set('status')}>
        <option value="">unexpired</option>${['active', 'pending', 'expired'].map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Issued after <input name="issuedAfter" type="datetime-local" value=${sel.issuedAfter} onInput=${set('issuedAfter')} /></label>
      <label>Issued before <input name="issuedBefore" type="datetime-local" value=${sel.issuedBefore} onInput=${set('issuedBefore')} /></label>
      <label>Reason <select name="reason" value=${reason} onChange=${(ev) => setReason(ev.target.value)}>${REASONS.map((r) => html`<option value=${r}>${r}</option>`)}</select></label>
      <button type="submit" id="dry-run">Dry run</button>
    </form>
    ${error ? html`<p class="error">${error}</p>` : ''}
    ${preview ? html`<div class="preview" id="dry-run-result">
      <p><strong id="dry-run-count">${preview.count}</strong> certificate(s) match.</p>
      ${preview.sample.length > 0 ? html`<table><thead><tr><th>Device</th><th>Serial</th></tr></thead><tbody>${preview.sample.map((t) => html`<tr><td>${t.deviceId}</td><td><code>${t.serial}</code></td></tr>`)}</tbody></table>` : ''}
      ${preview.count > 0 && !confirming ? html`<button type="button" class="danger" onClick=${() => setConfirming(true)}>Revoke ${preview.count}…</button>` : ''}
      ${confirming ? html`<div class="confirm" role="alertdialog"><p>Revoke ${preview.count} certificate(s) with reason <strong>${reason}</strong>? Live sessions end at once.</p>
        <button type="button" class="danger" id="confirm-bulk" onClick=${execute}>Confirm</button> <button type="button" onClick=${() => setConfirming(false)}>Cancel</button></div>` : ''}
    </div>` : ''}
    ${job ? html`<div class="job" id="bulk-job">
      <progress max=${Math.max(job.total, 1)} value=${job.total === 0 ? 1 : job.done}></progress>
      <span>${job.done}/${job.total} done, ${job.revoked} revoked · ${job.status}</span>
    </div>` : ''}
  </section>`;
}

// ---- charts ------------------------------------------------------------------------------------------------------

function Chart({ id, title, data, options }) {
  const box = useRef(undefined);
  useEffect(() => {
    if (!data) return undefined;
    const plot = new uPlot({ title, width: Math.min(box.current.clientWidth || 800, 1000), height: 260, ...options }, data, box.current);
    return () => plot.destroy();
  }, [data]);
  return html`<div class="chart" id=${id} ref=${box}></div>`;
}

function ChartsPage() {
  const [charts, setCharts] = useState(undefined);
  const [error, setError] = useState('');
  useEffect(() => {
    const load = () => api('/v1/admin/fleet/charts').then(setCharts, (e) => setError(e.message));
    void load();
    const timer = setInterval(load, 10_000);
    return () => clearInterval(timer);
  }, []);
  if (error) return html`<section><p class="error">${error}</p></section>`;
  if (!charts) return html`<section><p class="loading">Loading…</p></section>`;
  const days = charts.expiringPerDay.map((d) => Date.parse(`${d.day}T00:00:00Z`) / 1000);
  const expiring = [days, charts.expiringPerDay.map((d) => d.count)];
  const connected = [charts.connected.map((p) => p.at / 1000), charts.connected.map((p) => p.connected)];
  return html`<section>
    <h2>Charts</h2>
    <${Chart} id="chart-expiring" title="Certificates expiring per day (today and the next 30 days)" data=${expiring}
      options=${{ series: [{}, { label: 'expiring', stroke: '#b45309', fill: 'rgba(180,83,9,0.35)', points: { show: false }, paths: uPlot.paths.bars({ size: [0.8] }) }], scales: { x: { time: true } } }} />
    <${Chart} id="chart-connected" title="Connected devices" data=${connected}
      options=${{ series: [{}, { label: 'connected', stroke: '#1d4ed8', width: 2, paths: uPlot.paths.stepped({ align: 1 }) }] }} />
  </section>`;
}

// ---- audit -------------------------------------------------------------------------------------------------------

function AuditPage() {
  const [filters, setFilters] = useState({ action: '', deviceId: '' });
  const [page, setPage] = useState(undefined);
  const [verify, setVerify] = useState(undefined);
  const [error, setError] = useState('');
  async function load(before) {
    const q = new URLSearchParams({ limit: '50' });
    if (filters.action) q.set('action', filters.action);
    if (filters.deviceId) q.set('deviceId', filters.deviceId);
    if (before) q.set('before', String(before));
    try {
      setPage(await api(`/v1/admin/audit?${q}`));
    } catch (e) {
      setError(e.message);
    }
  }
  useEffect(() => {
    void load();
  }, []);
  return html`<section>
    <h2>Audit trail</h2>
    <form class="filters" onSubmit=${(ev) => { ev.preventDefault(); void load(); }}>
      <label>Action <input value=${filters.action} onInput=${(ev) => setFilters({ ...filters, action: ev.target.value })} /></label>
      <label>Device <input value=${filters.deviceId} onInput=${(ev) => setFilters({ ...filters, deviceId: ev.target.value })} /></label>
      <button type="submit">Filter</button>
      <button type="button" onClick=${() => api('/v1/admin/audit/verify').then(setVerify, (e) => setError(e.message))}>Verify chain</button>
    </form>
    ${verify ? html`<p class=${verify.ok ? 'result' : 'error'}>${verify.ok ? `Chain intact: ${verify.rows} rows.` : verify.firstBreak.message}</p>` : ''}
    ${error ? html`<p class="error">${error}</p>` : ''}
    ${page ? html`<table class="audit"><thead><tr><th>#</th><th>At</th><th>Action</th><th>Actor</th><th>Device</th><th>Detail</th></tr></thead>
      <tbody>${page.events.map((e) => html`<tr><td>${e.seq}</td><td>${fmt(e.at)}</td><td>${e.action}</td><td>${e.actor}</td><td>${e.deviceId ?? ''}</td><td><code>${JSON.stringify(e.detail)}</code></td></tr>`)}</tbody></table>
      ${page.next ? html`<button type="button" onClick=${() => load(page.next)}>Older</button>` : ''}` : ''}
  </section>`;
}

// ---- shell -------------------------------------------------------------------------------------------------------

function route() {
  const hash = location.hash.replace(/^#\/?/, '');
  const [page, ...rest] = hash.split('/');
  return { page: page || 'fleet', arg: decodeURIComponent(rest.join('/')) };
}

function App({ admin, role }) {
  const [where, setWhere] = useState(route());
  const events = useLiveEvents();
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const alarms = revokedAttempts(events);
  const nav = [['fleet', 'Fleet'], ['tokens', 'Tokens'], ['bulk', 'Bulk revoke'], ['events', 'Live events'], ['charts', 'Charts'], ['audit', 'Audit']];
  return html`<header class="top">
      <h1>enrolld</h1>
      <nav>${nav.map(([id, label]) => html`<a href=${`#/${id}`} class=${where.page === id ? 'on' : ''} id=${`nav-${id}`}>${label}${id === 'events' && alarms > 0 ? html` <span class="count-alarm">${alarms}</span>` : ''}</a>`)}</nav>
      <form method="post" action="/console/sign-out" class="signout"><span class="muted" id="signed-in-as">${admin} · ${role}</span> <button type="submit">Sign out</button></form>
    </header>
    <main>
      ${where.page === 'fleet' ? html`<${FleetPage} />` : ''}
      ${where.page === 'device' ? html`<${DevicePage} id=${where.arg} />` : ''}
      ${where.page === 'tokens' ? html`<${TokensPage} />` : ''}
      ${where.page === 'bulk' ? html`<${BulkPage} />` : ''}
      ${where.page === 'events' ? html`<${EventsPage} />` : ''}
      ${where.page === 'charts' ? html`<${ChartsPage} />` : ''}
      ${where.page === 'audit' ? html`<${AuditPage} />` : ''}
    </main>`;
}

const session = await fetch('/console/session', { credentials: 'same-origin' });
if (session.status !== 200) {
  location.assign('/console/sign-in');
} else {
  const { admin, role, csrf: token } = await session.json();
  csrf = token;
  startLiveEvents();
  const root = document.getElementById('app');
  root.textContent = ''; // the server's "Loading…" placeholder
  render(html`<${App} admin=${admin} role=${role} />`, root);
}
