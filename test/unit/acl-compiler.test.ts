// The ACL compiler against a plain reference: a recursive split-and-compare matcher written from MQTT 3.1.1 §4.7
// (wildcards, `#` matching its parent, empty levels, no wildcard match of `$` topics at the first level), and a
// brute-force evaluation of SUBSCRIBE over every topic of a small universe that holds a level no filter names.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { AclRule } from '@enrolld/protocol';
import { aclProblems, compileAcl } from '@enrolld/core/acl/compiled-acl.js';
import { compileFilter, coversFilter, matchesTopic, overlapsFilter } from '@enrolld/core/acl/topic-filter.js';
import { BUILTIN_PROFILE_SPECS } from '@enrolld/core/acl/builtin-profiles.js';

const ID = 'me';
const LITERALS = ['a', 'b', '', '$s', 'me', 'devices'];
const FRESH = 'zz'; // a level no generated filter names

function refMatch(filter: string[], topic: string[]): boolean {
  if (topic[0]?.startsWith('$') && (filter[0] === '+' || filter[0] === '#')) return false;
  const walk = (i: number): boolean => {
    if (i === filter.length) return i === topic.length;
    if (filter[i] === '#') return true;
    if (i === topic.length) return false;
    if (filter[i] !== '+' && filter[i] !== topic[i]) return false;
    return walk(i + 1);
  };
  return walk(0);
}
const substitute = (filter: string): string[] => filter.split('/').map((level) => (level === '{id}' ? ID : level));

const levelArb = fc.constantFrom(...LITERALS, '+');
const topicArb = fc.array(fc.constantFrom(...LITERALS, FRESH), { minLength: 1, maxLength: 4 }).map((levels) => levels.join('/'));
/** Well-formed filters: `+` anywhere (either end included), `#` only last. */
const subscriptionArb = fc
  .tuple(fc.array(levelArb, { minLength: 0, maxLength: 3 }), fc.boolean())
  .filter(([levels, hash]) => (levels.length > 0 && levels.join('/') !== '') || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));
const ruleFilterArb = fc
  .tuple(fc.array(fc.constantFrom(...LITERALS, '+', '{id}'), { minLength: 0, maxLength: 3 }), fc.boolean())
  .filter(([levels, hash]) => (levels.length > 0 && levels.join('/') !== '') || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));
const ruleArb = fc.record({
  effect: fc.constantFrom('allow' as const, 'deny' as const),
  action: fc.constantFrom('publish' as const, 'subscribe' as const),
  filter: ruleFilterArb,
});

/** Every topic of up to 5 levels over the literals and the fresh level. */
const UNIVERSE: string[][] = (() => {
  const out: string[][] = [];
  const grow = (prefix: string[]) => {
    if (prefix.length > 0) out.push(prefix);
    if (prefix.length === 5) return;
    for (const level of [...LITERALS, FRESH]) grow([...prefix, level]);
  };
  grow([]);
  return out;
})();

const PUBLISHABLE = (topic: string) => topic !== '' && !topic.startsWith('$'); // MQTT-4.7.3-1, MQTT-4.7.2

function refPublish(rules: AclRule[], topic: string): boolean {
  if (!PUBLISHABLE(topic)) return false;
  for (const rule of rules) if (rule.action === 'publish' && refMatch(substitute(rule.filter), topic.split('/'))) return rule.effect === 'allow';
  return false;
}

/** A subscriber may receive a topic when the first subscribe rule that matches it allows it. */
function refReceive(rules: AclRule[], topic: string[]): boolean {
  for (const rule of rules) if (rule.action === 'subscribe' && refMatch(substitute(rule.filter), topic)) return rule.effect === 'allow';
  return false;
}

describe('topic filter matching', () => {
  it('matches topics exactly like the reference matcher (including $ topics, empty levels, + at either end)', () => {
    fc.assert(
      fc.property(ruleFilterArb, topicArb, (filter, topic) => {
        expect(matchesTopic(compileFilter(filter), ID, topic)).toBe(refMatch(substitute(filter), topic.split('/')));
      }),
      { numRuns: 20_000 },
    );
  });

  it('covers and overlaps agree with a brute force over the universe', () => {
    fc.assert(
      fc.property(ruleFilterArb, subscriptionArb, (ruleFilter, subscription) => {
        const compiled = compileFilter(ruleFilter);
        const levels = subscription.split('/');
        const ruleLevels = substitute(ruleFilter);
        const matching = UNIVERSE.filter((topic) => refMatch(levels, topic));
        expect(coversFilter(compiled, ID, levels)).toBe(matching.every((topic) => refMatch(ruleLevels, topic)));
        expect(overlapsFilter(compiled, ID, levels)).toBe(matching.some((topic) => refMatch(ruleLevels, topic)));
      }),
      { numRuns: 5_000 },
    );
  });

  it.each([
    ['#', '$SYS/x', false],
    ['+/x', '$SYS/x', false],
    ['$SYS/#', '$SYS/x', true],
    ['a/#', 'a', true],
    ['a/+', 'a/', true],
    ['+/+', '/a', true],
    ['a/+', 'a', false],
    ['devices/{id}/#', 'devices/me/t', true],
    ['devices/{id}/#', 'devices/mex/t', false],
  ])('%j matches %j → %s', (filter, topic, expected) => {
    expect(matchesTopic(compileFilter(filter), ID, topic)).toBe(expected);
    expect(refMatch(substitute(filter), topic.split('/'))).toBe(expected);
  });
});

