// The TLS channel binding of a connection, for proof-of-possession linking (RFC 7030 §3.5).
import type { TLSSocket } from 'node:tls';
import type { ChannelBinding } from '@enrolld/core/renewal/pop-linking.js';

export function channelBindingOf(socket: Partial<TLSSocket>): ChannelBinding | undefined {
  if (typeof socket.getProtocol !== 'function') return undefined;
  const version = socket.getProtocol();
  if (version === 'TLSv1.3') {
    // RFC 9266 §2: 32 bytes, label "EXPORTER-Channel-Binding", no context. In TLS 1.3 an absent and an empty
    // context give the same exporter (RFC 8446 §7.5), so the empty buffer the typings ask for changes nothing.
    return { type: 'tls-exporter', value: socket.exportKeyingMaterial!(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)) };
  }
  if (version === 'TLSv1.2') {
    // RFC 5929 §3.1: the first Finished message of the latest handshake: the client's in a full handshake, the
    // server's in an abbreviated (resumed) one.
    const finished = socket.isSessionReused!() ? socket.getFinished!() : socket.getPeerFinished!();
    return finished ? { type: 'tls-unique', value: finished } : undefined;
  }
  return undefined;
}
