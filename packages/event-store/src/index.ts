export * from './event-store';
export * from './hash-chain';
export * from './sqlite-event-store';
export * from './idempotency-store';
export * from './esdb-event-store';
export * from './redis-idempotency-store';
export * from './bundle';
export * from './bundle-export';
