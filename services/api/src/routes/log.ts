// The log as a transparency log: signed checkpoints of the Merkle tree over every event, the
// service's verifier key, and inclusion and consistency proofs (RFC 9162 2.1.3 and 2.1.4) against
// any tree size up to the log's. Log-wide: the proofs carry only hashes (of events and subtrees),
// never an event's content; the tree size says how many events the whole log holds.
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ValidationError } from '@cm/domain';
import type { AppDeps } from '../deps.js';

const size = (what: string) => z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).describe(what);
const inclusionQuery = z.object({
  leafIndex: size('The leaf index of the event (its `leafIndex` in a history answer)'),
  treeSize: size('The size of the tree to prove it in (a checkpoint\'s size); more than leafIndex'),
});
const consistencyQuery = z.object({
  from: size('The smaller tree size (the last checkpoint the caller holds)'),
  to: size('The larger tree size, at most the log\'s'),
});
const hashes = z.array(z.string()).describe('The proof\'s hashes in base64, as RFC 9162 orders them');
const inclusionResponse = z.object({ leafIndex: z.number().int(), treeSize: z.number().int(), hashes });
const consistencyResponse = z.object({ from: z.number().int(), to: z.number().int(), hashes });
const text = z.string();

const b64 = (hs: Buffer[]) => hs.map((h) => h.toString('base64'));

export const logRoutes: FastifyPluginAsyncZod<AppDeps> = async (app, deps) => {
  const { transparency } = deps;
  const { tree } = transparency;

  /** The log's size now, with a 400 naming `field` when `value` goes beyond it. */
  async function within(field: string, value: number) {
    const n = await tree.sync();
    if (value > n) throw new ValidationError(`${field} ${value} is beyond the log, which holds ${n} events`, [{ path: field, message: `must be at most ${n}, the log's size` }], 'tree_size_beyond_log');
    return n;
  }

  app.get('/v1/log/checkpoint', {
    schema: {
      tags: ['audit'], operationId: 'getLogCheckpoint',
      summary: 'The latest signed checkpoint of the log\'s Merkle tree (C2SP tlog-checkpoint signed note)',
      description:
        'text/plain: `<origin>\\n<tree size>\\n<base64 root hash>\\n`, a blank line, then `— <key name> <base64(4-byte key id || ' +
        'Ed25519 signature)>`, the service\'s signature first. Signed afresh at most once a minute while the log grows, cached ' +
        'in between; verify it against `GET /v1/log/key`.',
      response: { 200: text },
    },
  }, async (_request, reply) => {
    const { note } = await transparency.checkpoint();
    reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache');
    return note;
  });

  app.get('/v1/log/key', {
    schema: {
      tags: ['audit'], operationId: 'getLogKey', security: [],
      summary: 'The service\'s note verifier key for its checkpoints',
      description: 'text/plain: `<key name>+<hex key id>+<base64(0x01 || Ed25519 public key)>` (C2SP signed-note). Public.',
      response: { 200: text },
    },
  }, async (_request, reply) => {
    reply.type('text/plain; charset=utf-8');
    return `${transparency.verifierKey}\n`;
  });

  app.post('/v1/log/cosignatures', {
    schema: {
      tags: ['audit'], operationId: 'addLogCosignature',
      summary: 'A witness hands back its C2SP tlog-cosignature/v1 of a checkpoint',
      description:
        '`{size, cosignature}`: the witness\'s line `— <name> <base64(key id || 8-byte time || Ed25519 signature)>` over ' +
        '"cosignature/v1\\ntime <t>\\n" and the checkpoint of that size. Verified against the witness keys of the deployment ' +
        '(WITNESS_KEYS); the checkpoint of that size is then served with it. 403 `unknown_witness`, 400 `cosignature_invalid`.',
      body: z.strictObject({
        size: size('The size of the checkpoint co-signed'),
        cosignature: z.string().min(1).max(1000).describe('The cosignature line'),
      }),
      response: { 200: z.object({ size: z.number().int(), accepted: z.literal(true) }) },
      problems: { 400: ['invalid_input', 'cosignature_invalid', 'tree_size_beyond_log'], 403: ['unknown_witness'] },
    },
  }, async (request) => {
    await transparency.addCosignature(request.body.size, request.body.cosignature);
    return { size: request.body.size, accepted: true as const };
  });

  app.get('/v1/log/proofs/inclusion', {
    schema: {
      tags: ['audit'], operationId: 'getInclusionProof',
      summary: 'Proves an event is leaf `leafIndex` of the tree of size `treeSize`',
      description:
        'The audit path of RFC 9162 2.1.3.1. The leaf hash is SHA-256(0x00 || the 32 bytes of the event\'s `hash`); with the ' +
        'proof it recomputes the root of a checkpoint of that size. 400 `tree_size_beyond_log` when treeSize is more than the ' +
        'log holds, `invalid_input` when leafIndex is not below treeSize.',
      querystring: inclusionQuery,
      response: { 200: inclusionResponse },
      problems: { 400: ['invalid_input', 'tree_size_beyond_log'] },
    },
  }, async (request) => {
    const { leafIndex, treeSize } = request.query;
    await within('treeSize', treeSize);
    if (leafIndex >= treeSize) throw new ValidationError(`leafIndex ${leafIndex} is not in a tree of size ${treeSize}`, [{ path: 'leafIndex', message: 'must be less than treeSize' }]);
    return { leafIndex, treeSize, hashes: b64(tree.inclusion(leafIndex, treeSize)) };
  });

  app.get('/v1/log/proofs/consistency', {
    schema: {
      tags: ['audit'], operationId: 'getConsistencyProof',
      summary: 'Proves the tree of size `from` is a prefix of the tree of size `to`',
      description:
        'The consistency proof of RFC 9162 2.1.4.1 (empty when from is 0 or equals to). 400 `tree_size_beyond_log` when to is ' +
        'more than the log holds, `invalid_input` when from is more than to.',
      querystring: consistencyQuery,
      response: { 200: consistencyResponse },
      problems: { 400: ['invalid_input', 'tree_size_beyond_log'] },
    },
  }, async (request) => {
    const { from, to } = request.query;
    await within('to', to);
    if (from > to) throw new ValidationError(`from ${from} is more than to ${to}`, [{ path: 'from', message: 'must be at most to' }]);
    return { from, to, hashes: b64(tree.consistency(from, to)) };
  });
};
