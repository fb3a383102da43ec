// The renewal use case (docs/architecture.md §8): one core behind REST, EST simplereenroll and MQTT.
//
// Authenticated by the current certificate (RFC 7030 §3.3.2): it must be ours (signed by the issuing CA and recorded
// under its serial, byte for byte), issued, unrevoked and inside its validity. The TLS layer alone is never trusted:
// the API listener accepts any client certificate (requestCert without rejectUnauthorized), and a broker session may
// have outlived its certificate's revocation by milliseconds, so the database has the last word.
//
// Then the CSR: it may name only the device of the current certificate (RFC 7030 §4.2.2; names are never copied),
// must carry a new key, and is issued in Boulder order (intent row, naming the predecessor, committed before signing).
// One successor per certificate: the predecessor row is locked and a unique index backs it up (ROT-05).
import { X509Certificate } from 'node:crypto';
import { routes, type EnrollResponse } from '@enrolld/protocol';
import { assertCsrNamesIdentity, parseCsrAsync } from '../ca/index.js';
import type { Clock } from '../clock.js';
import type { IssuingCas } from '../environments/ports.js';
import { toPem } from '../ca/der.js';
import type { IssuedCertificateEvent } from '../admission/ports.js';
import { buildIntent, issuedResponse, signAndRecord } from '../issuance.js';
import { EnrollError } from '../errors.js';
import type { IssuedCertificate } from '../ports.js';
import { normalizeSerial } from '../revocation/serial.js';
import { assertRenewableAfterExpiry, type ExpiredRenewalPolicy } from './expired-policy.js';
import type { PendingSupersession, RenewalCertificate, RenewalStore } from './ports.js';
import { checkPopLinking, type ChannelBinding, type PopLinkingPolicy } from './pop-linking.js';

export type RenewalTransport = 'rest' | 'est' | 'mqtt';
export type RenewalOutcome = 'issued' | 'replayed' | 'rejected' | 'failed';

/** How the caller proved it holds the current certificate. */
export type RenewalCredential =
  /** The client certificate of the TLS connection (REST, EST). Absent when the client sent none. */
  | { kind: 'certificate'; der: Buffer | undefined }
  /** A broker session whose certificate the broker verified at CONNECT (MQTT); re-checked against the store here. */
  | { kind: 'session'; deviceId: string; serial: string };

export interface RenewalPolicy {
  certificateLifetimeSeconds: number;
  backdateSeconds: number;
  /** RENEWAL_WINDOW: the answer's renewAfter for a certificate whose profile sets no window. */
  renewalWindowFraction: number;
  /** A pending successor intent younger than this belongs to a request still signing it. */
  inFlightSeconds: number;
  /** How long a request with the same CSR waits for a concurrent one to finish signing before it answers 409. */
  waitForInFlightMs: number;
  expired: ExpiredRenewalPolicy;
  /** RFC 7030 §3.5 linking, applied to requests that come with a channel binding (EST). */
  popLinking: PopLinkingPolicy;
}

export interface RenewalDeps {
  store: RenewalStore;
  /** Each environment's issuing CA: a renewal is signed by the CA of the current certificate's environment. */
  cas: Pick<IssuingCas, 'forIssuance' | 'issuerOf'>;
  clock: Clock;
  policy: RenewalPolicy;
  /** A new successor was issued (not for replays): the in-process lineage learns it at once. */
  onRenewed?: (renewal: PendingSupersession) => void;
  /** A signed successor was stored: an in-process broker admits it before the answer goes out. */
  onIssued?: (event: IssuedCertificateEvent) => void;
  onOutcome?: (transport: RenewalTransport, outcome: RenewalOutcome, seconds: number) => void;
}

export interface RenewInput {
  credential: RenewalCredential;
  csr: string | Buffer;
  transport: RenewalTransport;
  /** The TLS channel binding of the connection the CSR came on, when the transport has one (RFC 7030 §3.5). */
  channelBinding?: ChannelBinding | undefined;
  /** Apply the PoP-linking policy (EST). */
  popLinking?: boolean;
  /** The environment the request was addressed to (an EST label): a certificate of another one is refused. */
  environment?: string | undefined;
}

export interface RenewContext {
  requestId?: string | undefined;
}

export interface RenewResult {
  response: EnrollResponse;
  replayed: boolean;
  predecessorSerial: string;
  certificateDer: Buffer;
}

const NO_CERT = 'renewal is authenticated by the current certificate: present it as the TLS client certificate (RFC 7030 §3.3.2)';
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Claim {
  serial: string;
  deviceId?: string;
  der?: Buffer;
  /** The environment whose issuing CA signed the presented certificate. */
  environment?: string;
}

