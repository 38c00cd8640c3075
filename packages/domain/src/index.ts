export * from './errors.js';
export * from './primitives.js';
export * from './events.js';
export * from './agreement-decider.js';
export * from './review-decider.js';
export * from './status-rules.js';
export * from './decider.js';
export * from './access.js';
