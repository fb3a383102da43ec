// One RevocationFeed out of several sources of the same events (the Postgres NOTIFY feed plus the in-process feed).
// Only the primary reports connection state: it is the one whose loss can hide events, so its reconnect is what
// triggers a resync. The others cannot lose events while the process is alive.
import type { RevocationFeed } from '../revocation/ports.js';

export function mergeRevocationFeeds(primary: RevocationFeed, ...others: RevocationFeed[]): RevocationFeed {
  return {
    async start(handlers) {
      const quiet = { onRevocation: handlers.onRevocation, onCrl: handlers.onCrl, onConnection: () => undefined };
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
