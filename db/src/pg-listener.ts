import pg from 'pg';

export interface PgListenerOptions {
  connectionString: string;
  channels: readonly string[];
  applicationName: string;
  /** Delay before reconnecting after the LISTEN connection dropped. */
  reconnectDelayMs?: number;
}

/** Bound on connecting and on each LISTEN statement: a frozen server makes the attempt fail and retry, never hang. */
const LISTEN_TIMEOUT_MS = 2000;

export interface PgListenerHandlers {
  onNotification(channel: string, payload: string): void;
  /** false when the connection is lost (notifications sent meanwhile are gone), true once listening again. */
  onConnection(connected: boolean, error?: unknown): void;
}

/**
 * LISTEN on a dedicated connection (a pooled one would lose its LISTEN on release), reconnecting after a loss.
 * Postgres delivers NOTIFY only on commit, in commit order, and at most once: a consumer that must not miss an
 * event resyncs from the store when onConnection(true) fires again.
 */
export function createPgListener(options: PgListenerOptions) {
  const reconnectDelayMs = options.reconnectDelayMs ?? 1000;
  let client: pg.Client | undefined;
  let handlers: PgListenerHandlers | undefined;
  let stopped = true;
  let timer: NodeJS.Timeout | undefined;

  function scheduleReconnect(): void {
    if (stopped || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, reconnectDelayMs);
  }

  async function connect(): Promise<void> {
    if (stopped || !handlers) return;
    const h = handlers;
    const c = new pg.Client({
      connectionString: options.connectionString,
      connectionTimeoutMillis: LISTEN_TIMEOUT_MS,
      query_timeout: LISTEN_TIMEOUT_MS,
      application_name: options.applicationName,
      keepAlive: true,
    });
    let lost = false;
    const onLost = (error?: unknown): void => {
      if (lost) return;
      lost = true;
      if (client === c) client = undefined;
      c.removeAllListeners('notification');
      void c.end().catch(() => undefined);
      if (!stopped) {
        h.onConnection(false, error);
        scheduleReconnect();
      }
    };
    c.on('error', onLost);
    c.on('end', () => onLost(new Error('LISTEN connection ended')));
    c.on('notification', (msg) => {
      if (msg.payload) h.onNotification(msg.channel, msg.payload);
    });
    try {
      await c.connect();
      for (const channel of options.channels) await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    } catch (error) {
      onLost(error);
      return;
    }
    if (stopped || lost) {
      await c.end().catch(() => undefined);
      return;
    }
    client = c;
    h.onConnection(true);
  }

  return {
    async start(h: PgListenerHandlers): Promise<void> {
      handlers = h;
      stopped = false;
      await connect();
    },
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners('notification');
        c.removeAllListeners('end');
        c.on('error', () => undefined);
        await c.end().catch(() => undefined);
      }
    },
  };
}
