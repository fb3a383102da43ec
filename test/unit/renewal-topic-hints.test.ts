// Rotation hints on the renewal topic: published through the outbound relay at once to a live session of the
// certificate (known from the broker's connect and disconnect hooks), otherwise kept until a session of that
// certificate subscribes to devices/<id>/cert/rotate.
import { describe, expect, it } from '@jest/globals';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { topics } from '@enrolld/protocol';
import { createOutboundRelay, type OutboundMessage } from '@enrolld/core/events/outbound-relay.js';
import { createRenewalTopic } from '../../server/src/mqtt/renewal-topic.js';

function topicWithRelay() {
  const outbound = createOutboundRelay();
  const sent: OutboundMessage[] = [];
  outbound.consume(async (message) => {
    sent.push(message);
  });
  const topic = createRenewalTopic({
    renewal: { renew: () => Promise.reject(new Error('not used')) },
    outbound,
    logger: pino({ level: 'silent' }),
    registry: new Registry(),
  });
  return { topic, sent };
}

const session = { deviceId: 'dev-1', serial: '1a2b' };
const hint = { deviceId: 'dev-1', serial: '1a2b', notAfter: new Date(Date.now() + 3600_000) };

describe('renewal topic hints', () => {
  it('publishes a hint at once to a live session of the certificate', () => {
    const { topic, sent } = topicWithRelay();
    topic.hooks.onConnected!(session);
    topic.deliverHint(hint);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ topic: topics.rotate('dev-1'), qos: 1 });
    expect(JSON.parse(sent[0]!.payload.toString('utf8'))).toEqual({ serial: '1a2b', notAfter: hint.notAfter.toISOString(), reason: 'renewal-window' });
    expect(topic.pendingHintCount()).toBe(0);
  });

  it('keeps the hint once the last session of the certificate disconnected, and sends it when one subscribes', () => {
    const { topic, sent } = topicWithRelay();
    topic.hooks.onConnected!(session);
    topic.hooks.onConnected!(session);
    topic.hooks.onDisconnected!(session);
    topic.deliverHint(hint);
    expect(sent).toHaveLength(1);
    topic.hooks.onDisconnected!(session);
    topic.deliverHint({ ...hint });
    expect(sent).toHaveLength(1);
    expect(topic.pendingHintCount()).toBe(1);
    topic.hooks.onSubscribed!(session, ['devices/dev-1/cert/renew/+']);
    expect(topic.pendingHintCount()).toBe(1);
    topic.hooks.onSubscribed!(session, ['devices/dev-1/cert/#']);
    expect(topic.pendingHintCount()).toBe(0);
    expect(sent.map((m) => m.topic)).toEqual([topics.rotate('dev-1'), topics.rotate('dev-1')]);
  });
});
