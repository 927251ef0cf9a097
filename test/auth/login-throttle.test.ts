/** LoginThrottle with a fake clock: delays double per failure up to the cap, a block after maxFailures, expiry, rate-limited log lines. */
import t from 'tap';
import { LoginThrottle } from '../../src/auth/login-throttle.js';

t.test('delays double up to the cap; maxFailures blocks for blockMs; the window restarts after blockMs', async (t) => {
  let now = 1_000_000;
  const th = new LoginThrottle({ maxFailures: 5, blockMs: 60_000, maxDelayMs: 300 }, () => now);
  const delays = [1, 2, 3, 4].map(() => th.failed('10.0.0.1').delayMs);
  t.same(delays, [50, 100, 200, 300]);
  t.equal(th.blockedFor('10.0.0.1'), 0, 'not blocked after 4');
  const fifth = th.failed('10.0.0.1');
  t.equal(fifth.blocked, true, 'the 5th failure blocks');
  t.equal(th.blockedFor('10.0.0.1'), 60_000);
  t.equal(th.blockedFor('10.0.0.2'), 0, 'other addresses are not affected');
  now += 59_999;
  t.equal(th.blockedFor('10.0.0.1'), 1);
  now += 1;
  t.equal(th.blockedFor('10.0.0.1'), 0, 'the block ends');
  t.equal(th.failed('10.0.0.1').delayMs, 50, 'a new window starts from the first delay');
});

t.test('maxFailures 0 never blocks; maxDelayMs 0 never delays', async (t) => {
  const th = new LoginThrottle({ maxFailures: 0, blockMs: 1000, maxDelayMs: 0 }, () => 0);
  for (let i = 0; i < 100; i++) t.same(th.failed('a').delayMs, 0);
  t.equal(th.blockedFor('a'), 0);
});

t.test('at most one log line per address per 10 s, with the count of the lines left out; a block always logs', async (t) => {
  let now = 0;
  const th = new LoginThrottle({ maxFailures: 50, blockMs: 600_000, maxDelayMs: 0 }, () => now);
  t.same(th.failed('a').log, { failures: 1, suppressed: 0 });
  for (let i = 0; i < 9; i++) t.equal(th.failed('a').log, null);
  now += 10_000;
  t.same(th.failed('a').log, { failures: 11, suppressed: 9 });
  for (let i = 0; i < 38; i++) th.failed('a');
  const blocking = th.failed('a');
  t.equal(blocking.blocked, true);
  t.same(blocking.log, { failures: 50, suppressed: 38 });
});

t.test('memory is bounded by the number of addresses remembered', async (t) => {
  const th = new LoginThrottle({ maxFailures: 5, blockMs: 1000, maxDelayMs: 0 }, () => 0);
  for (let i = 0; i < 20_000; i++) th.failed(`addr-${i}`);
  t.equal(th.size, 10_000);
});
