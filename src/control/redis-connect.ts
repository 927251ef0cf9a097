/** Connection helpers of the Redis state store. */
import type { Redis } from 'ioredis';

/** Connect, letting the retry strategy ride out refusals, until ready or `ms` has passed. */
export function whenReady(c: Redis, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let lastError = 'no answer';
    const onError = (err: Error) => (lastError = err.message);
    const done = (err?: Error) => {
      clearTimeout(timer);
      c.off('ready', onReady);
      c.off('error', onError);
      if (err) reject(err);
      else resolve();
    };
    const onReady = () => done();
    const timer = setTimeout(() => done(new Error(`not ready after ${ms} ms (${lastError})`)), ms);
    c.on('ready', onReady);
    c.on('error', onError);
    c.connect().catch((err: Error) => (lastError = err.message));
  });
}

/** The URL without its credentials, for messages. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
