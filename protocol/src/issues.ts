import type { z } from 'zod';

// How a request that failed its schema is told why: each issue as `path: message`, the path written as in the JSON it
// names (`access.weekly[0].from`), so an HTTP 400, a CLI message and a test all name the same field.

/** `['access', 'weekly', 0, 'from']` → `access.weekly[0].from`; `root` for the document itself. */
export function issuePath(path: readonly PropertyKey[], root: string): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : `${out === '' ? '' : '.'}${String(key)}`;
  return out === '' ? root : out;
}

/** Every issue of a failed parse, `path: message`, joined by `; `. */
export function describeIssues(error: z.ZodError, root = 'body'): string {
  return error.issues.map((issue) => `${issuePath(issue.path, root)}: ${issue.message}`).join('; ');
}
