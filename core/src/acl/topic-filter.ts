// MQTT topic filters as the ACL compiler stores them (MQTT 3.1.1 §4.7): one entry per level, each a literal, `+`, `#`
// or a placeholder: `{id}` (the identity's own id) or `{group}` (the device group its certificate names). Parsed once
// per rule when a profile loads. A PUBLISH topic is scanned once for its level boundaries, and each rule compares
// levels in place: no split, no string built per packet. A filter with `{group}` matches nothing for an identity
// without a group: such a rule neither allows nor denies anything for it.

export const LevelKind = { Literal: 0, Plus: 1, Hash: 2, Id: 3, Group: 4 } as const;
export type LevelKind = (typeof LevelKind)[keyof typeof LevelKind];

export interface CompiledFilter {
  readonly kinds: readonly LevelKind[];
  /** The literal of each Literal level; '' elsewhere. */
  readonly texts: readonly string[];
  /** Some level is `{group}`: the filter matches nothing when there is no group. */
  readonly usesGroup: boolean;
}

export const ID_PLACEHOLDER = '{id}';
export const GROUP_PLACEHOLDER = '{group}';
const PLACEHOLDERS = new Set([ID_PLACEHOLDER, GROUP_PLACEHOLDER]);
const DOLLAR = 0x24;

/** What is wrong with a rule's filter, or undefined when it compiles. */
export function filterProblem(filter: string): string | undefined {
  if (filter.length === 0) return 'the filter is empty';
  if (filter.includes('\u0000')) return 'the filter holds NUL (MQTT-1.5.3-2)';
  const levels = filter.split('/');
  if (levels[0] === '$share') return 'shared subscriptions ($share/…) are not supported';
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return `"#" must be alone in the last level (MQTT-4.7.1-2)`;
    if (level.includes('+') && level !== '+') return `"+" must be alone in its level (MQTT-4.7.1-3)`;
    if (level.includes('{') || level.includes('}')) {
      const placeholder = /\{([^}]*)\}/.exec(level)?.[1];
      if (placeholder !== undefined && !PLACEHOLDERS.has(`{${placeholder}}`)) return `unknown placeholder {${placeholder}} (only {id} and {group} exist)`;
      if (!PLACEHOLDERS.has(level)) return `the placeholder ${placeholder === undefined ? '' : `{${placeholder}} `}must fill a whole level`;
    }
  }
  return undefined;
}

/** Compiles a filter that filterProblem() accepted. */
export function compileFilter(filter: string): CompiledFilter {
  const kinds: LevelKind[] = [];
  const texts: string[] = [];
  for (const level of filter.split('/')) {
    if (level === '+') kinds.push(LevelKind.Plus);
    else if (level === '#') kinds.push(LevelKind.Hash);
    else if (level === ID_PLACEHOLDER) kinds.push(LevelKind.Id);
    else if (level === GROUP_PLACEHOLDER) kinds.push(LevelKind.Group);
    else kinds.push(LevelKind.Literal);
    texts.push(kinds.at(-1) === LevelKind.Literal ? level : '');
  }
  return { kinds, texts, usesGroup: kinds.includes(LevelKind.Group) };
}

/** MQTT-4.7.1: `#` only last and alone in its level, `+` alone in its level, not empty, no NUL (MQTT-1.5.3-2). */
export function isWellFormedFilter(filter: string): boolean {
  if (filter.length === 0 || filter.includes('\u0000')) return false;
  const levels = filter.split('/');
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!;
    if (level.includes('#') && (level !== '#' || i !== levels.length - 1)) return false;
    if (level.includes('+') && level !== '+') return false;
  }
  return true;
}

/**
 * Where each level of a topic ends (the index of its `/`, or the topic's length for the last), into `ends`; returns the
 * number of levels. Computed once per PUBLISH and shared by every rule, so a rule costs no scan of its own.
 */
export function topicLevelEnds(topic: string, ends: number[]): number {
  let count = 0;
  for (let pos = 0; ; ) {
    const slash = topic.indexOf('/', pos);
    if (slash === -1) {
      ends[count++] = topic.length;
      return count;
    }
    ends[count++] = slash;
    pos = slash + 1;
  }
}

/**
 * Whether a topic whose levels end at `ends[0…count)` matches the compiled filter with `{id}` = `id` and `{group}` =
 * `group` (MQTT-4.7.1, MQTT-4.7.2-1). A filter without `#` matches only topics of its own number of levels, which
 * rejects most rules at once.
 */
