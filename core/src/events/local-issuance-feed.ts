// The in-process issuance path: the enrollment and renewal use cases and a broker in the same process (`enrolld up`).
// Each certificate stored is handed to this feed before the answer goes out, so the device may connect at once, and
// the broker's registry already holds it (docs/architecture.md §7). The NOTIFY feed and the issue-seq resync deliver
// the same certificate again with its number; the registry merges them.
import type { IssuancePublisher, IssuedCertificateEvent, RegistryFeed, RegistryFeedHandlers } from '../admission/ports.js';

export interface LocalIssuanceFeed extends RegistryFeed, IssuancePublisher {}

export function createLocalIssuanceFeed(): LocalIssuanceFeed {
  let handlers: RegistryFeedHandlers | undefined;
  return {
    async start(next) {
      if (handlers) throw new Error('local issuance feed already started');
      handlers = next;
    },
    async stop() {
      handlers = undefined;
    },
    issued(event: IssuedCertificateEvent) {
      // Nobody listening (before start, after stop): dropped. The sync's snapshot or resync reads it from the store.
      handlers?.onIssued(event);
    },
  };
}
