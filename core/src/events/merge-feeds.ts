// One feed out of several sources of the same events (the Postgres NOTIFY feed plus the in-process feeds of
// revocation and issuance). Only the primary reports connection state: it is the one whose loss can hide events, so
// its reconnect is what triggers a resync. The others cannot lose events while the process is alive.
import type { RevocationFeedHandlers } from '../revocation/ports.js';

export interface EventFeed<H extends RevocationFeedHandlers> {
  start(handlers: H): Promise<void>;
  stop(): Promise<void>;
}

export function mergeRevocationFeeds<H extends RevocationFeedHandlers>(primary: EventFeed<H>, ...others: Array<EventFeed<H>>): EventFeed<H> {
  return {
    async start(handlers) {
      const quiet: H = { ...handlers, onConnection: () => undefined };
      await Promise.all(others.map((feed) => feed.start(quiet)));
      try {
        await primary.start(handlers);
      } catch (error) {
        await Promise.all(others.map((feed) => feed.stop()));
        throw error;
      }
    },
    async stop() {
      await Promise.all([primary, ...others].map((feed) => feed.stop()));
    },
  };
}
