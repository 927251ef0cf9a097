/** Everything a benchmark starts is stopped: on return, error, Ctrl-C or SIGTERM. */

export const say = (msg: string): void => { process.stderr.write(`[bench] ${msg}\n`); };

interface Stoppable { name: string; stop: () => Promise<void>; killSync?: () => void }

export class Cleanup {
  private items: Stoppable[] = [];
  private running: Promise<void> | undefined;

  add(name: string, stop: () => Promise<void>, killSync?: () => void): void {
    this.items.push({ name, stop, ...(killSync ? { killSync } : {}) });
  }

  /** Stops in reverse start order, each bounded so one hang cannot block the rest. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (const it of [...this.items].reverse()) {
        const timeout = new Promise<void>((r) => setTimeout(r, 15_000).unref());
        await Promise.race([it.stop().catch((e: unknown) => say(`stopping ${it.name}: ${String(e)}`)), timeout]);
      }
    })();
    return this.running;
  }

  installSignalHandlers(): void {
    for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      process.once(sig, () => {
        say(`${sig}: stopping everything`);
        void this.runAll().finally(() => process.exit(code));
      });
    }
    // Last resort if the process exits before the async stops ran.
    process.once('exit', () => { for (const it of this.items) it.killSync?.(); });
  }
}
