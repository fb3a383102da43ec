// adminRoleFor (protocol/src/routes.ts): a request's path is looked up in the role table the way express matches routes,
// so the guard never applies another line's role than the route that answers.
import { describe, expect, it } from '@jest/globals';
import { adminRoleFor, adminRouteRoles, roleAllows, ADMIN_ROLES } from '@enrolld/protocol';

describe('adminRoleFor', () => {
  it('finds every line of the table by its own method and path, with its params filled in', () => {
    for (const [key, role] of Object.entries(adminRouteRoles)) {
      const [method, pattern] = key.split(' ') as [string, string];
      expect({ key, role: adminRoleFor(method, pattern.replace(/:[a-z]+/g, 'some-value')) }).toEqual({ key, role });
    }
  });

  it('matches as express does: literal segments in any case, one trailing slash, HEAD as GET', () => {
    expect(adminRoleFor('GET', '/V1/Admin/DEVICES/')).toBe('viewer');
    expect(adminRoleFor('head', '/v1/admin/profiles/gold')).toBe('viewer');
    expect(adminRoleFor('POST', '/v1/admin/devices/sensor-1/REVOKE')).toBe('operator');
    expect(adminRoleFor('PUT', '/v1/admin/admins/bob/role')).toBe('owner');
  });

  it('a param is one non-empty segment, and a method or path not in the table has no role (the guard then asks owner)', () => {
    expect(adminRoleFor('GET', '/v1/admin/devices//tokens')).toBeUndefined();
    expect(adminRoleFor('GET', '/v1/admin/devices/a/b/tokens')).toBeUndefined();
    expect(adminRoleFor('DELETE', '/v1/admin/devices/sensor-1')).toBeUndefined();
    expect(adminRoleFor('GET', '/v1/admin/unknown')).toBeUndefined();
    expect(adminRoleFor('GET', '/v1/admin/devices//')).toBeUndefined();
  });
});

describe('roleAllows', () => {
  it('each role may do what the ones before it may, and nothing after', () => {
    const table = ADMIN_ROLES.map((held) => ADMIN_ROLES.map((required) => roleAllows(held, required)));
    expect(table).toEqual([
      [true, false, false],
      [true, true, false],
      [true, true, true],
    ]);
  });
});
