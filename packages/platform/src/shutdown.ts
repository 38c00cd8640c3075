// Graceful shutdown: on SIGTERM/SIGINT run the registered steps in reverse order of
// registration (last started, first stopped), then exit.
import type { Logger } from 'pino';

export function createShutdown(logger: Logger, options: { timeoutMs?: number; exit?: (code: number) => void } = {}) {
  const steps: { name: string; run: () => Promise<void> | void }[] = [];
  const exit = options.exit ?? ((code: number) => process.exit(code));
  let running: Promise<void> | null = null;

  async function run(reason: string): Promise<void> {
    if (running) return running;
    running = (async () => {
      logger.info({ reason }, 'shutting down');
      const timer = setTimeout(() => {
        logger.error({ timeoutMs: options.timeoutMs ?? 10_000 }, 'shutdown took too long; exiting');
        exit(1);
      }, options.timeoutMs ?? 10_000);
      timer.unref();
      let code = 0;
      for (const step of [...steps].reverse()) {
        try {
          await step.run();
        } catch (err) {
          code = 1;
          logger.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(timer);
      logger.info('stopped');
      exit(code);
    })();
    return running;
  }

  return {
    add(name: string, stepFn: () => Promise<void> | void) {
      steps.push({ name, run: stepFn });
    },
    listen() {
      process.once('SIGTERM', () => void run('SIGTERM'));
      process.once('SIGINT', () => void run('SIGINT'));
    },
    run,
  };
}
