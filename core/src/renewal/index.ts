// Rotation: renewal, lineage, the renewal-window sweep, EST enrollment and RFC 7030 §3.5 linking.
export { createRenewal } from './renewal.js';
export type { Renewal, RenewalCredential, RenewalOutcome, RenewalPolicy, RenewalTransport, RenewContext, RenewInput, RenewResult } from './renewal.js';
export { createLineage } from './lineage.js';
export type { Lineage, LineageRevoker, SupersedeTrigger } from './lineage.js';
export { createRotationSweep } from './rotation-sweep.js';
export type { DueHint, RotationSweep, RotationSweepPolicy } from './rotation-sweep.js';
export { createEstEnrollment } from './est-enrollment.js';
export type { EstEnrollment, SimpleEnrollInput } from './est-enrollment.js';
export { assertRenewableAfterExpiry } from './expired-policy.js';
export type { ExpiredRenewalMode, ExpiredRenewalPolicy } from './expired-policy.js';
export { checkPopLinking, csrChallengePassword } from './pop-linking.js';
export type { ChannelBinding, PopLinkingPolicy } from './pop-linking.js';
export type * from './ports.js';
