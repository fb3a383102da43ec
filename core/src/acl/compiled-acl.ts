import type { AclRule, IdentityKind } from '@enrolld/protocol';
import { compileFilter, coversFilter, filterProblem, isWellFormedFilter, LevelKind, matchesTopicLevels, overlapsFilter, topicLevelEnds } from './topic-filter.js';
import type { CompiledFilter } from './topic-filter.js';

// A profile's ACL, compiled once when the profile loads (docs/architecture.md §6, topic ACL). Rules are kept per
// action in their order. PUBLISH: the first rule whose filter matches the topic decides. SUBSCRIBE: rules are read in
// order; a deny rule that any topic of the requested filter could match refuses it, and an allow rule that matches
// every topic of the requested filter grants it (so a wildcard never reaches a topic a preceding deny rule keeps
// out). Nothing matching → denied. Topics starting with `$` are never publishable (`$SYS`), and shared
// subscriptions are refused before any rule is read (aedes 1.x has none).

interface CompiledRule {
  allow: boolean;
  filter: CompiledFilter;
}

/**
 * `id` fills `{id}` and `group` fills `{group}`; a rule with `{group}` matches nothing when `group` is undefined (an
 * identity without a group), so it neither allows nor denies.
 */
export interface CompiledAcl {
  canPublish(id: string, topic: string, group?: string): boolean;
  canSubscribe(id: string, filter: string, group?: string): boolean;
}

export interface AclRuleProblem {
  /** Index of the rule in the profile's `acl` list. */
  rule: number;
  filter: string;
  problem: string;
}

export const DEVICE_TOPIC_LEVEL = 'devices';

export function isSharedSubscription(filter: string): boolean {
  return filter.startsWith('$share/') || filter === '$share';
}

/**
 * Every rule a profile of this kind may not hold: a filter that is malformed or uses an unknown placeholder, and for
 * device profiles an allow rule that would reach another device's namespace (`devices/<other>/…`) because its
 * second level is not `{id}` (`{group}` there is refused too: a group is shared by many devices).
 */
export function aclProblems(kind: IdentityKind, rules: readonly AclRule[]): AclRuleProblem[] {
  const problems: AclRuleProblem[] = [];
  rules.forEach((rule, index) => {
    const problem = filterProblem(rule.filter) ?? (kind === 'device' && rule.effect === 'allow' ? reachesOtherDevice(rule.filter) : undefined);
    if (problem !== undefined) problems.push({ rule: index, filter: rule.filter, problem });
  });
  return problems;
}

function reachesOtherDevice(filter: string): string | undefined {
  const { kinds, texts } = compileFilter(filter);
  const first = kinds[0]!;
  // A placeholder may stand for `devices` too: ids and groups follow the same rule, and `devices` is a valid one.
  const mayBeDevices = first !== LevelKind.Literal || texts[0] === DEVICE_TOPIC_LEVEL;
  if (!mayBeDevices) return undefined;
  if (first === LevelKind.Hash || (kinds.length > 1 && kinds[1] !== LevelKind.Id)) {
    return `a device rule would reach another device's namespace; use ${DEVICE_TOPIC_LEVEL}/{id}/…`;
  }
  return undefined;
}

/** Compiles rules that aclProblems() accepted for their kind. */
export function compileAcl(rules: readonly AclRule[]): CompiledAcl {
  // Level boundaries of the topic being checked: reused by every call (checks are synchronous), grown as needed.
  const levelEnds: number[] = [];
  const publish: CompiledRule[] = [];
  const subscribe: CompiledRule[] = [];
  for (const rule of rules) {
    (rule.action === 'publish' ? publish : subscribe).push({ allow: rule.effect === 'allow', filter: compileFilter(rule.filter) });
  }
  return {
    canPublish(id, topic, group) {
      // MQTT-3.3.2-2: no wildcards in a topic name; `$` topics are the server's (MQTT-4.7.2).
      if (topic.length === 0 || topic.charCodeAt(0) === 0x24 || topic.includes('+') || topic.includes('#') || topic.includes('\u0000')) {
        return false;
      }
      const count = topicLevelEnds(topic, levelEnds);
      for (const rule of publish) if (matchesTopicLevels(rule.filter, id, topic, levelEnds, count, group)) return rule.allow;
      return false;
    },
    canSubscribe(id, filter, group) {
      if (!isWellFormedFilter(filter) || isSharedSubscription(filter)) return false;
      const levels = filter.split('/');
      for (const rule of subscribe) {
        if (rule.allow ? coversFilter(rule.filter, id, levels, group) : overlapsFilter(rule.filter, id, levels, group)) return rule.allow;
      }
      return false;
    },
  };
}
