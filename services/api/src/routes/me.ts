// GET /v1/me: who the presented key is, so a client (the dashboard) can show it and offer only
// what its role may do. With AUTH=off every caller is `anonymous` with every right.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES, allows } from '@cm/domain';
import { principalOf } from '../access.js';
import type { AppDeps } from '../deps.js';

const meAnswer = z.object({
  name: z.string().describe('the key name, recorded as the actor of every event it appends'),
  role: z.enum(ROLES),
  parties: z.array(z.string()).describe('the parties the key acts for and is limited to; empty: every party'),
  auth: z.enum(['on', 'off']).describe('off: the service runs with AUTH=off and every caller is `anonymous`'),
  may: z.object({
    read: z.boolean(),
    command: z.boolean().describe('record agreements, report progress, delay, implement, schedule reviews'),
    audit: z.boolean().describe('history, integrity, explain and exports'),
  }),
});

export const meRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  app.get('/v1/me', {
    schema: {
      tags: ['operations'], operationId: 'getMe', summary: 'The calling key: its name, role, parties and what it may do',
      response: { 200: meAnswer }, problems: {},
    },
  }, async (request) => {
    const p = principalOf(request);
    return {
      name: p.name,
      role: p.role,
      parties: [...p.parties],
      auth: deps.keyRing ? 'on' as const : 'off' as const,
      may: { read: allows(p, 'read'), command: allows(p, 'command'), audit: allows(p, 'audit') },
    };
  });
};
