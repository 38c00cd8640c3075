export * from './documents';
export * from './ledger-projection';
export * from './read-store';
export * from './views';
export * from './queries';
export * from './projector';
export * from './redis-read-store';
export * from './projection-lease';
