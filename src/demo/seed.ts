import type pg from 'pg';

export interface SeedOptions {
  /** Number of orders. Users: ceil(scale / 10) (at least 1 when scale > 0); transactions: scale + floor(scale / 2). */
  scale: number;
}

/** Rows the seed inserted, per table. */
export interface SeedCounts {
  users: number;
  orders: number;
  transactions: number;
}

/**
 * Pseudo-random but deterministic column values: the same scale gives the same data (up to
 * timestamps relative to now()), so tests can assert on it. Knuth's multiplicative hash spreads i;
 * reducing modulo a prime first keeps the result's low bits independent of i's parity, which
 * decides how many transactions an order gets.
 */
const H = (expr: string, mod: number) => `((${expr}) * 2654435761 % 1000003 % ${mod})`;

/**
 * Fills the `shop` tables (created by createShopSchema) with `scale` orders, generated on the
 * server with `INSERT ... SELECT generate_series` (100k orders take a few seconds, no client round
 * trips per row), then ANALYZEs them. Appends to existing rows: emails and provider references are
 * numbered from the current maximum keys, so it can run more than once. Every order has one
 * charge; every second order also has a refund or a failed retry.
 */
export async function seedShop(client: pg.Client | pg.PoolClient, opts: SeedOptions): Promise<SeedCounts> {
  const orders = Math.floor(opts.scale);
  if (!Number.isFinite(orders) || orders < 0) throw new Error(`seed scale must be a whole number >= 0, got ${opts.scale}`);
  if (orders === 0) return { users: 0, orders: 0, transactions: 0 };
  const users = Math.ceil(orders / 10);
  await client.query('BEGIN');
  try {
    const u = await insertUsers(client, users);
    const o = await insertOrders(client, orders, u);
    const transactions = await insertTransactions(client, o);
    await client.query('COMMIT');
    await client.query('ANALYZE users, orders, transactions');
    return { users, orders, transactions };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

interface IdRange {
  first: number;
  count: number;
}

/** Inserted keys are consecutive: one INSERT in one transaction, nothing else writing (a seed). */
async function range(client: pg.Client | pg.PoolClient, sql: string, params: unknown[]): Promise<IdRange> {
  const r = await client.query<{ first: string; last: string; n: string }>(
    `WITH ins AS (${sql} RETURNING id) SELECT min(id) AS first, max(id) AS last, count(*) AS n FROM ins`,
    params,
  );
  const row = r.rows[0]!;
  const first = Number(row.first);
  const n = Number(row.n);
  if (Number(row.last) - first + 1 !== n) {
    throw new Error('seed: generated keys are not consecutive (was something else inserting at the same time?)');
  }
  return { first, count: n };
}

async function insertUsers(client: pg.Client | pg.PoolClient, n: number): Promise<IdRange> {
  const base = await client.query<{ m: string }>('SELECT coalesce(max(id), 0) AS m FROM users');
  return range(
    client,
    `INSERT INTO users (email, full_name, status, country, created_at, updated_at)
     SELECT 'user' || ($2::bigint + i) || '@example.com',
            (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Radia','Linus'])[1 + ${H('i', 10)}]
              || ' ' ||
            (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Perlman','Torvalds'])[1 + ${H('i + 3', 10)}],
            CASE WHEN i % 50 = 0 THEN 'suspended' WHEN i % 97 = 0 THEN 'closed' ELSE 'active' END,
            (ARRAY['US','DE','FR','GB','NL','SE','JP','BR','CA','AU'])[1 + ${H('i + 7', 10)}],
            created,
            created + (now() - created) * (${H('i', 1000)} / 1000.0)
     FROM (SELECT i, now() - make_interval(days => 400) + make_interval(mins => i::int % 525600) AS created
             FROM generate_series(1, $1::bigint) AS i) AS g`,
    [n, base.rows[0]!.m],
  );
}

async function insertOrders(client: pg.Client | pg.PoolClient, n: number, users: IdRange): Promise<IdRange> {
  // Order amounts are 5.00 to 1004.99; order i belongs to user (i mod users), spreading orders evenly.
  return range(
    client,
    `INSERT INTO orders (user_id, status, total_amount, currency, item_count, shipping_country, note, created_at, updated_at)
     SELECT $2::bigint + (i % $3::bigint),
            (ARRAY['delivered','delivered','delivered','shipped','paid','pending','cancelled','refunded'])[1 + ${H('i', 8)}],
            round(5 + ${H('i', 100000)} / 100.0, 2),
            (ARRAY['USD','USD','EUR','GBP','CAD'])[1 + ${H('i + 1', 5)}],
            1 + ${H('i + 2', 6)},
            (ARRAY['US','DE','FR','GB','NL','SE','JP','BR','CA','AU'])[1 + ${H('i + 5', 10)}],
            CASE WHEN i % 17 = 0 THEN 'leave at the door' END,
            created,
            created + (now() - created) * (${H('i + 9', 1000)} / 1000.0)
     FROM (SELECT i, now() - make_interval(mins => ($1::bigint - i)::int % 525600) AS created
             FROM generate_series(1, $1::bigint) AS i) AS g`,
    [n, users.first, users.count],
  );
}

async function insertTransactions(client: pg.Client | pg.PoolClient, orders: IdRange): Promise<number> {
  // k = 1: the charge of every order; k = 2 (even orders): a refund of a refunded order, else a failed retry.
  // provider_ref derives from the order key, so it stays unique across repeated seeds.
  const r = await client.query(
    `INSERT INTO transactions (order_id, kind, status, amount, currency, provider, provider_ref, created_at)
     SELECT o.id,
            CASE WHEN k = 2 AND o.status = 'refunded' THEN 'refund' ELSE 'charge' END,
            CASE WHEN k = 1 AND o.status IN ('pending', 'cancelled') THEN 'failed'
                 WHEN k = 2 AND o.status <> 'refunded' THEN 'failed'
                 ELSE 'succeeded' END,
            o.total_amount,
            o.currency,
            (ARRAY['stripe','stripe','adyen','paypal'])[1 + ${H('o.id', 4)}],
            'tx_' || o.id || '_' || k,
            least(now(), o.created_at + make_interval(secs => k * 30))
     FROM orders o
     CROSS JOIN LATERAL generate_series(1, CASE WHEN (o.id - $1::bigint) % 2 = 1 THEN 2 ELSE 1 END) AS k
     WHERE o.id BETWEEN $1::bigint AND $2::bigint`,
    [orders.first, orders.first + orders.count - 1],
  );
  return r.rowCount ?? 0;
}
