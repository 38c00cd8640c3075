// The dashboard: the page built from web/ (pnpm build, or pnpm start when it is missing or
// older than its sources) served by the service itself at GET /, from the same origin as the
// API it calls. The page needs no key (it asks for one); hashed assets are cached for a year,
// index.html is revalidated every time, and the page's Content-Security-Policy admits only
// this origin (no inline script or style, no CDN).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';

/** Where `pnpm build` puts the page, from services/api/src/routes or services/api/dist/routes alike. */
export const DEFAULT_WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../../../web/dist');

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const webRoutes: FastifyPluginAsync<{ webRoot?: string | undefined }> = async (app, options) => {
  const root = options.webRoot ?? DEFAULT_WEB_ROOT;
  const indexFile = join(root, 'index.html');

  app.get('/', { schema: { hide: true }, config: { access: 'public' } }, async (_request, reply) => {
    if (!existsSync(indexFile)) {
      reply.code(503).header('cache-control', 'no-store').header('retry-after', '60').type('text/plain; charset=utf-8');
      return 'The dashboard is not built: run `pnpm build` (or `pnpm start`, which builds it when missing), then reload this page.\n' +
        'The API itself works: see /docs.\n';
    }
    reply.header('cache-control', 'no-cache').header('content-security-policy', DASHBOARD_CSP).type('text/html; charset=utf-8');
    return readFileSync(indexFile, 'utf8');
  });

  // Vite names every asset after its content's hash: a changed file has a new name.
  const assets = join(root, 'assets');
  if (existsSync(assets)) {
    await app.register(fastifyStatic, {
      root: assets,
      prefix: '/assets/',
      wildcard: true,
      index: false,
      immutable: true,
      maxAge: '365d',
      schemaHide: true,
    });
  }
};
