// Every use of aedes API that aedes does not declare in its types: private fields and methods of the broker and the
// client, and persistence methods beyond the `persistence?: any` option. Written for AEDES_VERSION_RELIED_ON only;
// test/unit/aedes-internals.test.ts fails when the installed aedes differs or when anything used here changed shape.
import { Aedes, type AedesOptions, type Client, type PublishPacket } from 'aedes';
import aedesPersistence from 'aedes-persistence';

export const AEDES_VERSION_RELIED_ON = '1.2.0';

// aedes-persistence is CommonJS and its types declare an ES default export; under nodenext the default import is
// module.exports, which is the factory of the in-memory persistence itself.
export const aedesMemoryPersistence = aedesPersistence as unknown as () => NonNullable<AedesOptions['persistence']>;

// Aedes publishes `$SYS/<id>/new/clients` and `…/disconnect/clients` on every CONNECT and close. They exist for
// clientId takeover across brokers sharing an mqemitter; one broker per process with the in-memory mq has no
// listener that needs them, and each costs a full publish per connect (docs/architecture.md, broker performance).
// The overrides are aedes' own bodies without that publish; restore them if brokers ever share an emitter.
class QuietAedes extends Aedes {
  _finishRegisterClient(client: Client): void {
    const self = this as unknown as { connectedClients: number; clients: Record<string, Client> };
    self.connectedClients++;
    self.clients[client.id] = client;
    this.emit('client', client);
  }

  unregisterClient(client: Client): void {
    (this as unknown as { deleteClient(id: string): void }).deleteClient(client.id);
    this.emit('clientDisconnect', client);
  }
}

/** An Aedes broker without the per-connect $SYS client publishes. */
export function createQuietAedes(options: AedesOptions): Aedes {
  return new QuietAedes(options);
}

/**
 * A broker of a cluster: stock aedes, whose `$SYS/<id>/new/clients` publish is what closes the same client id on the
 * other nodes (MQTT-3.1.4-2 across the cluster).
 */
export function createClusterAedes(options: AedesOptions): Aedes {
  return new Aedes(options);
}

/** The outgoing-queue methods of aedes-persistence's in-memory store (the async layer its callback wrapper delegates to). */
interface MemoryOutgoingStore {
  outgoingEnqueue(sub: { clientId: string }, packet: unknown): Promise<void>;
  outgoingEnqueueCombi(subs: { clientId: string }[], packet: unknown): Promise<void>;
  outgoingClearMessageId(client: { id: string }, packet: unknown): Promise<unknown>;
}

/** What the aedes CONNECT patch (server/scripts/patch-dependencies.mjs) asks a persistence: may this client have packets queued? */
export interface OutgoingQueueProbe {
  outgoingQueued(client: { id: string }): boolean;
}

/**
 * aedes' own in-memory persistence (what it uses when given none) that also counts each client's queued outgoing
 * packets, so the patched CONNECT skips the queue replay of a clean session with nothing queued. Every path into the
 * queue goes through the three counted methods: enqueue (per subscription), and clear by message id (PUBACK, PUBCOMP,
 * a replay, the revocation purge); an update replaces a packet in place. The count is raised before a packet lands
 * and lowered after it is gone, so it can only overstate, which costs the full replay, never a lost packet.
 */
export function createMemoryPersistence(): NonNullable<AedesOptions['persistence']> & OutgoingQueueProbe {
  const persistence = aedesMemoryPersistence() as unknown as { asyncPersistence: MemoryOutgoingStore } & OutgoingQueueProbe;
  const store = persistence.asyncPersistence;
  const queued = new Map<string, number>();
  const count = (clientId: string, by: number) => {
    const left = (queued.get(clientId) ?? 0) + by;
    if (left > 0) queued.set(clientId, left);
    else queued.delete(clientId);
  };
  const enqueue = store.outgoingEnqueue.bind(store);
  const enqueueCombi = store.outgoingEnqueueCombi.bind(store);
  const clear = store.outgoingClearMessageId.bind(store);
  store.outgoingEnqueue = (sub, packet) => {
    count(sub.clientId, 1);
    return enqueue(sub, packet);
  };
  store.outgoingEnqueueCombi = (subs, packet) => {
    for (const sub of subs) count(sub.clientId, 1);
    return enqueueCombi(subs, packet);
  };
  store.outgoingClearMessageId = async (client, packet) => {
    const removed = await clear(client, packet);
    if (removed !== undefined) count(client.id, -1);
    return removed;
  };
  persistence.outgoingQueued = (client) => queued.has(client.id);
  return persistence as unknown as NonNullable<AedesOptions['persistence']> & OutgoingQueueProbe;
}

