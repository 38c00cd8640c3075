// Webhook deliveries driven from the log: each subscription keeps a delivery cursor (a log
// position, checkpointed in SQLite after each delivered event, like a projection's), so a
// restart resumes after the last event the receiver acknowledged and never skips or reorders
// one. Events go out one at a time in log order (so in order per agreement), at least once: an
// event whose answer was lost is sent again, with the same `webhook-id` for the receiver to
// drop. A refused or failed delivery is retried with exponential backoff; after a day of
// failures the subscription is marked failing with the reason, and waits for an admin.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import type { EventStore, Position } from '@cm/event-store';
import { createFeedView, readFeedPage, type FeedEvent } from '../event-feed.js';
import { sign } from './signature.js';

export type WebhookSubscription = {
  id: string;
  url: string;
  types: string[];
  parties: string[];
  secret: string;
  status: 'active' | 'paused' | 'failing';
  /** The position of the last event the receiver acknowledged (null: none yet). */
  cursor: Position | null;
  attempts: number;
  firstFailureAt: string | null;
  nextAttemptAt: string | null;
  lastError: string | null;
  createdAt: string;
};

/** Subscriptions and their cursors, durably in SQLite (a row per subscription, its document as JSON). */
export function createWebhookStore(db: Database.Database) {
  db.exec('CREATE TABLE IF NOT EXISTS webhook_subscriptions (id TEXT PRIMARY KEY, doc TEXT NOT NULL)');
  const put = db.prepare<[string, string]>('INSERT INTO webhook_subscriptions (id, doc) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET doc = excluded.doc');
  const all = db.prepare<[], { doc: string }>('SELECT doc FROM webhook_subscriptions ORDER BY id');
  const one = db.prepare<[string], { doc: string }>('SELECT doc FROM webhook_subscriptions WHERE id = ?');
  const del = db.prepare<[string]>('DELETE FROM webhook_subscriptions WHERE id = ?');
  /** Changes the stored subscription in one transaction; null (and nothing written) when it is gone. */
  const update = db.transaction((id: string, change: (stored: WebhookSubscription) => WebhookSubscription): WebhookSubscription | null => {
    const row = one.get(id);
    if (!row) return null;
    const next = change(JSON.parse(row.doc) as WebhookSubscription);
    put.run(id, JSON.stringify(next));
    return next;
  });
  return {
    save(sub: WebhookSubscription) {
      put.run(sub.id, JSON.stringify(sub));
    },
    list: (): WebhookSubscription[] => all.all().map((r) => JSON.parse(r.doc) as WebhookSubscription),
    get(id: string): WebhookSubscription | null {
      const row = one.get(id);
      return row ? (JSON.parse(row.doc) as WebhookSubscription) : null;
    },
    remove: (id: string) => del.run(id).changes > 0,
    update,
    /**
     * Writes a delivery pass's progress (cursor, retry state, failing) onto the stored row: a
     * subscription deleted meanwhile stays deleted, and one paused meanwhile stays paused.
     */
    recordProgress(sub: WebhookSubscription): boolean {
      return update(sub.id, (stored) => ({
        ...stored, status: sub.status === 'failing' ? 'failing' : stored.status,
        cursor: sub.cursor, attempts: sub.attempts, firstFailureAt: sub.firstFailureAt, nextAttemptAt: sub.nextAttemptAt, lastError: sub.lastError,
      })) !== null;
    },
  };
}
export type WebhookStore = ReturnType<typeof createWebhookStore>;

export const RETRY_FOR_MS = 24 * 3_600_000;
const FIRST_RETRY_MS = 5_000;
const MAX_RETRY_MS = 3_600_000;
/** The wait before attempt `n + 1` after `n` failures: 5 s, 10 s, 20 s, ... at most an hour. */
export const backoffMs = (failures: number) => Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** Math.max(0, failures - 1));

/** Private, loopback, link-local and other non-public addresses, which a delivery never reaches unless its host is allowed. */
export function isPrivateAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (isIP(v4) === 4) {
    const [a, b] = v4.split('.').map(Number) as [number, number];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168)
      || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  const v6 = address.toLowerCase();
  return v6 === '::1' || v6 === '::' || v6.startsWith('fe8') || v6.startsWith('fe9') || v6.startsWith('fea') || v6.startsWith('feb')
    || v6.startsWith('fc') || v6.startsWith('fd') || v6.startsWith('ff');
}

export type DispatcherOptions = {
  eventStore: EventStore;
  store: WebhookStore;
  now: () => Date;
  logger: Logger;
  /** The service listens on a loopback address: `http://127.0.0.1:<port>` receivers are allowed. */
  allowLoopbackHttp: boolean;
  /** Hosts a delivery may reach even when they resolve to a private address (operators' own receivers). */
  allowHosts?: readonly string[];
  timeoutMs?: number;
};

