// Profiles on the broker (docs/architecture.md §6): every profile's ACL and access window compiled once when it loads,
// kept current from the profile NOTIFY feed, and applied live. When a profile changes, the sessions that use it keep
// their connection: their next packets meet the new rules, subscriptions the new rules no longer grant are removed at
// once (logged and counted), so nothing more is delivered on them, and their session timer is re-evaluated against
// the new access window (closed at once if it is closed now). A feed that reconnects reloads every profile.
import type { Aedes, Client } from 'aedes';
import type { Logger } from 'pino';
import type { ProfileAcls, ProfileChange, ProfileFeed, ProfileSource } from '@enrolld/core/acl/profile-acls.js';
import { dropSubscriptions, subscribedFilters } from './aedes-internals.js';
import type { BrokerMetrics } from './broker-metrics.js';
import type { SessionExpiry } from './session-expiry.js';
import type { SessionIndex } from './session-index.js';

export interface ProfileEnforcementDeps {
  source: ProfileSource;
  feed: ProfileFeed;
  /** The catalog this enforcement loads and keeps current (admission and the session timers read it too). */
  acls: ProfileAcls;
  /** The sessions' timers: a changed access window moves them. */
  expiry: Pick<SessionExpiry, 'recheck'>;
  sessions: Pick<SessionIndex, 'clientsOfProfile' | 'liveSessionOf'>;
  aedes(): Aedes | undefined;
  metrics: Pick<BrokerMetrics, 'subscriptionsRemoved'>;
  log: Logger;
}

/** While the first load fails (the store unreachable at start), it is retried this often. */
const RETRY_LOAD_MS = 1000;

export function createProfileEnforcement(deps: ProfileEnforcementDeps) {
  const { source, sessions, acls, log } = deps;
  let loaded = false;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  /** Changes applied one after another, so two quick updates of one profile end on the newest. */
  let queue: Promise<void> = Promise.resolve();

  async function reevaluate(change: ProfileChange): Promise<void> {
    const aedes = deps.aedes();
    const clients = sessions.clientsOfProfile(change.name);
    log.info({ profile: change.name, version: change.current?.version ?? null, sessions: clients.length }, 'profile changed; re-evaluating its sessions');
    if (!aedes) return;
    await Promise.all(clients.map((client) => reevaluateClient(aedes, client, change)));
  }

  async function reevaluateClient(aedes: Aedes, client: Client, change: ProfileChange): Promise<void> {
    const session = sessions.liveSessionOf(client);
    if (!session) return;
    deps.expiry.recheck(client);
    if (client.conn.destroyed) return;
    const { deviceId: id, group } = session.identity;
    const lost = subscribedFilters(client).filter((filter) => !change.current?.acl.canSubscribe(id, filter, group));
    if (lost.length === 0) return;
    try {
      await dropSubscriptions(aedes, client, lost);
      deps.metrics.subscriptionsRemoved(lost.length);
      log.info({ id, profile: change.name, version: change.current?.version ?? null, filters: lost }, 'subscriptions removed: the profile no longer grants them');
    } catch (error) {
      // The client is closing: its subscriptions go with it.
      log.debug({ id, err: (error as Error).message }, 'removing subscriptions failed');
    }
  }

  function enqueue(work: () => Promise<ProfileChange[]>): Promise<void> {
    queue = queue
      .then(work)
      .then((changes) => Promise.all(changes.map(reevaluate)))
      .then(() => undefined)
      .catch((error: unknown) => log.warn({ err: (error as Error).message }, 'profile reload failed; the previous rules stay in force'));
    return queue;
  }

  const reloadAll = () =>
    enqueue(async () => {
      const changes = acls.load(await source.list());
      loaded = true;
      return changes;
    });

  /** The first load, retried until it succeeds; CONNECTs get CONNACK 3 until then (admission.ts). */
  async function firstLoad(): Promise<void> {
    try {
      acls.load(await source.list());
      loaded = true;
    } catch (error) {
      if (stopped) return;
      if (retryTimer === undefined) log.warn({ err: (error as Error).message }, 'profiles not loaded; refusing CONNECTs (CONNACK 3) until they are');
      retryTimer = setTimeout(() => void firstLoad(), RETRY_LOAD_MS);
      return;
    }
    retryTimer = undefined;
  }
  const reloadOne = (name: string) =>
    enqueue(async () => {
      const change = acls.apply(name, await source.get(name));
      return change ? [change] : [];
    });

  let started = false;
  return {
    /** Loads every profile before the broker listens, then follows changes. */
    async start(): Promise<void> {
      await firstLoad();
      await deps.feed.start({
        onChanged: (name) => void reloadOne(name),
        onConnection: (connected, error) => {
          if (connected) void reloadAll();
          else log.warn({ err: error instanceof Error ? error.message : String(error) }, 'profile feed lost; reconnecting');
        },
      });
      started = true;
    },
    async stop(): Promise<void> {
      stopped = true;
      clearTimeout(retryTimer);
      retryTimer = undefined;
      if (started) await deps.feed.stop();
      started = false;
      await queue;
    },
    loaded: () => loaded,
    /** Resolves once every change heard so far is applied (tests). */
    settled: () => queue,
    /** The version of a profile this broker enforces (tests and diagnostics). */
    versionOf: (name: string) => acls.get(name)?.version,
  };
}

export type ProfileEnforcement = ReturnType<typeof createProfileEnforcement>;
