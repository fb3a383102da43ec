// The fleet event bus over Postgres NOTIFY (core/src/fleet/ports.ts FleetEventBus; docs/architecture.md §9b). A batch
// is one NOTIFY payload of JSON (ids, serials, reasons and times: nothing secret); all of a flush's batches go in one
// statement. A payload that does not parse as a batch is ignored: anyone who can NOTIFY can write on the channel.
import type pg from 'pg';
import type { FleetEvent } from '@enrolld/core/fleet/live-events.js';
import type { FleetEventBatch, FleetEventBus } from '@enrolld/core/fleet/ports.js';
import { createPgListener } from './pg-listener.js';

export const FLEET_EVENTS_CHANNEL = 'enrolld_fleet_events';

const TYPES: ReadonlySet<string> = new Set<FleetEvent['type']>(['enrolled', 'renewed', 'revoked', 'connected', 'disconnected', 'refused']);

const isText = (v: unknown, max = 200): v is string => typeof v === 'string' && v.length <= max;
const isTextOrNull = (v: unknown): v is string | null => v === null || isText(v);

function parseEvent(value: unknown): FleetEvent | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const e = value as Record<string, unknown>;
  if (!TYPES.has(e.type as string) || !isText(e.at, 40)) return undefined;
  if (e.count !== undefined && !(Number.isSafeInteger(e.count) && (e.count as number) > 1)) return undefined;
  const count = e.count === undefined ? {} : { count: e.count as number };
  if (e.type === 'refused') {
    if (!isTextOrNull(e.deviceId) || !isTextOrNull(e.serial) || !isText(e.reason)) return undefined;
    return { type: 'refused', deviceId: e.deviceId, serial: e.serial, reason: e.reason, at: e.at, ...count };
  }
  if (!isText(e.deviceId) || !isText(e.serial)) return undefined;
  if (e.type === 'revoked') return isText(e.reason) ? { type: 'revoked', deviceId: e.deviceId, serial: e.serial, reason: e.reason, at: e.at, ...count } : undefined;
  return { type: e.type as 'enrolled' | 'renewed' | 'connected' | 'disconnected', deviceId: e.deviceId, serial: e.serial, at: e.at, ...count };
}

export function parseFleetEventBatch(payload: string): FleetEventBatch | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const { origin, events } = value as Record<string, unknown>;
  if (!isText(origin) || !Array.isArray(events)) return undefined;
  const parsed = events.map(parseEvent);
  return parsed.every((e): e is FleetEvent => e !== undefined) ? { origin, events: parsed } : undefined;
}

export interface PgFleetEventBusOptions {
  pool: pg.Pool;
  /** For the LISTEN connection (a process that only sends opens none). */
  connectionString: string;
  applicationName?: string;
  onConnection?: (connected: boolean, error?: unknown) => void;
}

export function createPgFleetEventBus(options: PgFleetEventBusOptions): FleetEventBus {
  const listener = createPgListener({ connectionString: options.connectionString, channels: [FLEET_EVENTS_CHANNEL], applicationName: options.applicationName ?? 'enrolld-fleet-events' });
  let listening = false;
  return {
    async send(batches) {
      if (batches.length === 0) return;
      await options.pool.query('SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p', [FLEET_EVENTS_CHANNEL, batches.map((b) => JSON.stringify(b))]);
    },
    async listen(onBatch) {
      listening = true;
      await listener.start({
        onNotification: (_channel, payload) => {
          const batch = parseFleetEventBatch(payload);
          if (batch) onBatch(batch);
        },
        onConnection: (connected, error) => options.onConnection?.(connected, error),
      });
    },
    async stop() {
      if (listening) await listener.stop();
      listening = false;
    },
  };
}
