export { createPool, isDatabaseUnavailable } from './pool.js';
export type { PoolOptions } from './pool.js';
export { migrate } from './migrate.js';
export { createPgRevocationStore, createPgRevocationListener } from './revocation-store.js';
export type * from './revocation-store.js';
export { createPgRenewalStore, createPgRotationListener, RENEWAL_CHANNEL, ROTATION_HINT_CHANNEL } from './renewal-store.js';
export type * from './renewal-store.js';
