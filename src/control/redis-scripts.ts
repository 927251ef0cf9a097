/**
 * Lua scripts of the Redis state store. Each runs atomically in Redis, so the state change, its
 * audit record and its announcement happen together or not at all.
 * https://redis.io/docs/latest/develop/interact/programmability/eval-intro/
 *
 * Common arguments: KEYS[1] state key, KEYS[2] audit stream;
 * ARGV[1] version, ARGV[2] snapshot JSON, ARGV[3] pub/sub channel, ARGV[4] audit entry JSON
 * ('' for none), ARGV[5] approximate MAXLEN of the audit stream.
 * Reply: { status, stored JSON } with status 1 = written, 0 = not written (stored JSON is the
 * winner), -1 = the state key does not exist.
 */

const RECORD = `
  if ARGV[4] ~= '' then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'entry', ARGV[4])
  end
  redis.call('PUBLISH', ARGV[3], ARGV[2])
  return {1, ARGV[2]}
`;

/** Compare-and-set on the snapshot's version. ARGV[1] is the expected current version. */
export const CAS_LUA = `
  local cur = redis.call('GET', KEYS[1])
  if not cur then return {-1, ''} end
  if tonumber(cjson.decode(cur)['version']) ~= tonumber(ARGV[1]) then return {0, cur} end
  redis.call('SET', KEYS[1], ARGV[2])
  ${RECORD}
`;

/**
 * Write the snapshot if the key is missing or holds a lower version (Redis restarted without
 * persistence, or is behind a sidecar that committed a rollback during an outage). ARGV[1] is
 * the snapshot's own version. Versions only grow, so the highest one is the newest.
 */
export const RESTORE_LUA = `
  local cur = redis.call('GET', KEYS[1])
  if cur and tonumber(cjson.decode(cur)['version']) >= tonumber(ARGV[1]) then return {0, cur} end
  redis.call('SET', KEYS[1], ARGV[2])
  ${RECORD}
`;

export type ScriptReply = [number, string];

/** The commands `defineCommand` adds to an ioredis client. */
export interface StoreCommands {
  pgcutoverCas(stateKey: string, auditKey: string, version: number, json: string, channel: string, audit: string, maxLen: number): Promise<ScriptReply>;
  pgcutoverRestore(stateKey: string, auditKey: string, version: number, json: string, channel: string, audit: string, maxLen: number): Promise<ScriptReply>;
}
