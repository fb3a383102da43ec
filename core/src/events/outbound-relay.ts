// Server-originated MQTT publishes (renewal replies, rotation hints) from the use cases to the broker. The broker
// consumes the relay while it runs, so producers are built before it and hold no reference to it.
export interface OutboundMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
}

export interface OutboundRelay {
  /** Rejects when no broker is consuming (not started yet, or stopped). */
  publish(message: OutboundMessage): Promise<void>;
  /** Attaches the one sink; returns the function that detaches it. */
  consume(sink: (message: OutboundMessage) => Promise<void>): () => void;
}

export function createOutboundRelay(): OutboundRelay {
  let current: ((message: OutboundMessage) => Promise<void>) | undefined;
  return {
    publish(message) {
      if (!current) return Promise.reject(new Error('no broker is consuming server-originated messages'));
      return current(message);
    },
    consume(sink) {
      if (current) throw new Error('outbound relay already has a consumer');
      current = sink;
      return () => {
        if (current === sink) current = undefined;
      };
    },
  };
}
