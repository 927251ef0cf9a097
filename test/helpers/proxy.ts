/** Starts a pg-cutover sidecar in-process in front of real servers, on free ports, stopped in teardown. */
import { loadStartConfig } from '../../src/config/load.js';
import { startSidecar, type Sidecar } from '../../src/sidecar.js';
import type { Teardown } from './servers.js';

export interface ProxyHandle extends Sidecar {
  /** postgres:// URL of the proxy for `user`/`password` (default: the source's postgres user). */
  url(database?: string, user?: string, password?: string): string;
  adminUrl: string;
}

export async function startProxy(
  t: Teardown,
  source: string,
  target: string,
  flags: Record<string, unknown> = {},
  env: NodeJS.ProcessEnv = {},
): Promise<ProxyHandle> {
  const cfg = loadStartConfig({ listen: '127.0.0.1:0', admin: '127.0.0.1:0', source, target, ...flags }, env);
  if (!cfg.ok) throw new Error(cfg.errors.join('\n'));
  const s = await startSidecar(cfg.value, env);
  if (!s.ok) throw new Error(s.errors.join('\n'));
  const sc = s.value;
  t.teardown(() => sc.stop(1000));
  const src = new URL(source);
  return Object.assign(sc, {
    adminUrl: `http://127.0.0.1:${sc.admin.port}`,
    url(database = src.pathname.slice(1) || 'postgres', user = decodeURIComponent(src.username), password = decodeURIComponent(src.password)) {
      return `postgresql://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${sc.listen.port}/${database}`;
    },
  });
}
