// Webhook subscriptions (admin only): register, list, pause, resume, delete. Deliveries are the
// dispatcher's (webhooks/webhook-dispatcher.ts); a subscription starts from the log's head, so
// it hears what happens from its registration on (page the feed for what came before).
import { randomBytes } from 'node:crypto';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { NotFoundError, ValidationError, party, slug } from '@cm/domain';
import type { AppDeps } from '../deps.js';
import { answerCommand } from '../http-support.js';
import { EVENT_TYPES } from '../event-feed.js';
import { SECRET_PATTERN, generateSecret } from '../webhooks/signature.js';
import { refuseUrl, type WebhookSubscription } from '../webhooks/webhook-dispatcher.js';

const webhookInput = z.strictObject({
  url: z.string().max(2000).describe('https, or http://127.0.0.1:<port> while the service listens on loopback'),
  types: z.array(z.enum(EVENT_TYPES as [string, ...string[]])).max(50).default([]).describe('Event types to deliver; all when empty'),
  parties: z.array(party).max(50).default([]).describe('Deliver only events of agreements one of these parties is a party to (and reviews of them, cut); all when empty'),
  secret: z.string().regex(SECRET_PATTERN, 'must be whsec_ followed by at least 24 bytes in base64').optional().describe('Generated when omitted'),
});

const webhookView = z.object({
  id: z.string(),
  url: z.string(),
  types: z.array(z.string()),
  parties: z.array(z.string()),
  status: z.enum(['active', 'paused', 'failing']),
  cursor: z.string().nullable().describe('The position of the last event the receiver acknowledged'),
  attempts: z.number().int().describe('Failed attempts at the current event'),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable().describe('Why the last delivery failed'),
  createdAt: z.string(),
});
const created = webhookView.extend({ secret: z.string().describe('Shown this once: keep it to verify signatures') });
const params = z.object({ id: slug });

const view = ({ secret: _secret, firstFailureAt: _first, ...rest }: WebhookSubscription) => rest;
const ADMIN = { access: 'manage' as const };
const NOT_FOUND = { 404: ['webhook_not_found'] };

export const webhookRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const hooks = deps.webhooks;
  if (!hooks) return;
  const { store } = hooks;
  const find = (id: string) => {
    const sub = store.get(id);
    if (!sub) throw new NotFoundError(`webhook ${id} not found`, 'webhook_not_found');
    return sub;
  };

  app.post('/v1/webhooks', {
    config: ADMIN,
    schema: {
      tags: ['events'], operationId: 'createWebhook', summary: 'Register a webhook subscription (admin)',
      description: 'Each matching event from now on is POSTed to `url`, signed per Standard Webhooks (see docs/api.md). The answer shows the secret this once (and to a repeat under the same `Idempotency-Key`).',
      body: webhookInput, response: { 201: created }, problems: { 400: ['invalid_input'] },
    },
  }, async (request, reply) => answerCommand(request, reply, deps, async () => {
    const refused = await refuseUrl(request.body.url, hooks);
    if (refused) throw new ValidationError(`url ${refused}`, [{ path: 'url', message: refused }]);
    const sub: WebhookSubscription = {
      id: `wh-${randomBytes(6).toString('hex')}`, url: request.body.url, types: request.body.types, parties: request.body.parties,
      secret: request.body.secret ?? generateSecret(), status: 'active', cursor: await deps.eventStore.headPosition(),
      attempts: 0, firstFailureAt: null, nextAttemptAt: null, lastError: null, createdAt: deps.now().toISOString(),
    };
    store.save(sub);
    request.log.info({ webhook: sub.id, url: sub.url }, 'webhook registered');
    // A repeat under the same Idempotency-Key answers this, secret included, without a second subscription.
    return { status: 201, headers: { location: `/v1/webhooks/${sub.id}` }, body: { ...view(sub), secret: sub.secret } };
  }));

  app.get('/v1/webhooks', {
    config: ADMIN,
    schema: { tags: ['events'], operationId: 'listWebhooks', summary: 'Webhook subscriptions and how their deliveries stand (admin)', response: { 200: z.object({ items: z.array(webhookView) }) } },
  }, async () => ({ items: store.list().map(view) }));

  for (const [action, status, name] of [['pause', 'paused', 'pauseWebhook'], ['resume', 'active', 'resumeWebhook']] as const) {
    app.post(`/v1/webhooks/:id/${action}`, {
      config: ADMIN,
      schema: {
        tags: ['events'], operationId: name, summary: action === 'pause' ? 'Pause deliveries (admin)' : 'Resume deliveries, of a paused or failing subscription, from its cursor (admin)',
        params, body: z.strictObject({}).optional(), response: { 200: webhookView }, problems: { ...NOT_FOUND, 400: ['invalid_input'] },
      },
    }, async (request) => {
      // Read and written in one transaction, so a delivery pass's cursor moved meanwhile is kept.
      const sub = store.update(request.params.id, (stored) => ({
        ...stored, status, ...(status === 'active' ? { attempts: 0, firstFailureAt: null, nextAttemptAt: null } : {}),
      })) ?? find(request.params.id);
      if (status === 'active') void hooks.dispatcher.runOnce().catch((err: unknown) => request.log.error({ err }, 'webhook deliveries failed'));
      return view(sub);
    });
  }

  app.delete('/v1/webhooks/:id', {
    config: ADMIN,
    schema: { tags: ['events'], operationId: 'deleteWebhook', summary: 'Delete a subscription (admin)', params, response: { 204: z.null().describe('Deleted') }, problems: NOT_FOUND },
  }, async (request, reply) => {
    find(request.params.id);
    store.remove(request.params.id);
    return reply.code(204).send(null);
  });
};
