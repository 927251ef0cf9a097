/**
 * The writer lock of a rollback that waits for an unreachable target (src/replication/writer-record.ts): the run
 * claims the lock on the source alone; a second request is refused with its name; once the target answers the
 * run takes the lock on both with the same token (resume); an operator's `writer unlock` clears the claim and
 * the run cannot take it back (it stops), while a fresh request can.
 */
import t from 'tap';
import { startPg } from '../helpers/servers.js';
import { connectControl } from '../../src/replication/control-conn.js';
import { acquireWriterLock, claimWriterLock, forceUnlock, readWriterRecord, releaseWriterLock } from '../../src/replication/writer-record.js';

const [src, dst] = await Promise.all([startPg(t, 14), startPg(t, 15)]);
const s = await connectControl(src.url(), { purpose: 'test' });
const d = await connectControl(dst.url(), { purpose: 'test' });
t.teardown(() => Promise.all([s.end(), d.end()]));

t.test('claim on the source, resume on both with the same token', async (t) => {
  const token = await claimWriterLock(s, 'sidecar-a', null);
  t.equal((await readWriterRecord(s, d)).changing, 'sidecar-a', 'every sidecar sees a writer change running');
  await t.rejects(claimWriterLock(s, 'sidecar-b', null), /another writer change is running: sidecar-a holds the writer lock on the source/, 'a second claim is refused');
  await t.rejects(acquireWriterLock(s, d, 'sidecar-b'), /sidecar-a holds the writer lock on the source/, 'and so is a second writer change');
  t.equal(await claimWriterLock(s, 'sidecar-a', token), token, 'the run renews its own claim');
  const lock = await acquireWriterLock(s, d, 'sidecar-a', token);
  t.equal(lock.token, token, 'resumed with the same token on both databases');
  const rec = await readWriterRecord(s, d);
  t.same([rec.source.lockHolder, rec.target.lockHolder], ['sidecar-a', 'sidecar-a']);
  await releaseWriterLock(s, d, lock);
  t.equal((await readWriterRecord(s, d)).changing, null);
});

t.test("an operator's unlock stops the run: it cannot take its claim back; a fresh request can", async (t) => {
  const token = await claimWriterLock(s, 'sidecar-a', null);
  const cleared = await forceUnlock(s, d);
  t.equal(cleared.source, 'sidecar-a', 'writer unlock clears the claim');
  await t.rejects(claimWriterLock(s, 'sidecar-a', token), /sidecar-a claimed on the source was cleared/);
  await t.rejects(acquireWriterLock(s, d, 'sidecar-a', token), /was cleared/);
  const fresh = await acquireWriterLock(s, d, 'sidecar-b');
  t.equal(fresh.holder, 'sidecar-b');
  await releaseWriterLock(s, d, fresh);
});
