import type { EnrollResponse } from '@enrolld/protocol';
import type { IssuedCertificateEvent } from './admission/ports.js';
import { assertCsrNamesIdentity, parseCsrAsync } from './ca/index.js';
import type { Clock } from './clock.js';
import type { IssuingCas } from './environments/ports.js';
import { EnrollError } from './errors.js';
import { buildIntent, issuedResponse, signAndRecord } from './issuance.js';
import type { EnrollmentStore, IssuedCertificate } from './ports.js';
import { hashSecret } from './secrets.js';

export interface EnrollmentPolicy {
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
  /** RENEWAL_WINDOW: the answer's renewAfter for a certificate whose profile sets no window. */
  renewalWindowFraction: number;
  /** How long a spent token still answers a retry with the same CSR (TOK-07). */
  retryWindowSeconds: number;
  /** A pending intent younger than this belongs to a request still signing. */
  inFlightSeconds: number;
}

export interface EnrollmentDeps {
  store: EnrollmentStore;
  /** Each environment's issuing CA: the token's environment decides which one signs. */
  cas: Pick<IssuingCas, 'forIssuance'>;
  clock: Clock;
  policy: EnrollmentPolicy;
  /** Observes outcomes for metrics; never sees the token. */
  onOutcome?: (outcome: EnrollOutcome, seconds: number) => void;
  /** A signed certificate was stored: an in-process broker admits it before the answer goes out. */
  onIssued?: (event: IssuedCertificateEvent) => void;
}

export type EnrollOutcome = 'issued' | 'replayed' | 'rejected' | 'failed';

export interface EnrollResult {
  response: EnrollResponse;
  replayed: boolean;
}

export interface EnrollContext {
  requestId?: string | undefined;
  /** The environment the request was addressed to (an EST label): a token of another one is refused before it is spent. */
  environment?: string | undefined;
  /** The admin who spends the token on a caller's CSR (service and admin certificates); the audit row names them. */
  actor?: string | undefined;
}


/**
 * The RA's enrollment use case: token → identity, CSR → policy, intent → signature → record → answer.
 * The order follows Boulder's issuance cycle: nothing is signed before its row is committed (I1).
 */
export function createEnrollment(deps: EnrollmentDeps) {
  const { store, cas, clock, policy } = deps;


  return {
    async enroll(input: { token: string; csr: string | Buffer }, context: EnrollContext = {}): Promise<EnrollResult> {
      const started = performance.now();
      const finish = (outcome: EnrollOutcome) => deps.onOutcome?.(outcome, (performance.now() - started) / 1000);
      try {
        // The CSR is checked before the token is touched, so a malformed request never spends it.
        // The async parse imports the key through WebCrypto on the threadpool: 7.95× vs 7.44× pkijs in bench:issue.
        const csr = await parseCsrAsync(input.csr);
        const begun = await store.begin({
          tokenHash: hashSecret(input.token),
          csrSha256: csr.sha256,
          retryWindowSeconds: policy.retryWindowSeconds,
          inFlightSeconds: policy.inFlightSeconds,
          buildIntent: async (grant) => {
            if (context.environment !== undefined && context.environment !== grant.environment) {
              throw new EnrollError('bad-request', `this bootstrap token enrolls in environment "${grant.environment}", not "${context.environment}"`);
            }
            assertCsrNamesIdentity(csr, grant.kind, grant.deviceId);
            const ca = await cas.forIssuance(grant.environment);
            const subject = {
              kind: grant.kind, deviceId: grant.deviceId, environment: grant.environment, profile: grant.profileTerms, profileName: grant.profile, group: grant.group,
            };
            return buildIntent(ca, clock, policy, subject, csr);
          },
        });
        switch (begun.outcome) {
          case 'begun':
          case 'resume': {
            const ca = await cas.forIssuance(begun.intent.environment);
            const cert = await signAndRecord(ca, store.complete, begun.intent, csr, { requestId: context.requestId, actor: context.actor, resumed: begun.outcome === 'resume' });
            deps.onIssued?.({ serial: cert.serial, deviceId: cert.deviceId, notAfterMs: cert.notAfter.getTime() });
            finish('issued');
            return { response: issuedResponse(cert, ca.chainPem, policy), replayed: begun.outcome === 'resume' };
          }
          case 'replay':
            finish('replayed');
            return { response: issuedResponse(begun.certificate, (await cas.forIssuance(begun.certificate.environment)).chainPem, policy), replayed: true };
          case 'in-progress':
            throw new EnrollError('conflict', 'this enrollment is still being processed; retry shortly', {
              retryAfterSeconds: 1,
              logDetail: 'token spent by a request still in flight',
            });
          case 'csr-mismatch':
            throw new EnrollError('conflict', 'this bootstrap token was already used with a different CSR', {
              logDetail: `token for ${begun.deviceId} spent on another CSR`,
              extensions: { deviceId: begun.deviceId },
            });
          case 'rejected':
            // One answer for unknown, used and expired tokens; only the log says which.
            throw new EnrollError('unauthorized', 'bootstrap token is not valid', { logDetail: `token ${begun.reason}` });
        }
      } catch (error) {
        const isClientFault = error instanceof EnrollError && error.kind !== 'internal' && error.kind !== 'unavailable';
        finish(isClientFault ? 'rejected' : 'failed');
        throw error;
      }
    },
  };
}

export type Enrollment = ReturnType<typeof createEnrollment>;
