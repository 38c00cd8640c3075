export declare const GENESIS_HASH: string;
export declare function eventHash(prevHash: string, type: string, data: unknown, metadata: Record<string, unknown> & { recordedAt: string }): string;
