// The ACL compiler against a plain reference: a recursive split-and-compare matcher written from MQTT 3.1.1 §4.7
// (wildcards, `#` matching its parent, empty levels, no wildcard match of `$` topics at the first level), and a
// brute-force evaluation of SUBSCRIBE over every topic of a small universe that holds a level no filter names. Each
// property runs for an identity with a group and one without, for which a filter with `{group}` matches nothing.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { AclRule } from '@enrolld/protocol';
import { aclProblems, compileAcl } from '@enrolld/core/acl/compiled-acl.js';
import { compileFilter, coversFilter, matchesTopic, overlapsFilter } from '@enrolld/core/acl/topic-filter.js';
import { BUILTIN_PROFILE_SPECS } from '@enrolld/core/acl/builtin-profiles.js';

const ID = 'me';
const GROUP = 'line';
const LITERALS = ['a', 'b', '', '$s', 'me', 'line', 'devices'];
const FRESH = 'zz'; // a level no generated filter names
/** The groups the properties run with: an identity in group `line`, and one without a group. */
const GROUPS = [GROUP, undefined] as const;

/** `filter` with its placeholders filled in; undefined (a rule that matches nothing) when it needs a group there is none of. */
function substitute(filter: string, group: string | undefined): string[] | undefined {
  const levels = filter.split('/');
  if (levels.includes('{group}') && group === undefined) return undefined;
  return levels.map((level) => (level === '{id}' ? ID : level === '{group}' ? group! : level));
}

function refMatch(filter: string[] | undefined, topic: string[]): boolean {
  if (filter === undefined) return false;
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

const levelArb = fc.constantFrom(...LITERALS, '+');
const topicArb = fc.array(fc.constantFrom(...LITERALS, FRESH), { minLength: 1, maxLength: 4 }).map((levels) => levels.join('/'));
/** Well-formed filters: `+` anywhere (either end included), `#` only last. */
const subscriptionArb = fc
  .tuple(fc.array(levelArb, { minLength: 0, maxLength: 3 }), fc.boolean())
  .filter(([levels, hash]) => (levels.length > 0 && levels.join('/') !== '') || hash)
  .map(([levels, hash]) => [...levels, ...(hash ? ['#'] : [])].join('/'));
const ruleFilterArb = fc
  .tuple(fc.array(fc.constantFrom(...LITERALS, '+', '{id}', '{group}'), { minLength: 0, maxLength: 3 }), fc.boolean())
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

function refPublish(rules: AclRule[], topic: string, group: string | undefined): boolean {
  if (!PUBLISHABLE(topic)) return false;
  for (const rule of rules) if (rule.action === 'publish' && refMatch(substitute(rule.filter, group), topic.split('/'))) return rule.effect === 'allow';
  return false;
}

/** A subscriber may receive a topic when the first subscribe rule that matches it allows it. */
function refReceive(rules: AclRule[], topic: string[], group: string | undefined): boolean {
  for (const rule of rules) if (rule.action === 'subscribe' && refMatch(substitute(rule.filter, group), topic)) return rule.effect === 'allow';
  return false;
}

describe.each(GROUPS)('topic filter matching, group %s', (group) => {
  it('matches topics exactly like the reference matcher (including $ topics, empty levels, + at either end)', () => {
    fc.assert(
      fc.property(ruleFilterArb, topicArb, (filter, topic) => {
        expect(matchesTopic(compileFilter(filter), ID, topic, group)).toBe(refMatch(substitute(filter, group), topic.split('/')));
      }),
      { numRuns: 10_000 },
    );
  });

  it('covers and overlaps agree with a brute force over the universe', () => {
    fc.assert(
      fc.property(ruleFilterArb, subscriptionArb, (ruleFilter, subscription) => {
        const compiled = compileFilter(ruleFilter);
        const levels = subscription.split('/');
        const ruleLevels = substitute(ruleFilter, group);
        const matching = UNIVERSE.filter((topic) => refMatch(levels, topic));
        // A rule that matches nothing covers no subscription (each reaches some topic) and overlaps none.
        expect(coversFilter(compiled, ID, levels, group)).toBe(ruleLevels !== undefined && matching.every((topic) => refMatch(ruleLevels, topic)));
        expect(overlapsFilter(compiled, ID, levels, group)).toBe(matching.some((topic) => refMatch(ruleLevels, topic)));
      }),
      { numRuns: 3_000 },
    );
  });
});

describe('topic filter matching', () => {
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
    ['fleet/{group}/#', 'fleet/line/news', true],
    ['fleet/{group}/#', 'fleet/line', true],
    ['fleet/{group}/#', 'fleet/line-2/news', false],
    ['fleet/{group}/#', 'fleet/lin/news', false],
  ])('%j matches %j → %s', (filter, topic, expected) => {
    expect(matchesTopic(compileFilter(filter), ID, topic, GROUP)).toBe(expected);
    expect(refMatch(substitute(filter, GROUP), topic.split('/'))).toBe(expected);
  });

  it('a filter with {group} matches nothing for an identity without a group, even a topic naming no group at all', () => {
    for (const topic of ['fleet/line/news', 'fleet//news', 'fleet/undefined/news', 'fleet']) {
      expect(matchesTopic(compileFilter('fleet/{group}/#'), ID, topic, undefined)).toBe(false);
    }
    expect(coversFilter(compileFilter('fleet/{group}/#'), ID, ['fleet', 'line', '#'], undefined)).toBe(false);
    expect(overlapsFilter(compileFilter('fleet/{group}/#'), ID, ['#'], undefined)).toBe(false);
  });
});