export function createRenewal(deps: RenewalDeps) {
  const { store, cas, clock, policy } = deps;

  /**
   * What the credential claims, checked without the store: for a TLS client certificate, that one of our issuing CAs
   * signed it (ROT-06: a certificate from another CA, however well-formed, proves nothing here).
   */
  async function claimOf(credential: RenewalCredential): Promise<Claim> {
    if (credential.kind === 'session') return { serial: credential.serial, deviceId: credential.deviceId };
    if (!credential.der || credential.der.length === 0) throw new EnrollError('unauthorized', NO_CERT);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(credential.der);
    } catch {
      throw new EnrollError('unauthorized', 'the client certificate could not be parsed');
    }
    const environment = await cas.issuerOf(cert);
    if (environment === undefined) {
      throw new EnrollError('unauthorized', 'the client certificate was not issued by this CA; renew with the certificate this server issued');
    }
    return { serial: normalizeSerial(cert.serialNumber), der: credential.der, environment };
  }

  /**
   * The stored row must be the claimed certificate: issued, byte for byte the one presented (so by the issuing CA of
   * its environment), of the session's device.
   */
  function assertAuthentic(claim: Claim, stored: RenewalCertificate): void {
    const issued = stored.der !== null;
    const sameDer = claim.der === undefined || (stored.der !== null && stored.der.equals(claim.der));
    const sameDevice = claim.deviceId === undefined || claim.deviceId === stored.deviceId;
    const sameEnvironment = claim.environment === undefined || claim.environment === stored.environment;
    if (!issued || !sameDer || !sameDevice || !sameEnvironment) {
      throw new EnrollError('unauthorized', 'the client certificate is not on record', {
        logDetail: `serial ${claim.serial}: issued=${issued} sameDer=${sameDer} sameDevice=${sameDevice} sameEnvironment=${sameEnvironment}`,
      });
    }
  }

  function assertEligible(current: RenewalCertificate, now: Date): void {
    if (current.revokedAt) {
      const superseded = current.revocationReason === 4; // RFC 5280 §5.3.1 superseded
      throw new EnrollError(
        'revoked',
        superseded
          ? `certificate ${current.serial} was superseded by a renewal; use its successor`
          : `certificate ${current.serial} is revoked and cannot be renewed`,
        { extensions: { serial: current.serial, revokedAt: current.revokedAt.toISOString() } },
      );
    }
    if (now.getTime() < current.notBefore.getTime()) {
      // RFC 5280 §4.1.2.5: not valid yet (a clock problem on one side, or a certificate issued with a future notBefore).
      throw new EnrollError('forbidden', `certificate ${current.serial} is not valid before ${current.notBefore.toISOString()}`);
    }
    // RFC 5280 §4.1.2.5: notAfter is inclusive.
    if (now.getTime() > current.notAfter.getTime()) {
      assertRenewableAfterExpiry(policy.expired, current.serial, current.notAfter, now, routes.enroll);
    }
  }

  async function renewOnce(input: RenewInput, context: RenewContext): Promise<RenewResult> {
    const claim = await claimOf(input.credential);
    const csr = await parseCsrAsync(input.csr);
    if (input.popLinking) checkPopLinking(policy.popLinking, csr.der, input.channelBinding);

    // Everything that depends on the stored predecessor runs on the row as locked for this renewal (ROT-03: a
    // revocation committed a moment ago is seen; the broker's view and the TLS layer are never the authority).
    let serial = claim.serial; // as stored, once the row is read (a high-bit serial keeps its leading "00")
    const authorize = (current: RenewalCertificate): void => {
      assertAuthentic(claim, current);
      serial = current.serial;
      if (input.environment !== undefined && input.environment !== current.environment) {
        throw new EnrollError('bad-request', `certificate ${current.serial} belongs to environment "${current.environment}", not "${input.environment}"`);
      }
      assertEligible(current, clock.now());
      // RFC 7030 §4.2.2: the identity stays the same; the CSR may leave its names empty or name exactly this identity.
      assertCsrNamesIdentity(csr, current.kind, current.deviceId);
      // RFC 7030 §4.2.2: "the Subject … MUST be identical": an empty subject is not (an enrollment may send one, a
      // re-enrollment may not). The SAN may be left out: the certificate's SAN always comes from the record, and some
      // clients cannot write a URI SAN at all (strongSwan `pki --req --san` encodes it as an empty GeneralNames).
      if (csr.requested.commonNames.length === 0) {
        throw new EnrollError('identity-mismatch', `the re-enrollment CSR must keep the subject of the current certificate: CN=${current.deviceId} (RFC 7030 §4.2.2)`);
      }
      if (csr.publicKeySha256.equals(current.publicKeySha256)) {
        throw new EnrollError('bad-key', 'renewal needs a new key: the CSR carries the public key of the current certificate. Generate a new key pair and sign the CSR with it', {
          extensions: { serial: current.serial },
        });
      }
    };

    const deadline = Date.now() + policy.waitForInFlightMs;
    for (let attempt = 0; ; attempt++) {
      const begun = await store.beginRenewal({
        predecessorSerial: claim.serial,
        csrSha256: csr.sha256,
        publicKeySha256: csr.publicKeySha256,
        inFlightSeconds: policy.inFlightSeconds,
        authorize,
        // The successor keeps the lineage's kind, environment, profile (at its current version) and group: a renewal never
        // changes what an identity is, the same issuing CA signs it, and nothing the CSR asks for is read.
        buildIntent: async (locked) =>
          buildIntent(await cas.forIssuance(locked.environment), clock, policy, {
            kind: locked.kind,
            deviceId: locked.deviceId,
            environment: locked.environment,
            profile: locked.profileTerms,
            profileName: locked.profile,
            group: locked.group,
            predecessorSerial: locked.serial,
          }, csr),
      });
      switch (begun.outcome) {
        case 'begun':
        case 'resume': {
          const resumed = begun.outcome === 'resume';
          const ca = await cas.forIssuance(begun.intent.environment);
          const cert = await signAndRecord(ca, store.complete, begun.intent, csr, { requestId: context.requestId, resumed });
          const predecessorSerial = begun.intent.predecessorSerial ?? serial;
          deps.onIssued?.({ serial: cert.serial, deviceId: cert.deviceId, notAfterMs: cert.notAfter.getTime(), predecessorSerial });
          deps.onRenewed?.({ successorSerial: cert.serial, predecessorSerial, deviceId: cert.deviceId, issuedAt: clock.now() });
          return { response: issuedResponse(cert, ca.chainPem, policy), replayed: resumed, predecessorSerial, certificateDer: cert.der };
        }
        case 'replay': {
          const chainPem = (await cas.forIssuance(begun.certificate.environment)).chainPem;
          return { response: issuedResponse(begun.certificate, chainPem, policy), replayed: true, predecessorSerial: serial, certificateDer: begun.certificate.der };
        }
        case 'in-progress':
          // Same CSR as a request that is signing right now: wait for it, so every such request gets the same
          // certificate (ROT-05 "all get the same cert") instead of a 409.
          if (Date.now() < deadline) {
            await sleep(Math.min(10 * 2 ** attempt, 100));
            continue;
          }
          throw new EnrollError('conflict', 'a renewal with this CSR is still being processed; retry shortly', { retryAfterSeconds: 1 });
        case 'successor-exists':
          throw new EnrollError(
            'conflict',
            `certificate ${serial} was already renewed (successor ${begun.successorSerial}) with a different CSR; one certificate has one successor. Retry with the same CSR to receive it again, or renew with the successor`,
            { extensions: { serial, successorSerial: begun.successorSerial } },
          );
        case 'key-reused':
          throw new EnrollError('bad-key', 'renewal needs a new key: this public key is already certified. Generate a new key pair', {
            logDetail: `key already in certificate ${begun.serial}`,
          });
        case 'revoked':
          throw new EnrollError('revoked', `certificate ${serial} is revoked and cannot be renewed`, {
            extensions: { serial, revokedAt: begun.revokedAt.toISOString() },
          });
        case 'not-found':
          throw new EnrollError('unauthorized', 'the client certificate is not on record', { logDetail: `serial ${claim.serial} unknown` });
      }
    }
  }

  return {
    async renew(input: RenewInput, context: RenewContext = {}): Promise<RenewResult> {
      const started = performance.now();
      const finish = (outcome: RenewalOutcome) => deps.onOutcome?.(input.transport, outcome, (performance.now() - started) / 1000);
      try {
        const result = await renewOnce(input, context);
        finish(result.replayed ? 'replayed' : 'issued');
        return result;
      } catch (error) {
        const isClientFault = error instanceof EnrollError && error.kind !== 'internal' && error.kind !== 'unavailable';
        finish(isClientFault ? 'rejected' : 'failed');
        throw error;
      }
    },
  };
}

export type Renewal = ReturnType<typeof createRenewal>;
