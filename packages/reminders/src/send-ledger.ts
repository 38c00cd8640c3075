// The send ledger: what the sender knows about a planned send outside the event log. Two facts,
// keyed by the planned send's id (review, date, offset, attendee):
//
// - a claim, taken atomically before the SMTP send and held for a bounded time, so two
//   processes handed the same job (BullMQ's lock lapsed during a long send) do not both mail it;
// - a "sent" marker, written right after SMTP accepted the mail, so a retry after a failed
//   ReminderSent append only records it, and a last attempt that failed to record still
//   records it as sent rather than failed.
//
// The Redis adapter shares both across processes; the memory one serves the embedded mode,
// where one process holds every send.
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { reminderJobId } from './bullmq-scheduler.js';

export type SentMarker = { messageId: string; sentAt: string };

export interface SendLedger {
  /** True if this caller now holds the send; false while another holds it. Lapses after `ttlMs`. */
  claim(plannedId: string, ttlMs: number): Promise<boolean>;
  /** Gives the claim back (a send that failed may be retried at once by anyone). */
  release(plannedId: string): Promise<void>;
  markSent(plannedId: string, marker: SentMarker): Promise<void>;
  sentMarker(plannedId: string): Promise<SentMarker | null>;
}

/** How long a "sent" marker is kept: longer than any reminder offset before its meeting. */
export const SENT_MARKER_TTL_MS = 45 * 86_400_000;

export function createMemorySendLedger(now: () => Date = () => new Date()): SendLedger {
  const claims = new Map<string, number>();
  const sent = new Map<string, SentMarker>();
  return {
    async claim(id, ttlMs) {
      const at = now().getTime();
      if ((claims.get(id) ?? -Infinity) > at) return false;
      claims.set(id, at + ttlMs);
      return true;
    },
    async release(id) {
      claims.delete(id);
    },
    async markSent(id, marker) {
      sent.set(id, marker);
    },
    async sentMarker(id) {
      return sent.get(id) ?? null;
    },
  };
}

/** Its own client, closed by `close()`; fails fast, so an outage fails the attempt rather than hanging it. */
export function createRedisSendLedger(options: { redisUrl: string; namespace: string }): SendLedger & { close(): Promise<void> } {
  const { namespace } = options;
  const redis = new Redis(options.redisUrl, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  const claimKey = (id: string) => `${namespace}:reminders:claim:${reminderJobId(id)}`;
  const sentKey = (id: string) => `${namespace}:reminders:sent:${reminderJobId(id)}`;
  // Each claim carries its own token, so a release after the claim lapsed and another process
  // took it does not free theirs.
  const tokens = new Map<string, string>();
  return {
    async claim(id, ttlMs) {
      const token = randomUUID();
      const ok = await redis.set(claimKey(id), token, 'PX', ttlMs, 'NX');
      if (ok !== 'OK') return false;
      tokens.set(id, token);
      return true;
    },
    async release(id) {
      const token = tokens.get(id);
      tokens.delete(id);
      if (!token) return;
      await redis.eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0", 1, claimKey(id), token);
    },
    async markSent(id, marker) {
      await redis.set(sentKey(id), JSON.stringify(marker), 'PX', SENT_MARKER_TTL_MS);
    },
    async sentMarker(id) {
      const raw = await redis.get(sentKey(id));
      return raw ? (JSON.parse(raw) as SentMarker) : null;
    },
    async close() {
      await redis.quit().catch(() => undefined);
    },
  };
}
