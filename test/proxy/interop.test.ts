/**
 * Client-library patterns through the proxy in SOURCE_PRIMARY, READS_50PCT and READS_100PCT, compared with
 * the same run directly against PostgreSQL (issue 15: "widely used client libraries' own suites pass through
 * the proxy in every state as they pass directly"). node-postgres's own integration suite is not shipped in
 * its npm package, so this file runs the patterns that suite and pg-cursor / pg-query-stream exercise:
 * cursors (Execute with a row limit + Flush, page by page), queued queries with an error in the middle,
 * prepared statements with typed parameters, raw pipelines with an error mid-pipeline (one Sync and one Sync
 * per unit), COPY in both directions, LISTEN/NOTIFY, and the server's own errors. The data read is the same
 * on both servers (created directly on each), so every state must give the direct answers.
 */
import t, { type Test } from 'tap';
import pg from 'pg';
import { startRawPair } from '../helpers/raw-pair.js';
import { cstr, frame, int16, int32, query, Wire, type Msg } from './fixtures/wire.js';

const { source, proxy } = await startRawPair(t, [
  'create table interop_data (id int primary key, v text, n numeric)',
  "insert into interop_data select g, 'row ' || g, g * 1.5 from generate_series(1, 50) g",
  'create table interop_copy (id int, v text)',
]);

/** pg-cursor's protocol use, as a node-postgres Submittable: Parse/Bind/Describe/Flush, then Execute(rows)/Flush per page. */
class MiniCursor {
  private con: any = null;
  private rows: unknown[][] = [];
  private waiter: { resolve(v: unknown[][] | null): void; reject(e: unknown): void } | null = null;
  private done = false;
  private error: unknown = null;
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((r) => (this.readyResolve = r));
  constructor(private readonly text: string, private readonly values: string[] = []) {}
  submit(con: any): void {
    this.con = con;
    con.parse({ text: this.text });
    con.bind({ values: this.values });
    con.describe({ type: 'P', name: '' });
    con.flush();
  }
  read(n: number): Promise<unknown[][] | null> {
    if (this.done) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.con.execute({ portal: '', rows: n });
      this.con.flush();
    });
  }
  private page(end: boolean): void {
    const rows = this.rows;
    this.rows = [];
    if (end) {
      this.done = true;
      this.con.sync();
    }
    this.waiter?.resolve(rows);
    this.waiter = null;
  }
  handleRowDescription(): void {}
  handleDataRow(msg: { fields: unknown[] }): void {
    this.rows.push(msg.fields);
  }
  handlePortalSuspended(): void {
    this.page(false);
  }
  handleCommandComplete(): void {
    this.page(true);
  }
  handleEmptyQuery(): void {
    this.page(true);
  }
  handleError(e: unknown): void {
    this.error = e;
    this.done = true;
    this.con.sync();
    this.waiter?.reject(e);
    this.waiter = null;
    // node-postgres drops the active query on an error: no handleReadyForQuery follows.
    this.readyResolve();
  }
  handleReadyForQuery(): void {
    this.readyResolve();
  }
  handleCopyInResponse(): void {}
  handleCopyData(): void {}
}

async function cursorPages(c: pg.Client, text: string, values: string[], sizes: number[]): Promise<unknown> {
  const cur = c.query(new MiniCursor(text, values) as unknown as pg.QueryConfig) as unknown as MiniCursor;
  const pages: unknown[] = [];
  try {
    for (const n of sizes) pages.push(await cur.read(n));
  } catch (e) {
    pages.push(`error ${(e as { code?: string }).code}`);
  }
  await cur.ready;
  return pages;
}

/** The node-postgres patterns; returns everything the server answered. */
async function nodePostgres(url: string): Promise<unknown> {
  const out: Record<string, unknown> = {};
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  out.cursor = await cursorPages(c, 'select id, v from interop_data order by id', [], [3, 3, 100, 5]);
  out.cursorParam = await cursorPages(c, 'select id from interop_data where id > $1 order by id', ['45'], [2, 2, 2]);
  out.cursorError = await cursorPages(c, 'select 1 / (id - 3) from interop_data order by id', [], [2, 2]);
  out.typed = [];
  for (let i = 0; i < 4; i++) {
    (out.typed as unknown[]).push((await c.query({ name: 'typed', text: 'select $1::int4 + $2::int8 as s, $3::numeric * 2 as n, $4::text as t', values: [i, 10, '1.25', null] })).rows);
  }
  out.queued = await Promise.all(
    [c.query('select 1 as a'), c.query('select * from interop_nope'), c.query({ text: 'select $1::int as b', values: [2] }), c.query('select count(*)::int as n from interop_data')].map((p) =>
      p.then((r) => r.rows, (e: { code?: string }) => `error ${e.code}`),
    ),
  );
  out.tx = await (async () => {
    await c.query('begin');
    await c.query("insert into interop_copy values (1, 'in tx')");
    const n = (await c.query('select count(*)::int as n from interop_copy')).rows[0].n;
    await c.query('rollback');
    return n;
  })();
  // LISTEN/NOTIFY between two sessions.
  const other = new pg.Client({ connectionString: url });
  await other.connect();
  await c.query('listen interop_ch');
  const got = new Promise<string | undefined>((r) => c.once('notification', (m) => r(m.payload)));
  await other.query("select pg_notify('interop_ch', 'hello')");
  out.notify = await got;
  await other.end();
  out.after = (await c.query('select 42 as answer')).rows;
  await c.end();
  return out;
}

