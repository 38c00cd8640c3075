// Configuration from the environment, validated once at start. An empty variable counts as
// unset; a bad value stops the start with one line naming the variable.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';

const durationPattern = /^(\d+)(s|m|h|d|w)$/;
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

export function parseDuration(s: string): number {
  const m = durationPattern.exec(s);
  if (!m) throw new Error(`not a duration: ${s}`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

const ROLE_NAMES = ['api', 'projector', 'reminders'] as const;
export type Role = (typeof ROLE_NAMES)[number];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '::1', 'localhost']);
export const isLoopbackHost = (host: string) => LOOPBACK_HOSTS.has(host) || (isIP(host) === 4 && host.startsWith('127.'));

/** postgres://user@host[:port]/db or postgresql://...: a URL with a host and a database name. */
export function isPostgresUrl(u: string): boolean {
  if (!/^postgres(ql)?:\/\//.test(u)) return false;
  try {
    const url = new URL(u);
    return url.hostname !== '' && url.pathname.length > 1;
  } catch {
    return false;
  }
}

const configSchema = z
  .object({
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('127.0.0.1'),
    DATA_DIR: z.string().min(1).default('./data'),
    EVENT_STORE_URL: z
      .string()
      .refine(
        (u) => /^(esdb|kurrentdb|esdb\+discover|kurrentdb\+discover):\/\//.test(u) || /^(sqlite:|file:)/.test(u) || isPostgresUrl(u),
        'must be postgres://user@host:5432/db, esdb://... or sqlite:<path>',
      )
      .optional(),
    REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be redis://host:port').optional(),
    REDIS_NAMESPACE: z.string().regex(/^[A-Za-z0-9_.-]{1,40}$/, 'must be 1-40 letters, digits, dots, dashes or underscores').default('cm'),
    SMTP_URL: z.string().regex(/^smtps?:\/\//, 'must be smtp://... or smtps://...').optional(),
    MAIL_FROM: z.string().min(3).default('Commitment monitor <monitor@localhost>'),
    REMINDER_OFFSETS: z
      .string()
      .default('7d,1d')
      .refine((s) => s.split(',').every((p) => durationPattern.test(p.trim())), 'must be a comma-separated list like 7d,1d,12h'),
    ROLES: z
      .string()
      .default('api,projector,reminders')
      .refine((s) => s.split(',').every((r) => (ROLE_NAMES as readonly string[]).includes(r.trim())), `must list roles among ${ROLE_NAMES.join(', ')}`),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    API_KEYS_FILE: z.string().min(1).optional(),
    AUTH: z.enum(['on', 'off']).default('on'),
    RATE_LIMIT: z
      .string()
      .default('1200/1m')
      .refine((s) => s === 'off' || /^[1-9]\d{0,9}\/\d+(s|m|h)$/.test(s), 'must be <requests>/<window> such as 1200/1m or 50/10s, or off'),
    CORS_ORIGINS: z
      .string()
      .refine((s) => s.split(',').every((o) => /^https?:\/\/[^/\s]+$/.test(o.trim())), 'must be a comma-separated list of origins such as https://tool.example.org (scheme and host, no path)')
      .optional(),
    PUBLIC_URL: z.url().optional(),
    WITNESS_KEYS: z.string().regex(/^\s*[^\s+,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\s*(,\s*[^\s+,]+\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+\s*)*$/, 'must be a comma-separated list of cosigner keys <name>+<hex id>+<base64 key>').optional(),
    LOG_ORIGIN: z.string().regex(/^[^\s+]{1,200}$/, 'must be a name without spaces or +, such as ledger.example.org').optional(),
    WEBHOOK_ALLOW_HOSTS: z
      .string()
      .refine((s) => s.split(',').every((h) => /^[A-Za-z0-9.-]+$/.test(h.trim())), 'must be a comma-separated list of host names such as hooks.internal.example.gov')
      .optional(),
    BODY_LIMIT: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024),
  })
  .superRefine((c, ctx) => {
    if (c.AUTH === 'off' && !isLoopbackHost(c.HOST)) {
      ctx.addIssue({ code: 'custom', path: ['AUTH'], message: `AUTH=off is allowed only when HOST is a loopback address, not ${c.HOST}` });
    }
  });

export type Config = {
  port: number;
  host: string;
  dataDir: string;
  eventStore: { kind: 'sqlite'; path: string } | { kind: 'esdb'; url: string } | { kind: 'postgres'; url: string };
  redisUrl: string | null;
  /** Prefix of every Redis key of this deployment (read models, lease). */
  redisNamespace: string;
  smtpUrl: string | null;
  mailFrom: string;
  reminderOffsets: { label: string; ms: number }[];
  roles: Set<Role>;
  logLevel: string;
  apiKeysFile: string | null;
  auth: 'on' | 'off';
  /** Requests per key (or per address without a key) per window; null when off. */
  rateLimit: { max: number; windowMs: number } | null;
  corsOrigins: string[];
  publicUrl: string | null;
  /** The checkpoints' origin line and key name (LOG_ORIGIN); null: derived from PUBLIC_URL. */
  logOrigin: string | null;
  /** The witnesses' cosigner keys (WITNESS_KEYS), as given. */
  witnessKeys: string[];
  bodyLimit: number;
  /** Hosts webhook deliveries may reach though they resolve to private addresses. */
  webhookAllowHosts: string[];
};

export class ConfigError extends Error {}

export function loadConfig(env: Record<string, string | undefined>): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v.trim() !== '').map(([k, v]) => [k, v!.trim()]));
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const name = String(issue.path[0] ?? 'configuration');
    throw new ConfigError(`invalid configuration: ${name}=${JSON.stringify(cleaned[name] ?? '')}: ${issue.message}`);
  }
  const c = parsed.data;
  const dataDir = resolve(c.DATA_DIR);
  const esUrl = c.EVENT_STORE_URL;
  return {
    port: c.PORT,
    host: c.HOST,
    dataDir,
    eventStore: !esUrl
      ? { kind: 'sqlite', path: resolve(dataDir, 'events.sqlite') }
      : /^(sqlite|file):/.test(esUrl)
        ? { kind: 'sqlite', path: resolve(esUrl.replace(/^(sqlite|file):(\/\/)?/, '')) }
        : isPostgresUrl(esUrl)
          ? { kind: 'postgres', url: esUrl }
          : { kind: 'esdb', url: esUrl },
    redisUrl: c.REDIS_URL ?? null,
    redisNamespace: c.REDIS_NAMESPACE,
    smtpUrl: c.SMTP_URL ?? null,
    mailFrom: c.MAIL_FROM,
    reminderOffsets: c.REMINDER_OFFSETS.split(',').map((p) => ({ label: p.trim(), ms: parseDuration(p.trim()) })),
    roles: new Set(c.ROLES.split(',').map((r) => r.trim() as Role)),
    logLevel: c.LOG_LEVEL,
    apiKeysFile: c.API_KEYS_FILE ?? null,
    auth: c.AUTH,
    rateLimit: c.RATE_LIMIT === 'off' ? null : { max: Number(c.RATE_LIMIT.split('/')[0]), windowMs: parseDuration(c.RATE_LIMIT.split('/')[1]!) },
    corsOrigins: c.CORS_ORIGINS ? c.CORS_ORIGINS.split(',').map((o) => o.trim()) : [],
    publicUrl: c.PUBLIC_URL ?? null,
    logOrigin: c.LOG_ORIGIN ?? null,
    witnessKeys: c.WITNESS_KEYS ? c.WITNESS_KEYS.split(',').map((k) => k.trim()) : [],
    bodyLimit: c.BODY_LIMIT,
    webhookAllowHosts: c.WEBHOOK_ALLOW_HOSTS ? c.WEBHOOK_ALLOW_HOSTS.split(',').map((h) => h.trim()) : [],
  };
}
