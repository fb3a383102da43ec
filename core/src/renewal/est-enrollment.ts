// EST simpleenroll (RFC 7030 §4.2.1) on top of the enrollment use case. The bootstrap token arrives as the HTTP Basic
// password with the device id as user (or as a Bearer token). The user must be the token's device: that is checked
// before the token is spent, and a mismatch gets the same answer as a bad token, so it tells nothing about either.
import type { Enrollment, EnrollContext, EnrollResult } from '../enroll.js';
import { decodeCsr } from '../ca/index.js';
import { EnrollError } from '../errors.js';
import { hashSecret } from '../secrets.js';
import type { TokenDeviceLookup } from './ports.js';
import { checkPopLinking, type ChannelBinding, type PopLinkingPolicy } from './pop-linking.js';

export interface EstEnrollmentDeps {
  enrollment: Pick<Enrollment, 'enroll'>;
  tokens: TokenDeviceLookup;
  popLinking: PopLinkingPolicy;
}

export interface SimpleEnrollInput {
  /** HTTP Basic user; undefined for Bearer. */
  user: string | undefined;
  token: string;
  csr: string | Buffer;
  channelBinding: ChannelBinding | undefined;
}

const BAD_TOKEN = 'bootstrap token is not valid';

export function createEstEnrollment(deps: EstEnrollmentDeps) {
  return {
    async simpleEnroll(input: SimpleEnrollInput, context: EnrollContext = {}): Promise<EnrollResult> {
      if (input.token.length === 0 || input.token.length > 256) throw new EnrollError('unauthorized', BAD_TOKEN);
      if (input.user !== undefined) {
        const owner = await deps.tokens.deviceOfToken(hashSecret(input.token));
        if (owner !== input.user) {
          throw new EnrollError('unauthorized', BAD_TOKEN, { logDetail: owner === undefined ? 'token unknown' : 'Basic user is not the token\'s device' });
        }
      }
      if (deps.popLinking !== 'off') {
        // Checked before the token is spent: a CSR without the right binding must not burn it (RFC 7030 §3.5).
        // decodeCsr checks the structure first, so a malformed CSR is bad-csr here as it would be in enroll().
        checkPopLinking(deps.popLinking, decodeCsr(input.csr).der, input.channelBinding);
      }
      return deps.enrollment.enroll({ token: input.token, csr: input.csr }, context);
    },
  };
}

export type EstEnrollment = ReturnType<typeof createEstEnrollment>;
