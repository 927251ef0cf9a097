import t from 'tap';
import pg from 'pg';
import { startPg, type Teardown } from '../helpers/servers.js';
import { createDatabase, createShopSchema, seedShop, SHOP_TABLES } from '../../src/demo/schema.js';

async function connect(t: Teardown, url: string): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  t.teardown(() => c.end());
  return c;
}

/** What the DDL produced, in a form comparable across majors. */
async function catalog(c: pg.Client) {
  const cols = await c.query(
    `SELECT table_name, column_name, data_type, numeric_precision, numeric_scale, is_nullable, column_default, is_identity, identity_generation
       FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, ordinal_position`,
  );
  const cons = await c.query(
    `SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2`,
  );
  const idx = await c.query(`SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2`);
  return { cols: cols.rows, cons: cons.rows, idx: idx.rows };
}

const [src, dst] = await Promise.all([startPg(t, 14), startPg(t, 15)]);
await Promise.all([createDatabase(src.url(), 'shop'), createDatabase(dst.url(), 'shop')]);
// Creating it again is a no-op, not an error.
await createDatabase(dst.url(), 'shop');
const s = await connect(t, src.url('shop'));
const d = await connect(t, dst.url('shop'));

t.test('the same DDL creates the same schema on PostgreSQL 14 and 15', async (t) => {
  await createShopSchema(s);
  await createShopSchema(d);
  await createShopSchema(d); // idempotent
  const [a, b] = await Promise.all([catalog(s), catalog(d)]);
  t.same(b, a);
  t.same([...new Set(a.cols.map((r) => r.table_name))].sort(), [...SHOP_TABLES].sort());
  t.ok(a.idx.length >= 8, `indexes: ${a.idx.map((r) => r.indexname).join(', ')}`);
  t.same(
    a.cons.filter((r) => r.def.startsWith('FOREIGN KEY')).map((r) => `${r.tbl}: ${r.def}`),
    ['orders: FOREIGN KEY (user_id) REFERENCES users(id)', 'transactions: FOREIGN KEY (order_id) REFERENCES orders(id)'],
  );
  for (const tbl of SHOP_TABLES) {
    t.ok(a.cols.some((r) => r.table_name === tbl && r.column_name === 'id' && r.is_identity === 'YES' && r.data_type === 'bigint'), `${tbl}.id is a bigint identity`);
  }
});

t.test('seeding scale 2000 on PostgreSQL 14', async (t) => {
  const started = Date.now();
  const counts = await seedShop(s, { scale: 2000 });
  t.comment(`seeded in ${Date.now() - started} ms`);
  t.same(counts, { users: 200, orders: 2000, transactions: 3000 });
  for (const [tbl, n] of Object.entries(counts)) {
    const r = await s.query(`SELECT count(*)::int AS n FROM ${tbl}`);
    t.equal(r.rows[0].n, n, `${tbl} has ${n} rows`);
  }
  const checks = await s.query(`
    SELECT (SELECT count(*)::int FROM orders o WHERE NOT EXISTS (SELECT 1 FROM transactions x WHERE x.order_id = o.id)) AS orders_without_tx,
           (SELECT count(DISTINCT user_id)::int FROM orders) AS users_with_orders,
           (SELECT count(DISTINCT status)::int FROM orders) AS order_statuses,
           (SELECT count(*)::int FROM transactions WHERE kind = 'refund') AS refunds,
           (SELECT min(total_amount) >= 5 AND max(total_amount) < 1005 FROM orders) AS amounts_in_range,
           (SELECT reltuples::int FROM pg_class WHERE oid = 'orders'::regclass) AS analyzed_rows`);
  const c = checks.rows[0];
  t.equal(c.orders_without_tx, 0, 'every order has a transaction');
  t.equal(c.users_with_orders, 200, 'orders spread over all users');
  t.ok(c.order_statuses >= 5, 'several order statuses');
  t.ok(c.refunds > 0, 'some refunds');
  t.ok(c.amounts_in_range, 'amounts within 5.00..1004.99');
  t.equal(c.analyzed_rows, 2000, 'ANALYZE ran');
  // A second seed appends instead of colliding on unique emails or provider references.
  t.same(await seedShop(s, { scale: 10 }), { users: 1, orders: 10, transactions: 15 });
  t.same(await seedShop(s, { scale: 0 }), { users: 0, orders: 0, transactions: 0 });
  await t.rejects(seedShop(s, { scale: -1 }), /scale/);
});

t.test('foreign keys and checks are enforced on both majors', async (t) => {
  for (const c of [s, d]) {
    await t.rejects(c.query(`INSERT INTO orders (user_id, total_amount) VALUES (999999999, 1)`), { code: '23503' });
    await t.rejects(c.query(`INSERT INTO transactions (order_id, amount, provider, provider_ref) VALUES (999999999, 1, 'stripe', 'x')`), { code: '23503' });
    await t.rejects(c.query(`INSERT INTO users (email, full_name, status) VALUES ('a@b.c', 'A', 'weird')`), { code: '23514' });
  }
  // A user with orders cannot be deleted out from under them.
  await t.rejects(s.query(`DELETE FROM users WHERE id = (SELECT user_id FROM orders LIMIT 1)`), { code: '23503' });
});

t.test('identity keys are generated when the insert omits them', async (t) => {
  for (const c of [s, d]) {
    const before = await c.query(`SELECT coalesce(max(id), 0)::bigint AS m FROM users`);
    const u = await c.query(`INSERT INTO users (email, full_name) VALUES ('new-' || $1 || '@example.com', 'New Person') RETURNING id, status, created_at`, [c === s ? 's' : 'd']);
    t.ok(BigInt(u.rows[0].id) > BigInt(before.rows[0].m), 'new user id beyond existing ones');
    t.equal(u.rows[0].status, 'active');
    t.ok(u.rows[0].created_at instanceof Date);
    const o = await c.query(`INSERT INTO orders (user_id, total_amount, currency) VALUES ($1, 12.34, 'EUR') RETURNING id, status`, [u.rows[0].id]);
    const x = await c.query(
      `INSERT INTO transactions (order_id, amount, provider, provider_ref) VALUES ($1, 12.34, 'adyen', $2) RETURNING id, kind, status`,
      [o.rows[0].id, `manual-${o.rows[0].id}`],
    );
    t.same([o.rows[0].status, x.rows[0].kind, x.rows[0].status], ['pending', 'charge', 'pending']);
    await t.rejects(c.query(`INSERT INTO users (email, full_name) VALUES ('new-' || $1 || '@example.com', 'Dup')`, [c === s ? 's' : 'd']), { code: '23505' });
  }
});
