export * from './device-id.js';
export * from './problems.js';
export * from './reasons.js';
export * from './routes.js';
export * from './schemas.js';
export * from './serial.js';
export * from './topics.js';
export * from './profiles.js';
