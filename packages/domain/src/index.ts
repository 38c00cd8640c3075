export * from './errors';
export * from './primitives';
export * from './events';
export * from './agreement-decider';
export * from './review-decider';
export * from './status-rules';
export * from './decider';
export * from './access';