describe('compiled ACL', () => {
  it('PUBLISH is decided by the first matching rule, as the reference says', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 6 }), topicArb, (rules, topic) => {
        expect(compileAcl(rules).canPublish(ID, topic)).toBe(refPublish(rules, topic));
      }),
      { numRuns: 10_000 },
    );
  });

  it('a granted SUBSCRIBE never reaches a topic the rules refuse, and a refused one always could', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 6 }), subscriptionArb, (rules, subscription) => {
        const levels = subscription.split('/');
        const reachable = UNIVERSE.filter((topic) => refMatch(levels, topic));
        const allowed = compileAcl(rules).canSubscribe(ID, subscription);
        if (allowed) expect(reachable.every((topic) => refReceive(rules, topic))).toBe(true);
        // Refused: some topic the filter reaches is not receivable, or no single allow rule holds it all.
        const singleAllowCovers = rules.some((rule) => rule.action === 'subscribe' && rule.effect === 'allow' &&
          reachable.every((topic) => refMatch(substitute(rule.filter), topic)));
        if (!allowed && reachable.every((topic) => refReceive(rules, topic)) && singleAllowCovers) {
          // Only a deny rule before the covering allow rule that overlaps the filter refuses it.
          const firstCover = rules.findIndex((rule) => rule.action === 'subscribe' && rule.effect === 'allow' &&
            reachable.every((topic) => refMatch(substitute(rule.filter), topic)));
          const denyBefore = rules.slice(0, firstCover).some((rule) => rule.action === 'subscribe' && rule.effect === 'deny' &&
            reachable.some((topic) => refMatch(substitute(rule.filter), topic)));
          expect(denyBefore).toBe(true);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it('refuses shared subscriptions, malformed filters and publishing to $ topics whatever the rules say', () => {
    const acl = compileAcl([{ effect: 'allow', action: 'subscribe', filter: '#' }, { effect: 'allow', action: 'publish', filter: '#' }]);
    expect(acl.canSubscribe(ID, '$share/g/devices/me/#')).toBe(false);
    expect(acl.canSubscribe(ID, 'a/b#')).toBe(false);
    expect(acl.canSubscribe(ID, 'a/#/b')).toBe(false);
    expect(acl.canSubscribe(ID, '')).toBe(false);
    expect(acl.canPublish(ID, '$SYS/broker')).toBe(false);
    expect(acl.canPublish(ID, 'a/+')).toBe(false);
    expect(acl.canPublish(ID, 'a\u0000')).toBe(false);
    expect(acl.canPublish(ID, 'a/b')).toBe(true);
  });
});

describe('profile validation', () => {
  it.each([
    ['device', 'allow', 'devices/+/telemetry', /another device's namespace/],
    ['device', 'allow', '#', /another device's namespace/],
    ['device', 'allow', '+/x/y', /another device's namespace/],
    ['device', 'allow', 'devices/sensor-2/#', /another device's namespace/],
    ['device', 'allow', 'devices/{id}/a#', /"#" must be alone/],
    ['device', 'allow', 'devices/{id}/a+', /"\+" must be alone/],
    ['device', 'allow', 'devices/{group}/x', /unknown placeholder \{group\}/],
    ['device', 'allow', 'devices/x-{id}/x', /whole level/],
    ['service', 'allow', '$share/g/devices/+/telemetry', /shared subscriptions/],
  ] as const)('%s %s %j is refused: %s', (kind, effect, filter, message) => {
    const rules: AclRule[] = [{ effect: 'allow', action: 'publish', filter: 'devices/{id}/t' }, { effect, action: 'subscribe', filter }];
    const problems = aclProblems(kind, rules);
    expect(problems).toEqual([{ rule: 1, filter, problem: expect.stringMatching(message) }]);
  });

  it.each([
    ['device', 'deny', '#'],
    ['device', 'allow', 'groups/+/announcements'],
    ['device', 'allow', 'devices'],
    ['service', 'allow', 'devices/+/telemetry'],
    ['service', 'allow', '#'],
  ] as const)('%s %s %j is accepted', (kind, effect, filter) => {
    expect(aclProblems(kind, [{ effect, action: 'subscribe', filter }])).toEqual([]);
  });

  it('the built-in profiles are valid; device keeps a device in devices/<id>/, service reads every device', () => {
    for (const spec of BUILTIN_PROFILE_SPECS) expect(aclProblems(spec.kind, spec.acl)).toEqual([]);
    const device = compileAcl(BUILTIN_PROFILE_SPECS[0]!.acl);
    const service = compileAcl(BUILTIN_PROFILE_SPECS[1]!.acl);
    expect(device.canPublish('s-1', 'devices/s-1/telemetry')).toBe(true);
    expect(device.canPublish('s-1', 'devices/s-2/telemetry')).toBe(false);
    expect(device.canSubscribe('s-1', 'devices/s-1/#')).toBe(true);
    expect(device.canSubscribe('s-1', 'devices/+/telemetry')).toBe(false);
    expect(device.canSubscribe('s-1', '#')).toBe(false);
    expect(service.canSubscribe('ingest', 'devices/+/telemetry')).toBe(true);
    expect(service.canSubscribe('ingest', 'devices/s-1/telemetry')).toBe(true);
    expect(service.canSubscribe('ingest', 'devices/+/cert/renew')).toBe(false);
    expect(service.canSubscribe('ingest', 'devices/#')).toBe(false);
    expect(service.canPublish('ingest', 'devices/s-1/commands')).toBe(true);
    expect(service.canPublish('ingest', 'devices/s-1/telemetry')).toBe(false);
  });
});
