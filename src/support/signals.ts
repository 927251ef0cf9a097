/**
 * Process signals for a long-running command (`pg-cutover start`, `pg-cutover demo`). The logger is imported
 * when the handlers are installed, so a command that never runs long does not load it.
 */
/** Stops `stop` on SIGTERM/SIGINT, exits 0 when it resolves; SIGHUP runs `reload` and never exits. */
export async function onSignals(stop: () => Promise<void>, reload?: () => Promise<unknown>): Promise<void> {
  const { log } = await import('./log.js');
  let n = 0;
  const handler = (sig: string) => {
    n++;
    if (n > 1) {
      log.warn({ sig }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ sig }, 'shutting down: no new connections; open transactions may finish');
    void stop().then(
      () => process.exit(0),
      (e) => {
        log.error({ err: e }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
  // Without a handler Node exits 129 on SIGHUP (a closed terminal, or `kill -HUP` to reload): never that.
  process.on('SIGHUP', () => {
    log.info({ sig: 'SIGHUP' }, 'reloading users, TLS certificate and log level');
    void reload?.().catch((e) => log.error({ err: e }, 'reload failed'));
  });
}
