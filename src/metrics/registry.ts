/**
 * Prometheus metrics. Hot-path counters live in ProxyStats as plain numbers; prom-client reads them at scrape
 * time through `collect`, so forwarding a query never touches a metric object.
 */
import { Registry, Gauge, collectDefaultMetrics } from 'prom-client';
import type { ProxyStats } from '../proxy/stats.js';
import { ROLES } from '../domain/role.js';

export function createRegistry(stats: ProxyStats, extra?: (reg: Registry) => void): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: 'pgcutover_process_' });
  const gauge = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void) =>
    new Gauge({ name, help, labelNames, registers: [reg], collect() { read(this); } });
  gauge('pgcutover_clients_active', 'Client connections currently open', [], (g) => g.set(stats.clientsActive));
  gauge('pgcutover_clients_accepted_total', 'Client connections accepted', [], (g) => g.set(stats.clientsAccepted));
  gauge('pgcutover_clients_rejected_total', 'Client connections refused (max clients)', [], (g) => g.set(stats.clientsRejected));
  gauge('pgcutover_auth_failures_total', 'Client logins refused', [], (g) => g.set(stats.authFailures));
  gauge('pgcutover_protocol_errors_total', 'Connections closed for protocol violations', [], (g) => g.set(stats.protocolErrors));
  gauge('pgcutover_cancels_forwarded_total', 'Cancel requests forwarded to a backend', [], (g) => g.set(stats.cancelsForwarded));
  gauge('pgcutover_fence_ended_transactions_total', 'Transactions open on the old writer when a write hold began that did not end within the drain bound and were ended by the fence (never acknowledged)', [], (g) => g.set(stats.fenceEndedTransactions));
  gauge('pgcutover_read_retries_on_writer_total', 'Reads refused by a read-only link (a writing function not in --write-functions) and run again on the writer', [], (g) => g.set(stats.readOnlyRetries));
  gauge('pgcutover_freshness_redirects_total', 'Reads kept on the writer because the other side had not yet applied the session\'s last write (read-your-writes) or was staler than --max-read-staleness-ms', [], (g) => g.set(stats.freshnessRedirects));
  gauge('pgcutover_reader_staleness_seconds', 'How far the other side trails the writer, from the sampled WAL positions (NaN: unknown)', [], (g) => g.set(stats.readerStalenessMs / 1000));
  gauge('pgcutover_reader_staleness_max_seconds', 'Largest staleness of the other side seen since start', [], (g) => g.set(stats.readerStalenessMaxMs / 1000));
  const perRole = (name: string, help: string, pick: (s: ProxyStats) => { source: number; target: number }) =>
    gauge(name, help, ['backend'], (g) => {
      const v = pick(stats);
      g.set({ backend: 'source' }, v.source);
      g.set({ backend: 'target' }, v.target);
    });
  perRole('pgcutover_statements_total', 'Statements (Query, Sync, FunctionCall) sent per backend', (s) => s.statements);
  perRole('pgcutover_backend_errors_total', 'ErrorResponses returned per backend', (s) => s.errors);
  perRole('pgcutover_backend_faults_total', 'Errors the backend caused (lost connections, SQLSTATE 08/53/57/58/XX)', (s) => s.backendFaults);
  perRole('pgcutover_backend_connect_failures_total', 'Failed backend logins', (s) => s.connectFailures);
  gauge('pgcutover_units_in_state', 'Units (statement or transaction up to ReadyForQuery) through the proxy in the current cutover state, by backend and read/write', ['backend', 'kind'], (g) => {
    for (const backend of ['source', 'target'] as const) for (const kind of ['read', 'write'] as const) g.set({ backend, kind }, stats.latency[backend][kind].count);
  });
  gauge('pgcutover_unit_latency_seconds', 'Unit latency through the proxy (dispatch to ReadyForQuery) in the current cutover state, by backend and read/write', ['backend', 'kind', 'quantile'], (g) => {
    for (const backend of ROLES) {
      for (const kind of ['read', 'write'] as const) {
        const h = stats.latency[backend][kind];
        for (const q of [0.5, 0.99]) {
          const v = h.quantile(q);
          g.set({ backend, kind, quantile: String(q) }, v === null ? Number.NaN : v / 1000);
        }
      }
    }
  });
  extra?.(reg);
  return reg;
}
