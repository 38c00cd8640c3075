// Fixtures other workspaces' tests may use (as `@cm/read-models/testing`): a realistic mixed
// ledger written through the domain deciders. Never imported by production code.
export { createLedgerWriter, type LedgerWriter } from './ledger-writer.js';
export { createRandom, writeMixedLedger, type MixedLedger } from './mixed-ledger.js';
