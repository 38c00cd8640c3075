// Calls to the service's own API with the key kept for this browser session only.
const KEY = 'cm.apiKey';

export const storedKey = (): string | null => sessionStorage.getItem(KEY);
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

export type Me = {
  name: string;
  role: 'viewer' | 'editor' | 'auditor' | 'admin';
  parties: string[];
  auth: 'on' | 'off';
  may: { read: boolean; command: boolean; audit: boolean };
};

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

export async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set('accept', 'application/json');
  const key = storedKey();
  if (key) headers.set('authorization', `Bearer ${key}`);
  const res = await fetch(path, { ...init, headers });
  if (!res.ok) {
    let code = 'http_error';
    let detail = `${res.status} ${res.statusText}`;
    try {
      const p = (await res.json()) as { code?: string; detail?: string; title?: string };
      code = p.code ?? code;
      detail = p.detail ?? p.title ?? detail;
    } catch {
      // not problem+json: keep the status line
    }
    throw new ApiError(res.status, code, detail);
  }
  return (await res.json()) as T;
}

export type CommitmentStatus = 'pending' | 'in_progress' | 'delayed' | 'implemented' | 'cancelled';
export const COMMITMENT_STATUSES: CommitmentStatus[] = ['pending', 'in_progress', 'delayed', 'implemented', 'cancelled'];

export type Review = { id: string; title: string; scheduledFor: string; status: string; agreementIds: string[]; location?: string | null };
export type Dashboard = {
  agreements: { total: number; byStatus: Record<string, number>; bySector: Record<string, { total: number; byStatus: Record<string, number> }> };
  commitments: { total: number; byStatus: Record<CommitmentStatus, number>; overdue: number };
  upcomingReviews: Review[];
};
export type Commitment = {
  id: string; agreementId: string; title: string; responsible: { party: string; institution: string };
  dueDate: string; originalDueDate: string; status: CommitmentStatus; overdue: boolean; progress: number;
  agreementTitle?: string; sector?: string; delays?: { reason: string; newDueDate: string; previousDueDate?: string }[];
};
export type Page<T> = { items: T[]; total: number; nextCursor: string | null };
export type AgreementSummary = {
  id: string; title: string; sector: string; parties: string[]; signedAt: string; session?: { name: string; date: string } | null;
  status: string; statusReason: string; progress: number; nextReviewAt: string | null; revision: number;
};
export type AgreementDetail = AgreementSummary & {
  summary?: string | null;
  commitments: Commitment[];
  reviews: { id: string; title: string; scheduledFor: string; status: string }[];
};
export type HistoryEvent = {
  revision: number; type: string; data: Record<string, unknown>; metadata: Record<string, unknown>;
  occurredAt?: string; recordedAt?: string; hash?: string;
};
export type Integrity = { valid: boolean; events: number; lastHash: string | null; reason?: string | null; firstInvalidRevision?: number | null };

export function query(params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}
