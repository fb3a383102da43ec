// The fleet over HTTP, for the console and scripts (docs/architecture.md §9b): the keyset search with cluster-wide presence, one
// device with its lineage, presence and audit events, the chart series, and live events over SSE.
import { Router } from 'express';
import { describeIssues, deviceIdSchema, fleetQuerySchema, routes, type FleetCharts, type FleetDeviceDetail, type FleetPage } from '@enrolld/protocol';
import type { AuditTrail } from '@enrolld/core/audit/ports.js';
import { EnrollError } from '@enrolld/core/errors.js';
import type { FleetEvents } from '@enrolld/core/fleet/live-events.js';
import type { FleetStore, PresenceStore } from '@enrolld/core/fleet/ports.js';
import type { DeviceStore } from '@enrolld/core/ports.js';
import { auditEventBody } from './audit-routes.js';

export interface FleetRoutesDeps {
  fleet: FleetStore;
  devices: Pick<DeviceStore, 'get'>;
  audit: Pick<AuditTrail, 'list'>;
  events: FleetEvents;
  /** Cluster-wide presence (every broker node's rows). */
  presence: Pick<PresenceStore, 'presenceOf'>;
  /** Connected devices over time, sampled from the presence store. */
  connectedSeries: () => Promise<Array<{ at: number; connected: number }>>;
}

/** Today and the next 30 days: a certificate of the default 30-day lifetime issued today falls on the last. */
const CHART_DAYS = 31;
/** An idle SSE stream gets a comment this often, so proxies keep it open and a dead peer is noticed. */
const SSE_HEARTBEAT_MS = 15_000;

/** Mounted behind requireAdmin. */
export function fleetRoutes(deps: FleetRoutesDeps): Router {
  const router = Router();

  router.get(routes.adminFleet, async (req, res) => {
    const parsed = fleetQuerySchema.safeParse(req.query);
    if (!parsed.success) throw new EnrollError('bad-request', describeIssues(parsed.error, 'query'));
    const q = parsed.data;
    // The connected filter is part of the search statement, so a filtered page is a full page.
    const { env, batch, connected, ...rest } = q;
    const devices = await deps.fleet.search({ ...rest, environment: env, tokenBatch: batch, connected: connected === undefined ? undefined : connected === 'true' });
    const presence = devices.length > 0 ? await deps.presence.presenceOf(devices.map((d) => d.id)) : new Map();
    const last = devices.at(-1);
    const page: FleetPage = {
      devices: devices.map((d) => ({ ...d, connected: presence.get(d.id)?.connected ?? false, lastSeen: presence.get(d.id)?.lastSeen?.toISOString() ?? null })),
      next: devices.length === q.limit && last ? last.id : null,
    };
    res.json(page);
  });

  router.get(`${routes.adminFleet}/devices/:id`, async (req, res) => {
    const id = deviceIdSchema.safeParse(req.params.id);
    if (!id.success) throw new EnrollError('bad-request', `"${String(req.params.id)}" is not a valid device id`);
    const [device, events, presence] = await Promise.all([
      deps.devices.get(id.data),
      deps.audit.list({ deviceId: id.data, limit: 200 }),
      deps.presence.presenceOf([id.data]).then((p) => p.get(id.data)),
    ]);
    if (!device) throw new EnrollError('not-found', `no device ${id.data}`);
    const detail: FleetDeviceDetail = {
      ...device,
      connected: presence?.connected ?? false,
      lastSeen: presence?.lastSeen?.toISOString() ?? null,
      events: events.map(auditEventBody),
    };
    res.json(detail);
  });

  router.get(routes.adminFleetCharts, async (_req, res) => {
    const counts = new Map((await deps.fleet.expiringPerDay(CHART_DAYS)).map((d) => [d.day, d.count]));
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const expiringPerDay = Array.from({ length: CHART_DAYS }, (_, i) => {
      const day = new Date(today + i * 86_400_000).toISOString().slice(0, 10);
      return { day, count: counts.get(day) ?? 0 };
    });
    res.json({ expiringPerDay, connected: await deps.connectedSeries() } satisfies FleetCharts);
  });

  // Server-sent events (HTML Living Standard §9.2): one `data:` line of JSON per fleet event, named by its type.
  router.get(routes.adminEvents, (req, res) => {
    // A GET with a body is not an event stream request (and a stream answered to it would never end).
    if (Number(req.get('content-length') ?? 0) > 0 || req.get('transfer-encoding') !== undefined) {
      throw new EnrollError('bad-request', 'an event stream request carries no body');
    }
    // The client may have gone while the admin check ran (or its connection broke on a malformed request): its close
    // has been emitted already, and a stream started now would never be ended.
    if (req.socket.destroyed) return;
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': enrolld fleet events\n\n');
    const unsubscribe = deps.events.subscribe((event) => {
      res.write(`event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`);
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), SSE_HEARTBEAT_MS);
    // The response's close: its connection ended (an event stream never finishes on its own).
    res.once('close', () => {
      clearInterval(heartbeat);
      unsubscribe();
    });
  });

  return router;
}
