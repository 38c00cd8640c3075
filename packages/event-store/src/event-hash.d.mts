export declare const GENESIS_HASH: string;
export declare const CURRENT_HASH_SCHEME: 2;
export declare function hashSchemeOf(metadata: Record<string, unknown>): unknown;
export declare function genesisHash(scheme: 1 | 2, stream: string): string;
export declare function eventHash(e: {
  stream: string; id: string; revision: number; prevHash: string; type: string; data: unknown;
  metadata: Record<string, unknown> & { recordedAt: string };
}): string;