interface ClientWill {
  /** Set from CONNECT before authenticate runs; copied to `will` once the session is registered. */
  _will: PublishPacket | null;
  /** What aedes publishes when the connection dies without DISCONNECT. */
  will: PublishPacket | null;
}

/** The will of a CONNECT still being authenticated (aedes keeps it in `_will` until then). */
export function willUnderAuthentication(client: Client): PublishPacket | null {
  return (client as unknown as ClientWill)._will;
}

/** Forgets the client's will, so aedes' close does not publish it. */
export function dropClientWill(client: Client): void {
  const internals = client as unknown as ClientWill;
  internals.will = null;
  internals._will = null;
}

/** The fields a will packet carries through persistence to name the certificate (its profile, its group) of the session that set it. */
const WILL_SERIAL = 'enrolldSerial';
const WILL_PROFILE = 'enrolldProfile';
const WILL_GROUP = 'enrolldGroup';

/** Stamps a will before aedes stores it (putWill keeps the packet object with its extra fields). */
export function stampWillSerial(will: object, serial: string, profile?: string, group?: string): void {
  (will as Record<string, unknown>)[WILL_SERIAL] = serial;
  if (profile !== undefined) (will as Record<string, unknown>)[WILL_PROFILE] = profile;
  if (group !== undefined) (will as Record<string, unknown>)[WILL_GROUP] = group;
}

/**
 * A will that aedes' sweep publishes with client === null (left by a broker that died, Aedes #769): putWill added
 * the clientId, and our stamp gives the serial. Either is absent when the packet is not such a will.
 */
export function leftOverWill(packet: PublishPacket): {
  clientId: string | undefined; serial: string | undefined; profile?: string | undefined; group?: string | undefined;
} {
  const fields = packet as unknown as Record<string, unknown>;
  const clientId = fields.clientId;
  const serial = fields[WILL_SERIAL];
  const profile = fields[WILL_PROFILE];
  const group = fields[WILL_GROUP];
  return {
    clientId: typeof clientId === 'string' ? clientId : undefined,
    serial: typeof serial === 'string' ? serial : undefined,
    ...(typeof profile === 'string' ? { profile } : {}),
    ...(typeof group === 'string' ? { group } : {}),
  };
}

/** The persistence methods the revocation purge and the left-over will refusal call (promise form: no callback). */
export interface SessionPersistence {
  delWill(client: { id: string; brokerId?: string }): Promise<unknown>;
  cleanSubscriptions(client: { id: string }): Promise<unknown>;
  outgoingStream(client: { id: string }): AsyncIterable<{ messageId?: number }>;
  outgoingClearMessageId(client: { id: string }, packet: { messageId?: number }): Promise<unknown>;
  /** Optional in the persistence contract: some persistences keep no inbound QoS 2 state. */
  cleanIncoming?(client: { id: string }): Promise<unknown>;
  createRetainedStream(pattern: string): AsyncIterable<{ topic: string }>;
  removeSubscriptions(client: { id: string }, filters: string[]): Promise<unknown>;
  storeRetained(packet: { cmd: 'publish'; topic: string; payload: Buffer; qos: number; retain: boolean }): Promise<unknown>;
}

export function sessionPersistence(aedes: Aedes): SessionPersistence {
  return (aedes as unknown as { persistence: SessionPersistence }).persistence;
}

/** The topic filters a live client is subscribed to (aedes Client `subscriptions`, keyed by filter). */
export function subscribedFilters(client: Client): string[] {
  return Object.keys((client as unknown as { subscriptions?: Record<string, unknown> }).subscriptions ?? {});
}

/**
 * Removes subscriptions of a live client as an UNSUBSCRIBE without a packet id would (no UNSUBACK is sent), and from
 * the persisted session of a client that is not clean, so a reconnect does not bring them back.
 */
export async function dropSubscriptions(aedes: Aedes, client: Client, filters: string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => client.unsubscribe({ unsubscriptions: filters } as never, (error?: Error) => (error ? reject(error) : resolve())));
  if (!client.clean) await sessionPersistence(aedes).removeSubscriptions(client, filters);
}

interface ClientParser {
  _parser: { parse(chunk: Buffer): unknown };
}

/**
 * Lets `admit` see every chunk a client's socket delivers before aedes' MQTT parser buffers it. A chunk it refuses is
 * not parsed, and the parser stays as it was (the caller closes the connection).
 */
export function inspectIncomingBytes(client: Client, admit: (chunk: Buffer) => boolean): void {
  const parser = (client as unknown as ClientParser)._parser;
  const parse = parser.parse.bind(parser);
  parser.parse = (chunk: Buffer) => (admit(chunk) ? parse(chunk) : undefined);
}

