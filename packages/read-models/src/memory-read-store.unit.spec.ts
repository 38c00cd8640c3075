// The memory adapter against the read-store contract every adapter passes.
import { readStoreContract } from './contract/read-store-contract.js';
import { createMemoryReadStore } from './read-store.js';

readStoreContract('memory', async () => {
  const store = createMemoryReadStore();
  return { store, cleanup: () => store.close() };
});
