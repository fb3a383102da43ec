// The admitted device sessions of this broker: what each client was admitted as, and which clients use a certificate
// serial, so a revocation finds the sessions to cut without a scan. A client leaves the serial index when its socket
// closes; the identity stays attached to the client object until it is collected.
import type { Client } from 'aedes';
import type { PeerIdentity } from './peer-identity.js';

export interface SessionInfo {
  identity: PeerIdentity;
  /** Set by the cut: the socket is being destroyed, and nothing more is routed to or from the session. */
  revoked: boolean;
}

export interface SessionIndex {
  /** Records a session admitted at CONNECT. */
  admit(client: Client, identity: PeerIdentity): void;
  sessionOf(client: Client | null): SessionInfo | undefined;
  /** The session, unless it was never admitted or has been revoked. */
  liveSessionOf(client: Client | null): SessionInfo | undefined;
  /** The clients whose certificate has this serial. */
  clientsOf(serial: string): Client[];
  /** Any client with this serial, in any notation, whose socket has not closed yet. */
  hasSession(serial: string): boolean;
}

export function createSessionIndex(): SessionIndex {
  const sessions = new WeakMap<Client, SessionInfo>();
  const bySerial = new Map<string, Set<Client>>();

  function sessionOf(client: Client | null): SessionInfo | undefined {
    return client ? sessions.get(client) : undefined;
  }

  return {
    admit(client, identity) {
      sessions.set(client, { identity, revoked: false });
      let clients = bySerial.get(identity.serial);
      if (!clients) {
        clients = new Set();
        bySerial.set(identity.serial, clients);
      }
      clients.add(client);
      client.conn.once('close', () => {
        const current = bySerial.get(identity.serial);
        current?.delete(client);
        if (current && current.size === 0) bySerial.delete(identity.serial);
      });
    },
    sessionOf,
    liveSessionOf(client) {
      const info = sessionOf(client);
      return info && !info.revoked ? info : undefined;
    },
    clientsOf(serial) {
      return [...(bySerial.get(serial) ?? [])];
    },
    hasSession(serial) {
      return (bySerial.get(serial)?.size ?? 0) > 0;
    },
  };
}
