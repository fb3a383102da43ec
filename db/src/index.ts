export { createPool, isDatabaseUnavailable } from './pool.js';
export type { PoolOptions } from './pool.js';
export { migrate } from './migrate.js';
export { createPgRevocationStore, createPgRevocationListener } from './revocation-store.js';
export type * from './revocation-store.js';