/** Why `url` may not be delivered to, or null when it may (checked at registration and before every delivery). */
export async function refuseUrl(url: string, options: Pick<DispatcherOptions, 'allowLoopbackHttp' | 'allowHosts'>): Promise<string | null> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'is not a URL';
  }
  if (parsed.username || parsed.password) return 'must not carry credentials';
  const loopback = parsed.protocol === 'http:' && parsed.hostname === '127.0.0.1' && parsed.port !== '';
  if (loopback) return options.allowLoopbackHttp ? null : 'http://127.0.0.1 receivers are allowed only while the service listens on loopback';
  if (parsed.protocol !== 'https:') return 'must be https';
  if (options.allowHosts?.includes(parsed.hostname)) return null;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  let addresses: string[];
  try {
    addresses = isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address);
  } catch (err) {
    return `its host does not resolve (${(err as Error).message})`;
  }
  const inside = addresses.find(isPrivateAddress);
  return inside ? `its host resolves to a private or link-local address (${inside}); allow the host to deliver there` : null;
}

export function createWebhookDispatcher(options: DispatcherOptions) {
  const { eventStore, store, now, logger } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;

  /** One POST; null on a 2xx, else why it failed. Never follows a redirect; reads none of the answer. */
  async function post(sub: WebhookSubscription, event: FeedEvent): Promise<string | null> {
    const refused = await refuseUrl(sub.url, options);
    if (refused) return `the URL ${refused}`;
    const body = JSON.stringify(event);
    const timestamp = Math.floor(now().getTime() / 1000);
    try {
      const res = await fetch(sub.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          'content-type': 'application/json',
          'webhook-id': event.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': sign(sub.secret, event.id, timestamp, body),
        },
        body,
      });
      await res.body?.cancel();
      if (res.status >= 200 && res.status < 300) return null;
      return res.status >= 300 && res.status < 400 ? `answered ${res.status} (redirects are not followed)` : `answered ${res.status}`;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string } };
      return e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : `could not be reached (${e.cause?.code ?? e.message})`;
    }
  }

  /** Delivers what is due for one subscription, until it is caught up or a delivery fails. */
  async function deliver(sub: WebhookSubscription): Promise<void> {
    const view = createFeedView(eventStore, { name: `webhook:${sub.id}`, role: 'auditor', parties: sub.parties }, { types: sub.types });
    for (;;) {
      const page = await readFeedPage(eventStore, view, sub.cursor, 100);
      for (const event of page.events) {
        const failure = await post(sub, event);
        if (failure) {
          const at = now();
          sub.attempts += 1;
          sub.firstFailureAt ??= at.toISOString();
          sub.lastError = `event ${event.id} at position ${event.position}: the receiver ${failure}`;
          if (at.getTime() - Date.parse(sub.firstFailureAt) >= RETRY_FOR_MS) {
            sub.status = 'failing';
            sub.nextAttemptAt = null;
            logger.error({ webhook: sub.id, event: event.id, error: sub.lastError }, 'webhook failing: deliveries failed for a day; resume it once the receiver is fixed');
          } else {
            sub.nextAttemptAt = new Date(at.getTime() + backoffMs(sub.attempts)).toISOString();
            logger.warn({ webhook: sub.id, event: event.id, error: sub.lastError, nextAttemptAt: sub.nextAttemptAt }, 'webhook delivery failed; will retry');
          }
          store.recordProgress(sub);
          return;
        }
        sub.cursor = event.position;
        sub.attempts = 0;
        sub.firstFailureAt = null;
        sub.nextAttemptAt = null;
        if (!store.recordProgress(sub)) return;
      }
      // Events the subscription does not take are passed over too.
      if (page.next !== sub.cursor) {
        sub.cursor = page.next;
        if (!store.recordProgress(sub)) return;
      }
      if (!page.more) return;
    }
  }

  let running: Promise<void> | null = null;
  return {
    /** One pass over every active subscription whose next attempt is due; concurrent calls share it. */
    runOnce(): Promise<void> {
      if (running) return running;
      const pass = (async () => {
        for (const sub of store.list()) {
          if (sub.status !== 'active') continue;
          if (sub.nextAttemptAt && Date.parse(sub.nextAttemptAt) > now().getTime()) continue;
          await deliver(sub);
        }
      })();
      // Cleared once the pass is over (never inside it: a pass with nothing to do ends before it is stored).
      running = pass.finally(() => {
        running = null;
      });
      return running;
    },
  };
}