export function matchesTopicLevels(f: CompiledFilter, id: string, topic: string, ends: readonly number[], count: number, group?: string): boolean {
  const { kinds, texts } = f;
  const n = kinds.length;
  const hash = kinds[n - 1] === LevelKind.Hash;
  if (hash ? count < n - 1 : count !== n) return false;
  if (f.usesGroup && group === undefined) return false;
  // A filter starting with a wildcard does not match topics starting with `$` (MQTT-4.7.2-1).
  if (topic.charCodeAt(0) === DOLLAR && kinds[0] !== LevelKind.Literal) return false;
  for (let i = 0, start = 0; i < n; i++) {
    const kind = kinds[i]!;
    if (kind === LevelKind.Hash) return true; // the rest, including none: `a/#` matches `a` (MQTT-4.7.1-2)
    const end = ends[i]!;
    if (kind === LevelKind.Literal) {
      const text = texts[i]!;
      if (end - start !== text.length || !topic.startsWith(text, start)) return false;
    } else if (kind !== LevelKind.Plus) {
      const value = kind === LevelKind.Id ? id : group!;
      if (end - start !== value.length || !topic.startsWith(value, start)) return false;
    }
    start = end + 1;
  }
  return true;
}

/** Whether `topic` (a topic name) matches the compiled filter with `{id}` = `id` and `{group}` = `group`. */
export function matchesTopic(f: CompiledFilter, id: string, topic: string, group?: string): boolean {
  const ends: number[] = [];
  return matchesTopicLevels(f, id, topic, ends, topicLevelEnds(topic, ends), group);
}

/** The value a placeholder level stands for. */
const placeholderValue = (kind: LevelKind, id: string, group: string | undefined): string | undefined => (kind === LevelKind.Id ? id : group);

const startsWithDollar = (level: string): boolean => level.charCodeAt(0) === DOLLAR;

/** Whether every topic matching the subscription `levels` (a well-formed filter, split) also matches `f`. */
export function coversFilter(f: CompiledFilter, id: string, levels: readonly string[], group?: string): boolean {
  const { kinds, texts } = f;
  if (f.usesGroup && group === undefined) return false;
  for (let i = 0; ; i++) {
    if (i === kinds.length) return i === levels.length;
    const kind = kinds[i]!;
    if (kind === LevelKind.Hash) return !(i === 0 && levels.length > 0 && startsWithDollar(levels[0]!));
    if (i === levels.length) return false;
    const level = levels[i]!;
    // `#` reaches any number of further levels, none included, except at the first level where a topic has at least one:
    // only `#` covers it, or `+/#` at the first level.
    if (level === '#') return i === 0 && kind === LevelKind.Plus && kinds.length === 2 && kinds[1] === LevelKind.Hash;
    if (kind === LevelKind.Plus) {
      if (i === 0 && startsWithDollar(level)) return false;
    } else if (kind === LevelKind.Literal) {
      if (level !== texts[i]) return false;
    } else if (level !== placeholderValue(kind, id, group)) {
      return false;
    }
  }
}

/** Whether some topic matches both the subscription `levels` (a well-formed filter, split) and `f`. */
export function overlapsFilter(f: CompiledFilter, id: string, levels: readonly string[], group?: string): boolean {
  const { kinds, texts } = f;
  if (f.usesGroup && group === undefined) return false;
  for (let i = 0; ; i++) {
    const filterEnded = i === kinds.length;
    const levelsEnded = i === levels.length;
    if (filterEnded && levelsEnded) return true;
    if (levelsEnded) return kinds[i] === LevelKind.Hash;
    if (filterEnded) return levels[i] === '#';
    const kind = kinds[i]!;
    const level = levels[i]!;
    // At the first level a wildcard matches no `$` topic (MQTT-4.7.2-1); an id or a group never starts with `$`.
    if (level === '#') return !(i === 0 && kind === LevelKind.Literal && startsWithDollar(texts[i]!));
    if (kind === LevelKind.Hash) return !(i === 0 && level !== '+' && startsWithDollar(level));
    if (level === '+') {
      if (i === 0 && kind === LevelKind.Literal && startsWithDollar(texts[i]!)) return false;
    } else if (kind === LevelKind.Plus) {
      if (i === 0 && startsWithDollar(level)) return false;
    } else if (kind === LevelKind.Literal) {
      if (level !== texts[i]) return false;
    } else if (level !== placeholderValue(kind, id, group)) {
      return false;
    }
  }
}
