/**
 * The catch-up builder (src/proxy/catch-up.ts) is pure: it returns the bytes a backend needs before a unit and
 * the state the backend reaches, and mutates nothing; LinkState alone records that state when the bytes go
 * out (inject), and what each client frame did (send with the router's note). No sockets: a fake socket
 * records writes.
 */
import t from 'tap';
import type { Socket } from 'node:net';
import { LinkState } from '../../src/proxy/link-state.js';
import type { BackendLink } from '../../src/proxy/backend-link.js';
import { buildCatchUp, parsedBy } from '../../src/proxy/catch-up.js';
import { SessionStateLog } from '../../src/router/session-state.js';
import type { SessionRouting } from '../../src/proxy/router-glue.js';
import type { Frame } from '../../src/protocol/framer.js';
import { cstr, frame, int16 } from './fixtures/wire.js';

class TestLink extends LinkState {
  readonly written: Buffer[] = [];
  constructor(readonly readOnly = false) {
    const written: Buffer[] = [];
    super({ write: (b: Buffer) => (written.push(b), true), destroyed: false } as unknown as Socket);
    this.written = written;
  }
}

const f = (b: Buffer): Frame => ({ type: b[0], buf: b, start: 0, end: b.length });
const parse = (name: string, sql: string) => f(frame('P', Buffer.concat([cstr(name), cstr(sql), int16(0)])));
const bind = (stmt: string) => f(frame('B', Buffer.concat([cstr(''), cstr(stmt), int16(0), int16(0), int16(0)])));
const sync = f(frame('S'));
const types = (b: Buffer): string => {
  const out: string[] = [];
  for (let i = 0; i < b.length; i += 1 + b.readInt32BE(i + 1)) out.push(String.fromCharCode(b[i]));
  return out.join('');
};

function session(named: Record<string, string>): SessionRouting {
  const m = new Map<string, { text: string; parse: Buffer }>();
  for (const [name, text] of Object.entries(named)) m.set(name, { text, parse: parse(name, text).buf });
  return { point: 0, pinnedTo: null, fresh: { need: 0 } as never, unitWrite: false, unitData: false, unitCut: false, log: new SessionStateLog(), named: m, namedBytes: 0 };
}

const noOff = () => false;

t.test('a named statement the backend lacks is re-Parsed from the client bytes, once, then Sync; nothing mutated', async (t) => {
  const s = session({ s1: 'select 1' });
  const link = new TestLink();
  const c = buildCatchUp(s, link as unknown as BackendLink, [bind('s1'), bind('s1'), sync], noOff);
  t.ok(c);
  t.equal(types(c!.bytes), 'PS', 'one Parse for two Binds, then Sync');
  t.equal(c!.replies, 1);
  t.same(c!.prepared, [['s1', 'select 1']]);
  t.equal(link.prepared.size, 0, 'the builder mutated nothing');
  t.equal(link.pending, 0);
  link.inject(c!);
  t.same([...link.prepared], [['s1', 'select 1']], 'inject records what the backend has');
  t.equal(link.pending, 1, 'one reply owed');
  t.equal(link.swallow, 1, 'and swallowed');
  t.equal(buildCatchUp(s, link as unknown as BackendLink, [bind('s1'), sync], noOff), null, 'nothing more to send');
});

t.test('a statement the unit parses itself is never sent ahead (42P05); a stale copy is closed first', async (t) => {
  const s = session({ s1: 'select 1' });
  const link = new TestLink();
  link.inject({ bytes: Buffer.alloc(0), replies: 0, prepared: [['s1', 'select 0']] });
  const c = buildCatchUp(s, link as unknown as BackendLink, [parse('s1', 'select 2'), bind('s1'), sync], noOff);
  t.equal(types(c!.bytes), 'CS', 'Close of the stale copy, then Sync: no Parse of ours');
  t.same(c!.prepared, [['s1', null]]);
  t.same([...link.prepared], [['s1', 'select 0']], 'unchanged until injected');
  t.same(parsedBy([parse('s1', 'x'), parse('', 'y'), bind('s1'), sync]), ['s1'], 'the unit parses s1 (the unnamed one is not kept)');
});

t.test('session state: the statements the backend lacks, as Queries; a read-only link skips what turns read-only off', async (t) => {
  const s = session({});
  s.log.record("set application_name = 'a'", 'set:application_name');
  s.log.record('set default_transaction_read_only = off', 'set:default_transaction_read_only');
  const ro = new TestLink(true);
  const c = buildCatchUp(s, ro as unknown as BackendLink, [f(frame('Q', cstr('select 1')))], (sql) => sql.includes('read_only = off'));
  t.equal(types(c!.bytes), 'Q', 'one SET replayed');
  t.equal(c!.replies, 1);
  t.equal(ro.sessionVersion, 0, 'nothing applied yet');
  ro.inject(c!);
  t.equal(ro.sessionVersion, s.log.version, 'applied, the skipped one included (it ran on the writer only)');
  t.equal(buildCatchUp(s, ro as unknown as BackendLink, [], noOff), null);
});

t.test('send: replies owed, open units and the run of contiguous bytes, one write per run', async (t) => {
  const link = new TestLink();
  const chunk = Buffer.concat([frame('P', Buffer.concat([cstr('n'), cstr('select 1'), int16(0)])), frame('B', Buffer.concat([cstr(''), cstr('n'), int16(0), int16(0), int16(0)])), frame('S')]);
  let at = 0;
  const frames: Frame[] = [];
  while (at < chunk.length) {
    const end = at + 1 + chunk.readInt32BE(at + 1);
    frames.push({ type: chunk[at], buf: chunk, start: at, end });
    at = end;
  }
  link.send(frames[0], { defined: { name: 'n', text: 'select 1' } });
  t.ok(link.inUnit, 'a unit is open after Parse');
  t.notOk(link.idle);
  link.send(frames[1], null);
  link.send(frames[2], null);
  t.notOk(link.inUnit, 'Sync closes it');
  t.equal(link.pending, 1, 'and is owed a ReadyForQuery');
  t.equal(link.written.length, 0, 'nothing written before flush');
  t.ok(link.flush());
  t.equal(link.written.length, 1, 'one write for the whole run');
  t.equal(link.written[0].length, chunk.length);
  t.same([...link.prepared], [['n', 'select 1']], 'the note recorded the statement');
  link.send(f(frame('C', Buffer.concat([Buffer.from('S'), cstr('n')]))), { closed: 'n' });
  t.equal(link.prepared.size, 0, 'Close noted');
});