/** Message ids of the inbound QoS 2 PUBLISH aedes stored for this client and still awaits PUBREL for. */
export function inboundAwaitingRelease(client: Client): ReadonlySet<number> {
  return (client as unknown as { _inboundInflight: Set<number> })._inboundInflight;
}

/** One of aedes' per-client delivery functions: `deliver0` (QoS 0) or `deliverQoS` (QoS 1 and 2). */
export type Deliver = (packet: PublishPacket, done: () => void) => void;

interface ClientDelivery {
  deliver0: Deliver;
  deliverQoS: Deliver;
  /** brokerId → the highest brokerCounter delivered to this client (lib/client.js `dedupe`). */
  duplicates: Record<string, number>;
  /** The next message id aedes' QoSPacket takes when a packet has none. */
  _nextId: number;
  subscriptions: Record<string, { qos?: number } | undefined>;
  _parser: { on(event: 'packet', listener: (packet: { cmd: string; messageId?: number }) => void): unknown };
}

const delivery = (client: Client) => client as unknown as ClientDelivery;

/**
 * Puts `wrap` in front of the client's two delivery functions. aedes' SUBSCRIBE handler (and its retained replay)
 * reads them when a subscription is made, so this must run before the client subscribes: when aedes takes the socket.
 */
export function wrapDeliveries(client: Client, wrap: (original: Deliver, kind: 'qos0' | 'qos') => Deliver): void {
  const fields = delivery(client);
  fields.deliver0 = wrap(fields.deliver0, 'qos0');
  fields.deliverQoS = wrap(fields.deliverQoS, 'qos');
}

/** Every packet the client's parser reads, as aedes gets it (aedes handles it first). */
export function observeIncomingPackets(client: Client, observer: (packet: { cmd: string; messageId?: number }) => void): void {
  delivery(client)._parser.on('packet', observer);
}

/**
 * The QoS `deliverQoS` sends a packet at: the packet's, lowered to that of a subscription whose filter is the topic
 * itself (lib/client.js deliverQoS).
 */
export function deliveredQoS(client: Client, packet: PublishPacket): 0 | 1 | 2 {
  const subscription = delivery(client).subscriptions[packet.topic];
  const qos = subscription && (subscription.qos ?? 0) < packet.qos ? (subscription.qos ?? 0) : packet.qos;
  return qos as 0 | 1 | 2;
}

/**
 * True when aedes would deliver this packet to the client (lib/client.js `dedupe`: one packet that matches several
 * of a client's subscriptions is delivered once, the first time). `claim` records it as delivered, as aedes does.
 */
export function isFirstDelivery(client: Client, packet: PublishPacket, claim: boolean): boolean {
  const { brokerId, brokerCounter } = packet as PublishPacket & { brokerId?: string; brokerCounter?: number };
  if (!brokerId) return true;
  const duplicates = delivery(client).duplicates;
  const first = (duplicates[brokerId] ?? 0) < (brokerCounter ?? 0);
  if (first && claim) duplicates[brokerId] = brokerCounter ?? 0;
  return first;
}

/**
 * Runs `deliver` for a packet claimed earlier (isFirstDelivery with claim) and held back since: aedes' dedupe lets it
 * through once more, and keeps the highest counter it had seen.
 */
export function deliverClaimed(client: Client, packet: PublishPacket, deliver: () => void): void {
  const { brokerId, brokerCounter } = packet as PublishPacket & { brokerId?: string; brokerCounter?: number };
  if (!brokerId) return deliver();
  const duplicates = delivery(client).duplicates;
  const seen = duplicates[brokerId] ?? 0;
  duplicates[brokerId] = (brokerCounter ?? 0) - 1;
  try {
    deliver();
  } finally {
    duplicates[brokerId] = Math.max(seen, duplicates[brokerId] ?? 0);
  }
}

/**
 * Gives a QoS 1/2 packet its message id from aedes' own sequence (which QoSPacket then keeps), skipping ids still in
 * flight: MQTT-2.3.1-2 wants an unused id, and aedes alone would reuse one after 65535 sends.
 */
export function assignMessageId(client: Client, packet: PublishPacket, inUse: (id: number) => boolean): number {
  const fields = delivery(client);
  let id = fields._nextId;
  for (let tries = 0; tries < 65535 && inUse(id); tries++) id = id >= 65535 ? 1 : id + 1;
  fields._nextId = id >= 65535 ? 1 : id + 1;
  packet.messageId = id;
  return id;
}
