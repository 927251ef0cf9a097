/** Control-plane metrics: state, store health, breakers, Unleash health. */
import { Gauge, type Registry } from 'prom-client';
import { CUTOVER_STATES } from '../domain/states.js';
import type { Controller } from '../control/controller.js';
import type { UnleashBinding } from '../control/unleash.js';

export function registerControlMetrics(reg: Registry, c: Controller, unleash: () => UnleashBinding | null): void {
  const g = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void) =>
    new Gauge({ name, help, labelNames, registers: [reg], collect() { read(this); } });
  g('pgcutover_state', 'Cutover state (1 for the current one)', ['state'], (m) => {
    const cur = c.snapshot().state;
    for (const s of CUTOVER_STATES) m.set({ state: s }, s === cur ? 1 : 0);
  });
  g('pgcutover_state_version', 'Version of the shared cutover state', [], (m) => m.set(c.snapshot().version));
  g('pgcutover_read_percent', 'Reads currently sent to the target (percent)', [], (m) => m.set(c.policy().readPercent));
  g('pgcutover_degraded', '1 while the shared state store cannot be reached', [], (m) => m.set(c.health().degraded ? 1 : 0));
  g('pgcutover_breaker_open', 'Circuit breaker open (1) or closed (0)', ['breaker'], (m) => {
    for (const b of c.breakers.readings()) m.set({ breaker: b.name }, b.open ? 1 : 0);
  });
  g('pgcutover_breaker_value', 'Last measured value of each breaker', ['breaker'], (m) => {
    for (const b of c.breakers.readings()) if (b.value !== null) m.set({ breaker: b.name }, b.value);
  });
  g('pgcutover_unleash_healthy', 'Unleash reachable (1) or using its last flags (0)', [], (m) => {
    const u = unleash();
    if (u) m.set(u.healthy() ? 1 : 0);
  });
}
