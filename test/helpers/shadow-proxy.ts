/**
 * A proxy in front of real servers with a Shadower built by the test (mode, dark reads, writes on or off) and
 * a routing policy the test sets, for shadow features the config does not expose yet. Stopped in teardown.
 */
import { initClassifier, createClassifier } from '../../src/router/classify.js';
import { Router } from '../../src/proxy/router-glue.js';
import { ProxyServer } from '../../src/proxy/server.js';
import { parseDatabaseUrl } from '../../src/net/database-url.js';
import { warmScramSecrets } from '../../src/auth/scram-secrets.js';
import type { UserEntry } from '../../src/auth/users.js';
import { STATE_POLICY, type CutoverState } from '../../src/domain/states.js';
import { Shadower, type ShadowOptions } from '../../src/shadow/shadower.js';
import type { Teardown } from './servers.js';

export interface ShadowProxy {
  proxy: ProxyServer;
  shadower: Shadower;
  /** Routes by this state's policy from now on. */
  setState(s: CutoverState): void;
  url(database?: string): string;
}

export async function startShadowProxy(
  t: Teardown,
  sourceUrl: string,
  targetUrl: string,
  state: CutoverState,
  shadow: Omit<ShadowOptions, 'source' | 'target' | 'classifier'>,
): Promise<ShadowProxy> {
  const source = parseDatabaseUrl(sourceUrl, 'source');
  const target = parseDatabaseUrl(targetUrl, 'target');
  if (!source.ok || !target.ok) throw new Error('bad database URL');
  await initClassifier();
  const classifier = createClassifier();
  let policy = STATE_POLICY[state];
  const router = new Router({ policy: () => policy, classifier, freshness: null, split: 'random' });
  const shadower = new Shadower({ source: source.value, target: target.value, classifier, ...shadow });
  const u = source.value;
  const users = new Map<string, UserEntry>([[u.user, { name: u.user, method: 'scram-sha-256', password: u.password }]]);
  warmScramSecrets(users.values());
  const proxy = new ProxyServer({
    router,
    shadower: () => shadower,
    listen: { host: '127.0.0.1', port: 0 },
    backends: { source: source.value, target: target.value },
    users,
    maxClients: 100,
    maxMessageBytes: 64 << 20,
  });
  const listen = await proxy.listen();
  t.teardown(async () => {
    await proxy.shutdown(1000);
    await shadower.close();
  });
  return {
    proxy,
    shadower,
    setState(s) {
      policy = STATE_POLICY[s];
    },
    url(database = u.database) {
      return `postgresql://${encodeURIComponent(u.user)}:${encodeURIComponent(u.password ?? '')}@127.0.0.1:${listen.port}/${database}`;
    },
  };
}
