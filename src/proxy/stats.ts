/**
 * Plain counters bumped on the hot path (no allocation, no labels lookup); the metrics module reads them
 * when scraped, and the circuit breakers sample them.
 */
export class ProxyStats {
  clientsAccepted = 0;
  clientsActive = 0;
  clientsRejected = 0;
  authFailures = 0;
  protocolErrors = 0;
  cancelsForwarded = 0;
  /** Reads the target could not serve, retried on the source without the client seeing an error. */
  targetFallbacks = 0;
  readonly statements = { source: 0, target: 0 };
  readonly errors = { source: 0, target: 0 };
  /** Errors the backend itself caused (connection loss, SQLSTATE classes 08, 53, 57, 58, XX). */
  readonly backendFaults = { source: 0, target: 0 };
  readonly connectFailures = { source: 0, target: 0 };
}

/** SQLSTATE classes that are the server's fault rather than the client's SQL (DESIGN.md, circuit breakers). */
export function isServerFault(sqlstate: string): boolean {
  const c0 = sqlstate.charCodeAt(0);
  const c1 = sqlstate.charCodeAt(1);
  // 08 connection exception, 53 insufficient resources, 57 operator intervention, 58 system error, XX internal
  return (
    (c0 === 0x30 && c1 === 0x38) ||
    (c0 === 0x35 && (c1 === 0x33 || c1 === 0x37 || c1 === 0x38)) ||
    (c0 === 0x58 && c1 === 0x58)
  );
}
