// The fleet search and aggregates (core/src/fleet/ports.ts). One fixed statement per read; optional filters are
// switched on by their parameters, so a page costs an index walk by id from the keyset position. `connected` is decided
// here, from the presence rows of live broker nodes, so a filtered page is a full page.
import type pg from 'pg';
import type { FleetQuery, FleetStore } from '@enrolld/core/fleet/ports.js';
import { DEVICE_SELECT, toSummary, type DeviceRow } from './device-store.js';
import { CONNECTED_NOW } from './presence-store.js';

// `id >= prefix` bounds the index walk from below: every id that starts with the prefix sorts at or after it.
const SEARCH = `${DEVICE_SELECT}
   WHERE ($1::text IS NULL OR d.id > $1)
     AND ($2::text IS NULL OR (d.id >= $2 AND starts_with(d.id, $2)))
     AND ($3::text IS NULL OR d.profile = $3)
     AND ($4::text[] IS NULL OR d.id = ANY($4))
     AND ($5::text IS NULL OR COALESCE(cur.status, 'pending') = $5)
     AND ($6::int IS NULL OR (cur.status = 'active' AND cur.not_after <= now() + make_interval(days => $6)))
     AND ($8::text IS NULL OR d.environment = $8)
     AND ($9::uuid IS NULL OR d.token_batch = $9)
     AND ($10::boolean IS NULL OR $10 = ${CONNECTED_NOW('d.id')})
   ORDER BY d.id LIMIT $7`;

export function createPgFleetStore(pool: pg.Pool): FleetStore {
  return {
    async search(q: FleetQuery) {
      const { rows } = await pool.query<DeviceRow>(SEARCH, [
        q.after ?? null,
        q.prefix ?? null,
        q.profile ?? null,
        q.deviceIds ?? null,
        q.status ?? null,
        q.expiresWithinDays ?? null,
        q.limit,
        q.environment ?? null,
        q.tokenBatch ?? null,
        q.connected ?? null,
      ]);
      return rows.map(toSummary);
    },

    async expiring(windowsSeconds) {
      const { rows } = await pool.query<{ within: number; expiring: string; without_successor: string }>(
        `SELECT w.within,
                count(c.serial) FILTER (WHERE c.not_after <= now() + make_interval(secs => w.within)) AS expiring,
                count(c.serial) FILTER (WHERE c.not_after <= now() + make_interval(secs => w.within) AND NOT EXISTS (
                  SELECT 1 FROM certificates s WHERE s.predecessor_serial = c.serial AND s.der IS NOT NULL)) AS without_successor
           FROM unnest($1::int[]) AS w(within)
           LEFT JOIN certificates c ON c.revoked_at IS NULL AND c.der IS NOT NULL AND c.not_after > now()
                                   AND c.not_after <= now() + make_interval(secs => w.within)
          GROUP BY w.within ORDER BY w.within`,
        [windowsSeconds],
      );
      return rows.map((r) => ({ withinSeconds: r.within, expiring: Number(r.expiring), withoutSuccessor: Number(r.without_successor) }));
    },

    async expiringPerDay(days) {
      const { rows } = await pool.query<{ day: string; count: string }>(
        `SELECT to_char(date_trunc('day', not_after AT TIME ZONE 'UTC'), 'YYYY-MM-DD') AS day, count(*) AS count
           FROM certificates
          WHERE revoked_at IS NULL AND der IS NOT NULL AND not_after > now()
            AND not_after < date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + make_interval(days => $1)
          GROUP BY 1 ORDER BY 1`,
        [days],
      );
      return rows.map((r) => ({ day: r.day, count: Number(r.count) }));
    },

    async latestCrlTimes() {
      const { rows } = await pool.query<{ this_update: Date; next_update: Date }>('SELECT this_update, next_update FROM crls ORDER BY crl_number DESC LIMIT 1');
      return rows[0] ? { thisUpdate: rows[0].this_update, nextUpdate: rows[0].next_update } : undefined;
    },
  };
}
