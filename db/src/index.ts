export { createPool, isDatabaseUnavailable } from './pool.js';
export type { PoolOptions } from './pool.js';
export { migrate } from './migrate.js';
