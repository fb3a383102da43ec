// The admitted sessions of this broker (devices and services): what each client was admitted as, and which clients use
// a certificate serial or a profile, so a revocation or a profile change finds its sessions without a scan. A client leaves the serial index when its socket
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
  /** The live clients whose certificate names this profile. */
  clientsOfProfile(profile: string): Client[];
  /** Any client with this serial, in any notation, whose socket has not closed yet. */
  hasSession(serial: string): boolean;
}

export function createSessionIndex(): SessionIndex {
  const sessions = new WeakMap<Client, SessionInfo>();
  const bySerial = new Map<string, Set<Client>>();
  const byProfile = new Map<string, Set<Client>>();

  function index(map: Map<string, Set<Client>>, key: string, client: Client): void {
    let clients = map.get(key);
    if (!clients) {
      clients = new Set();
      map.set(key, clients);
    }
    clients.add(client);
  }
  function unindex(map: Map<string, Set<Client>>, key: string, client: Client): void {
    const clients = map.get(key);
    clients?.delete(client);
    if (clients && clients.size === 0) map.delete(key);
  }

  function sessionOf(client: Client | null): SessionInfo | undefined {
    return client ? sessions.get(client) : undefined;
  }

  return {
    admit(client, identity) {
      sessions.set(client, { identity, revoked: false });
      index(bySerial, identity.serial, client);
      index(byProfile, identity.profile, client);
      client.conn.once('close', () => {
        unindex(bySerial, identity.serial, client);
        unindex(byProfile, identity.profile, client);
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
    clientsOfProfile(profile) {
      return [...(byProfile.get(profile) ?? [])];
    },
    hasSession(serial) {
      return (bySerial.get(serial)?.size ?? 0) > 0;
    },
  };
}