const parse = (sql: string, name = '', types: number[] = []) => frame('P', Buffer.concat([cstr(name), cstr(sql), int16(types.length), ...types.map(int32)]));
const bind = (name = '', params: string[] = []) =>
  frame('B', Buffer.concat([cstr(''), cstr(name), int16(0), int16(params.length), ...params.map((p) => Buffer.concat([int32(Buffer.byteLength(p)), Buffer.from(p)])), int16(0)]));
const describeP = () => frame('D', Buffer.concat([Buffer.from('P'), cstr('')]));
const execute = (rows = 0) => frame('E', Buffer.concat([cstr(''), int32(rows)]));
const SYNC = frame('S');

const summary = (ms: Msg[]) =>
  ms.map((m) => {
    const x = m as unknown as { name: string; code?: string; fields?: unknown[]; text?: string; status?: string };
    if (x.name === 'error') return `error ${x.code}`;
    if (x.name === 'dataRow') return `row ${JSON.stringify(x.fields)}`;
    if (x.name === 'commandComplete') return `complete ${x.text}`;
    if (x.name === 'readyForQuery') return `ready ${x.status}`;
    return x.name;
  });

/** Sends `bytes`, waits for `readies` ReadyForQuery, returns the summary of what came back. */
async function exchange(w: Wire, bytes: Buffer, readies: number): Promise<string[]> {
  const from = w.messages.length;
  w.send(bytes);
  await w.waitFor(() => w.messages.slice(from).filter((m) => m.name === 'readyForQuery').length >= readies, 10_000);
  return summary(w.messages.slice(from));
}

/** Raw pipelines, typed parameters and COPY; returns everything the server answered. */
async function raw(port: number): Promise<unknown> {
  const w = await Wire.connect(port);
  try {
    await w.login('raw');
    const out: Record<string, unknown> = {};
    const unit = (sql: string, params: string[] = [], types: number[] = []) => Buffer.concat([parse(sql, '', types), bind('', params), describeP(), execute()]);
    // One Sync for three statements, the second failing: the third is skipped up to the Sync.
    out.oneSync = await exchange(w, Buffer.concat([unit('select 1 as a'), unit('select 1/0'), unit('select 3 as c'), SYNC]), 1);
    // A Sync per statement: the one after the error runs.
    out.syncEach = await exchange(w, Buffer.concat([unit('select 1 as a'), SYNC, unit('select 1/0'), SYNC, unit("select 'c' as c"), SYNC]), 3);
    // Typed parameters (int8, numeric, text[]) given by OID at Parse.
    out.typed = await exchange(w, Buffer.concat([unit('select $1 + 1 as a, $2 * 2 as b, $3 as c', ['9007199254740993', '1.5', '{x,y}'], [20, 1700, 1009]), SYNC]), 1);
    out.badParam = await exchange(w, Buffer.concat([unit('select $1 as a', ['nope'], [23]), SYNC]), 1);
    // Simple-protocol multi-statement Query with an error in the middle.
    out.multi = await exchange(w, query("select 1 as a; select 1/0; select 3 as c"), 1);
    // COPY TO STDOUT, and COPY FROM STDIN inside a transaction (rolled back).
    out.copyOut = await exchange(w, query('copy (select id, v from interop_data where id <= 3 order by id) to stdout'), 1);
    out.begin = await exchange(w, query('begin'), 1);
    const from = w.messages.length;
    w.send(query('copy interop_copy from stdin'));
    await w.waitFor((m) => m.name === 'copyInResponse', 5_000, from);
    w.send(Buffer.concat([frame('d', '1\tone\n2\ttwo\n'), frame('d', '3\tthree\n'), frame('c')]));
    await w.waitFor((m) => m.name === 'readyForQuery', 5_000, from);
    out.copyIn = summary(w.messages.slice(from)).filter((s) => s !== 'copyInResponse');
    out.copied = await exchange(w, query('select count(*) from interop_copy'), 1);
    out.rollback = await exchange(w, query('rollback'), 1);
    out.copyFail = await exchange(w, query('copy interop_copy from stdin'), 0).catch(() => null);
    const f2 = w.messages.length;
    w.send(frame('f', cstr('client gave up')));
    await w.waitFor((m) => m.name === 'readyForQuery', 5_000, f2);
    out.copyFailed = summary(w.messages.slice(f2));
    out.last = await exchange(w, query('select 7 as seven'), 1);
    return out;
  } finally {
    w.destroy();
  }
}
const directNode = await nodePostgres(source.url());
const directRaw = await raw(source.port);

for (const state of ['SOURCE_PRIMARY', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA'] as const) {
  // In the split states the target must really serve reads, or "as direct" proves nothing about it.
  const servedByTarget = (t: Test, before: number, todo?: string) => {
    const n = proxy.proxy.stats.statements.target - before;
    if (state === 'SOURCE_PRIMARY') t.equal(n, 0, 'nothing ran on the target');
    else t.ok(n > 0, `the target served reads (${n} statements)`, todo === undefined ? {} : { todo });
  };
  t.test(`${state}: node-postgres patterns as direct`, async (t) => {
    await proxy.setState(state, 'test');
    const before = proxy.proxy.stats.statements.target;
    for (let i = 0; i < 3; i++) t.same(await nodePostgres(proxy.url()), directNode, `run ${i}`);
    // The cursor reads come first: a unit cut by Flush goes to the writer, but starts no read-your-writes wait
    // (with no replica visible here, such a wait would never end and no later read would reach the target).
    servedByTarget(t, before);
  });
  t.test(`${state}: raw pipelines, typed parameters, COPY as direct`, async (t) => {
    await proxy.setState(state, 'test');
    const before = proxy.proxy.stats.statements.target;
    for (let i = 0; i < 3; i++) t.same(await raw(proxy.listen.port), directRaw, `run ${i}`);
    servedByTarget(t, before);
  });
}
