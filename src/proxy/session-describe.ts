/** What one client session is doing, for GET /clients (PgBouncer's SHOW CLIENTS / SHOW SERVERS). */
import type { BackendLink } from './backend-link.js';
import type { ClientSession } from './client-session.js';
import type { SessionLinks } from './session-links.js';
import type { SessionTap } from './session-tap.js';

function link(l: BackendLink | null): Record<string, unknown> | null {
  if (l === null) return null;
  return { pid: l.pid, address: l.address, idle: l.idle, txStatus: String.fromCharCode(l.txStatus), pending: l.pending, swallow: l.swallow, inUnit: l.inUnit, holdingReply: l.retryable };
}

export function describeSession(s: ClientSession, links: SessionLinks, tap: SessionTap): Record<string, unknown> {
  const st = s.st;
  return {
    id: s.id,
    pid: s.pid,
    user: s.user,
    database: s.params.database ?? s.user,
    applicationName: s.params.application_name ?? '',
    client: `${s.socket.remoteAddress ?? '?'}:${s.socket.remotePort ?? '?'}`,
    phase: s.phase,
    state: st.kind === 'waiting' ? `waiting (${st.on})` : st.kind,
    draining: s.draining,
    pinnedTo: s.routing.pinnedTo,
    waiting: st.kind === 'parked' ? 'writes held' : st.kind === 'waiting' ? 'backend connect or reply' : null,
    shadow: tap.describe(),
    source: link(links.source),
    target: link(links.target),
    ...(links.readers.length > 0 ? { readers: links.readers.map(link) } : {}),
  };
}
