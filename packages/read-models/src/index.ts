export * from './documents';
export * from './ledger-projection';
export * from './read-store';
export * from './views';
export * from './queries';
export * from './projector';
