// The bare Fastify 5 app benchmarks compare the service with: one POST and one GET route
// answering {ok:true}, the ceiling of this machine's HTTP stack. Started as a child process by
// bench-processes.ts (PORT, HOST from the environment); never imported.
import Fastify from 'fastify';

async function serveBare(): Promise<void> {
  const app = Fastify({ logger: false });
  app.post('/bench', async () => ({ ok: true }));
  app.get('/bench', async () => ({ ok: true }));
  await app.listen({ port: Number(process.env['PORT']), host: process.env['HOST'] ?? '127.0.0.1' });
  const stop = () => {
    void app.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // The parent holds our stdin: when it goes away (even killed hard), so do we.
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}

serveBare().catch((err: unknown) => {
  process.stderr.write(`bare server failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
