// HTTP authentication for EST simpleenroll (RFC 7030 §3.2.3): Basic (RFC 7617; user = device id, password = bootstrap
// token) or Bearer (RFC 6750; the token alone). The token is never logged.
import { EnrollError } from '@enrolld/core/errors.js';

export interface EstCredentials {
  user: string | undefined;
  token: string;
}

export const EST_REALM = 'enrolld EST';

export function parseAuthorization(header: string | undefined): EstCredentials {
  if (!header) {
    throw new EnrollError('unauthorized', 'EST enrollment needs the bootstrap token: HTTP Basic with user = device id and password = token, or Bearer <token>');
  }
  const space = header.indexOf(' ');
  const scheme = (space < 0 ? header : header.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : header.slice(space + 1).trim();
  if (scheme === 'bearer' && value.length > 0) return { user: undefined, token: value };
  if (scheme === 'basic' && value.length > 0) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':'); // RFC 7617 §2: the user-id cannot contain a colon; the password may
    if (colon > 0) return { user: decoded.slice(0, colon), token: decoded.slice(colon + 1) };
  }
  throw new EnrollError('unauthorized', 'Authorization must be Basic base64(<device id>:<bootstrap token>) or Bearer <bootstrap token>');
}