describe.each(GROUPS)('compiled ACL, group %s', (group) => {
  it('PUBLISH is decided by the first matching rule, as the reference says', () => {
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 6 }), topicArb, (rules, topic) => {
        expect(compileAcl(rules).canPublish(ID, topic, group)).toBe(refPublish(rules, topic, group));
      }),
      { numRuns: 5_000 },
    );
  });

  it('a granted SUBSCRIBE never reaches a topic the rules refuse, and a refused one always could', () => {
    const covers = (rule: AclRule, reachable: string[][]) => {
      const ruleLevels = substitute(rule.filter, group);
      return ruleLevels !== undefined && reachable.every((topic) => refMatch(ruleLevels, topic));
    };
    fc.assert(
      fc.property(fc.array(ruleArb, { maxLength: 6 }), subscriptionArb, (rules, subscription) => {
        const levels = subscription.split('/');
        const reachable = UNIVERSE.filter((topic) => refMatch(levels, topic));
        const allowed = compileAcl(rules).canSubscribe(ID, subscription, group);
        if (allowed) expect(reachable.every((topic) => refReceive(rules, topic, group))).toBe(true);
        // Refused: some topic the filter reaches is not receivable, or no single allow rule holds it all.
        const singleAllowCovers = rules.some((rule) => rule.action === 'subscribe' && rule.effect === 'allow' && covers(rule, reachable));
        if (!allowed && reachable.every((topic) => refReceive(rules, topic, group)) && singleAllowCovers) {
          // Only a deny rule before the covering allow rule that overlaps the filter refuses it.
          const firstCover = rules.findIndex((rule) => rule.action === 'subscribe' && rule.effect === 'allow' && covers(rule, reachable));
          const denyBefore = rules.slice(0, firstCover).some((rule) => rule.action === 'subscribe' && rule.effect === 'deny' &&
            reachable.some((topic) => refMatch(substitute(rule.filter, group), topic)));
          expect(denyBefore).toBe(true);
        }
      }),
      { numRuns: 2_000 },
    );
  });
});

describe('compiled ACL', () => {
  it('{group} is the certificate\'s group: gold reads its own group\'s fleet topics, and a device without a group none', () => {
    const gold = compileAcl([
      { effect: 'allow', action: 'subscribe', filter: 'devices/{id}/#' },
      { effect: 'allow', action: 'subscribe', filter: 'fleet/{group}/#' },
      { effect: 'allow', action: 'publish', filter: 'fleet/{group}/status/{id}' },
    ]);
    expect(gold.canSubscribe('press-1', 'fleet/line-7/#', 'line-7')).toBe(true);
    expect(gold.canSubscribe('press-1', 'fleet/line-7/news', 'line-7')).toBe(true);
    expect(gold.canSubscribe('press-1', 'fleet/line-8/#', 'line-7')).toBe(false);
    expect(gold.canSubscribe('press-1', 'fleet/+/news', 'line-7')).toBe(false);
    expect(gold.canSubscribe('press-1', 'fleet/#', 'line-7')).toBe(false);
    expect(gold.canPublish('press-1', 'fleet/line-7/status/press-1', 'line-7')).toBe(true);
    expect(gold.canPublish('press-1', 'fleet/line-7/status/press-2', 'line-7')).toBe(false);
    expect(gold.canSubscribe('press-1', 'fleet/line-7/#', undefined)).toBe(false);
    expect(gold.canPublish('press-1', 'fleet/line-7/status/press-1', undefined)).toBe(false);
    expect(gold.canSubscribe('press-1', 'devices/press-1/#', undefined)).toBe(true);
    // A deny rule with {group} denies nothing without a group: the next rule decides.
    const denyGroup = compileAcl([
      { effect: 'deny', action: 'subscribe', filter: 'fleet/{group}/secret' },
      { effect: 'allow', action: 'subscribe', filter: 'fleet/+/secret' },
    ]);
    expect(denyGroup.canSubscribe('s', 'fleet/line-7/secret', 'line-7')).toBe(false);
    expect(denyGroup.canSubscribe('s', 'fleet/line-7/secret', undefined)).toBe(true);
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
    ['device', 'allow', 'devices/{group}/x', /another device's namespace/],
    ['device', 'allow', '{group}/+/x', /another device's namespace/],
    ['device', 'allow', '{id}/x', /another device's namespace/],
    ['device', 'allow', 'devices/{grp}/x', /unknown placeholder \{grp\}/],
    ['device', 'allow', 'devices/x-{id}/x', /whole level/],
    ['device', 'allow', 'fleet/x-{group}', /\{group\} must fill a whole level/],
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
    ['device', 'allow', 'fleet/{group}/#'],
    ['device', 'allow', 'devices/{id}/{group}/#'],
    ['device', 'deny', 'devices/{group}/#'],
    ['service', 'allow', 'fleet/{group}/+/telemetry'],
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
