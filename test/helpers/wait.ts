/** Polling helpers for tests that wait on real servers. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `fn` until it returns something truthy; rejects naming `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 15_000, pollMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}

/**
 * Polls `ok` every `pollMs` for up to `ms`: true once it holds; false, with a comment naming `what`, if it never
 * did. For `t.ok(await holdsWithin(t, ...), ...)` and waits whose outcome a later assertion judges.
 */
export async function holdsWithin(t: { comment(m: string): void }, what: string, ms: number, ok: () => boolean | Promise<boolean>, pollMs = 100): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await ok()) return true;
    await sleep(pollMs);
  }
  t.comment(`timed out waiting for ${what}`);
  return false;
}
