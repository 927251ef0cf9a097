/**
 * Every option of `pg-cutover start`, declared once: name, flag, environment variable, type, default and doc.
 * The CLI builds its flags and --help from this table, and the README's option table is generated from it.
 */
export type OptionType = 'string' | 'url' | 'hostport' | 'int' | 'bool' | 'file' | 'enum';

export interface OptionSpec {
  readonly key: string;
  readonly flag: string;
  readonly env: string;
  readonly type: OptionType;
  readonly default?: string;
  readonly required?: boolean;
  readonly choices?: readonly string[];
  readonly min?: number;
  readonly doc: string;
}

const opt = (s: Omit<OptionSpec, 'env' | 'flag'> & { flag?: string }): OptionSpec => {
  const flag = s.flag ?? s.key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  return { ...s, flag, env: 'PGCUTOVER_' + flag.replace(/-/g, '_').toUpperCase() };
};

export const START_OPTIONS: readonly OptionSpec[] = [
  opt({ key: 'source', type: 'url', required: true, doc: 'Source (PostgreSQL 14) URL, postgres://user:pass@host:port/db?sslmode=disable|prefer|require; the proxy logs in to it with these credentials' }),
  opt({ key: 'target', type: 'url', required: true, doc: 'Target (PostgreSQL 15 / Aurora) URL, same form as --source' }),
  opt({ key: 'targetReaders', type: 'string', default: '', doc: 'Comma-separated host:port of the target\'s readers (Aurora reader instances by their instance endpoints, not the balancing reader endpoint; physical standbys of the target). A read routed to the target (READS_* onward) goes to a reader that answers, has applied the session\'s last write (its pg_last_wal_replay_lsn(), sampled with --freshness-sample-ms) and is within --max-read-staleness-ms, else to the target primary; never a write or a transaction. Credentials, database and TLS as --target and --target-control; see README "Target readers"' }),
  opt({ key: 'sourceControl', type: 'url', doc: 'Privileged source URL for the control plane (replication, fencing, setval, gates); default --source. Its role is never fenced, so it must differ from every application role (README "Safety")' }),
  opt({ key: 'targetControl', type: 'url', doc: 'Privileged target URL for the control plane; default --target' }),
  opt({ key: 'appRoles', type: 'string', default: '', doc: 'Comma-separated application roles the write fence covers besides the proxy\'s own backend logins (the --source/--target users); see README "Safety"' }),
  opt({ key: 'listen', type: 'hostport', default: '127.0.0.1:6432', doc: 'Address the proxy accepts PostgreSQL clients on' }),
  opt({ key: 'admin', type: 'hostport', default: '127.0.0.1:9187', doc: 'Address of the admin HTTP API (health, state, metrics)' }),
  opt({ key: 'users', type: 'file', doc: 'Client users file (JSON {"users":[{name,password,method}]} or PgBouncer userlist.txt "user" "password" ["method"]); default: the source URL\'s user and password, SCRAM-SHA-256' }),
  opt({ key: 'tlsCert', type: 'file', doc: 'PEM certificate: clients that send SSLRequest get TLS (otherwise the proxy answers N)' }),
  opt({ key: 'tlsKey', type: 'file', doc: 'PEM private key for --tls-cert' }),
  opt({ key: 'tlsMinVersion', type: 'enum', default: 'TLSv1.2', choices: ['TLSv1.2', 'TLSv1.3'], doc: 'Oldest TLS version offered to clients' }),
  opt({ key: 'tlsCiphers', type: 'string', default: 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305', doc: 'OpenSSL cipher list for TLS 1.2 clients (default: forward secrecy and AEAD only; TLS 1.3 suites are always AEAD)' }),
  opt({ key: 'requireTls', type: 'bool', default: 'false', doc: 'Refuse clients that do not use TLS, as a hostssl-only pg_hba.conf does (FATAL 28000 no pg_hba.conf entry ..., no encryption); needs --tls-cert' }),
  opt({ key: 'backendLogin', type: 'enum', default: 'auto', choices: ['auto', 'client', 'url'], doc: 'Role clients run as on the backends: client (each as itself: SCRAM pass-through, md5 hash or backendPassword), url (all as the --source/--target user), auto (as itself when its secret came from pg_authid, by --auth-lookup or copied into --users, or it has a backendPassword; else as the URL user)' }),
  opt({ key: 'authLookup', type: 'bool', default: 'false', doc: 'Look up users missing from --users on the source with --auth-query through --source-control (PgBouncer auth_query); answers cached 10 s' }),
  opt({ key: 'authQuery', type: 'string', default: 'SELECT usename, passwd FROM pg_shadow WHERE usename=$1', doc: 'With --auth-lookup: query returning (name, pg_authid secret) for $1' }),
  opt({ key: 'loginTimeoutMs', type: 'int', default: '15000', min: 1, doc: 'A client must finish logging in within this (PostgreSQL\'s authentication_timeout is 60 s; a real login takes milliseconds)' }),
  opt({ key: 'maxPendingLogins', type: 'int', default: '100', min: 1, doc: 'Connections still logging in, apart from --max-clients: at the limit the oldest that have been at it for 1 s are closed, so silent sockets cannot keep clients out (a burst of younger ones is let in, up to --max-clients)' }),
  opt({ key: 'loginFailuresMax', type: 'int', default: '20', min: 0, doc: 'Failed logins from one client address within --login-block-ms that block it for --login-block-ms (0 = never block)' }),
  opt({ key: 'loginBlockMs', type: 'int', default: '60000', min: 1, doc: 'Failed-login counting window and block duration per client address' }),
  opt({ key: 'loginFailureDelayMs', type: 'int', default: '1000', min: 0, doc: 'Longest delay before a failed login is answered (doubles from 50 ms per recent failure of the address; 0 = none)' }),
  opt({ key: 'sourcePasswordFile', type: 'file', doc: 'File holding the --source password (instead of putting it in the URL, visible in ps)' }),
  opt({ key: 'targetPasswordFile', type: 'file', doc: 'File holding the --target password' }),
  opt({ key: 'sourceControlPasswordFile', type: 'file', doc: 'File holding the --source-control password' }),
  opt({ key: 'targetControlPasswordFile', type: 'file', doc: 'File holding the --target-control password' }),
  opt({ key: 'adminTokenFile', type: 'file', doc: 'File holding the admin token (instead of --admin-token)' }),
  opt({ key: 'state', type: 'enum', default: 'SOURCE_PRIMARY', choices: ['SOURCE_PRIMARY', 'READS_10PCT_AURORA', 'READS_50PCT_AURORA', 'READS_100PCT_AURORA', 'SHADOW_WRITES', 'WRITES_TO_AURORA', 'SOURCE_READ_ONLY', 'CUTOVER_COMPLETE', 'ROLLBACK'], doc: 'Cutover state at start when no shared store holds one' }),
  opt({ key: 'redis', type: 'url', doc: 'Redis URL (redis://host:port/db) holding the cutover state shared by every sidecar; without it the state lives in this process' }),
  opt({ key: 'redisPrefix', type: 'string', default: 'pgcutover:', doc: 'Key prefix in Redis, so several cutovers can share one Redis' }),
  opt({ key: 'sidecarId', type: 'string', doc: 'Name of this sidecar in the audit log (default: host:pid)' }),
  opt({ key: 'adminToken', type: 'string', doc: 'Bearer token for mutating admin API calls; required when --admin is not a loopback address' }),
  opt({ key: 'timeScale', type: 'string', default: '1', doc: 'Multiply every control-plane duration (stable times, breaker windows, rollback ramp) by this, e.g. 0.001 for demos' }),
  opt({ key: 'unleashUrl', type: 'url', doc: 'Unleash API URL (…/api); flags cutover.reads-pct, cutover.shadow-writes, cutover.writes-to-aurora, cutover.kill-switch request transitions' }),
  opt({ key: 'unleashToken', type: 'string', doc: 'Unleash client API token' }),
  opt({ key: 'subscription', type: 'string', doc: 'Name of the native logical replication subscription on the target (paused by a rollback, watched for lag)' }),
  opt({ key: 'dmsTaskArn', type: 'string', doc: 'AWS DMS replication task ARN: watch it (status, CDC latency) instead of a native subscription, and stop it on rollback' }),
  opt({ key: 'lagProbe', type: 'bool', default: 'true', doc: 'With --subscription or --dms-task-arn: write a heartbeat row (table pgcutover_heartbeat) on the writer every second and read it on the replica; its age is the replication lag fed to the lag breaker' }),
  opt({ key: 'alertWebhook', type: 'url', doc: 'POST every alert (breaker opened/closed, rollback, scale hook) as JSON to this URL; alerts always go to the log and the pgcutover_alerts_total metric' }),
  opt({ key: 'scaleCommand', type: 'string', doc: 'Target CPU breaker: shell command run when it opens (env PGCUTOVER_BREAKER, PGCUTOVER_CPU_PERCENT, PGCUTOVER_THRESHOLD, PGCUTOVER_SIDECAR, PGCUTOVER_TARGET)' }),
  opt({ key: 'scaleWebhook', type: 'url', doc: 'Target CPU breaker: URL POSTed (JSON) when it opens, instead of or besides --scale-command' }),
  opt({ key: 'awsRegion', type: 'string', doc: 'AWS region for CloudWatch and DMS (default: the SDK\'s own resolution, AWS_REGION)' }),
  opt({ key: 'awsEndpoint', type: 'url', doc: 'Override the AWS service endpoint (testing against a local double)' }),
  opt({ key: 'targetClusterId', type: 'string', doc: 'Aurora DB cluster identifier: its CloudWatch AWS/RDS CPUUtilization feeds the target CPU breaker' }),
  opt({ key: 'targetInstanceId', type: 'string', doc: 'RDS DB instance identifier, when the target is not an Aurora cluster (CPUUtilization by DBInstanceIdentifier)' }),
  opt({ key: 'cloudwatchNamespace', type: 'string', doc: 'Publish the proxy\'s counters and breaker states to CloudWatch under this namespace (off when unset)' }),
  opt({ key: 'cloudwatchIntervalMs', type: 'int', default: '60000', min: 1000, doc: 'CloudWatch publishing and CPU polling period' }),
  opt({ key: 'maxClients', type: 'int', default: '2000', min: 1, doc: 'Most logged-in client sessions at once; more get SQLSTATE 53300 (connections still logging in have --max-pending-logins)' }),
  opt({ key: 'ignoreStartupParameters', type: 'string', default: '', doc: "Comma-separated startup parameters dropped silently (PgBouncer's ignore_startup_parameters); others outside the allow-list (application_name, client_encoding, DateStyle, TimeZone, IntervalStyle, search_path, extra_float_digits, and the settings any role may set, pg_settings context user, except default_transaction_read_only and transaction_*, custom dotted settings such as app.tenant; options with those -c settings) get SQLSTATE 08P01" }),
  opt({ key: 'maxMessageBytes', type: 'int', default: String(64 * 1024 * 1024), min: 1024, doc: 'Largest frontend message accepted; a larger one gets SQLSTATE 08P01 and closes that connection' }),
  opt({ key: 'healthProbeMs', type: 'int', default: '2000', min: 50, doc: 'How often each backend is probed (select 1 on a control connection) for /healthz; an unreachable one makes it 503 degraded' }),
  opt({ key: 'maxPreparedBytes', type: 'int', default: String(32 * 1024 * 1024), min: 1024, doc: 'Bytes of named prepared statements one session may hold (the proxy keeps each to re-Parse it on the other backend); more ends the session with SQLSTATE 53200' }),
  opt({ key: 'connectTimeoutMs', type: 'int', default: '5000', min: 1, doc: 'Timeout for connecting and logging in to a backend' }),
  opt({ key: 'shutdownTimeoutMs', type: 'int', default: '30000', min: 0, doc: 'On SIGTERM, how long open transactions may run before connections are closed' }),
  opt({ key: 'readYourWrites', type: 'bool', default: 'true', doc: 'Read-your-writes by LSN: after a session\'s write commits, its reads go to the other side only once that side has applied it (sampled positions, no query per statement); false splits reads regardless' }),
  opt({ key: 'freshnessSampleMs', type: 'int', default: '10', min: 1, doc: 'How often the writer\'s WAL position and the replicas\' applied position (pg_stat_replication.replay_lsn) are sampled, by one sampler, for read-your-writes, --max-read-staleness-ms and the shadow\'s lag explanation; a read right after a write waits for the next sample on the writer' }),
  opt({ key: 'maxReadStalenessMs', type: 'int', default: '0', min: 0, doc: 'Send a read to the other side only while it is at most this stale (ms behind the writer, from the sampled positions); 0 = no bound' }),
  opt({ key: 'writeFunctions', type: 'string', doc: 'Comma-separated functions that write, besides the built-in list (nextval, set_config, pg_advisory_lock…): a read calling one goes to the writer; a trailing * matches a prefix. An unlisted writing function called from a read meets the replica link\'s read-only transaction (25006) and is retried on the writer' }),
  opt({ key: 'readSplit', type: 'enum', default: 'random', choices: ['random', 'session-hash'], doc: 'How reads are split: weighted random per statement, or a stable hash of the session' }),
  opt({ key: 'shadowSamplePct', type: 'int', default: '10', min: 0, doc: 'SHADOW_WRITES: percent of write transactions run in lock-step on the target and rolled back (0..100)' }),
  opt({ key: 'shadowPoolSize', type: 'int', default: '4', min: 1, doc: 'SHADOW_WRITES: target connections for shadows; with none free a transaction is not shadowed' }),
  opt({ key: 'shadowLagBudgetBytes', type: 'int', default: '65536', min: 0, doc: 'SHADOW_WRITES: replication lag above which shadow sampling backs off' }),
  opt({ key: 'shadowCapMs', type: 'int', default: '2000', min: 10, doc: 'SHADOW_WRITES: a shadow transaction open longer is rolled back and counted as abandoned' }),
  opt({ key: 'shadowLockTimeoutMs', type: 'int', default: '100', min: 1, doc: 'SHADOW_WRITES: lock_timeout of shadow sessions (keep well below deadlock_timeout)' }),
  opt({ key: 'shadowMaskColumns', type: 'string', default: 'id', doc: 'SHADOW_WRITES: comma-separated column names left out of result comparison (timestamps and uuids are always masked)' }),
  opt({ key: 'shadowMode', type: 'enum', default: 'rollback', choices: ['rollback', 'apply'], doc: 'SHADOW_WRITES: rollback (every shadow is rolled back; the target changes only by replication) or apply (shadows COMMIT: only for a target that is NOT a replica, e.g. a load-test copy; refused at start when the target has an enabled subscription)' }),
  opt({ key: 'darkReadPct', type: 'int', default: '0', min: 0, doc: 'Before READS_100PCT_AURORA: percent of reads sent to the source that also run on the target (read-only, rolled back) and are compared (0..100)' }),
  opt({ key: 'gate2HoldMs', type: 'int', default: '200', min: 10, doc: 'Gate 2: longest coordinated write hold (every sidecar) for one consistent point, at which chunks that keep changing are compared' }),
  opt({ key: 'gate2Exclude', type: 'string', doc: 'Gate 2: tables not compared, each with its reason: "schema.table:reason; other:reason" (shown in the gate output and the audit log)' }),
  opt({ key: 'gate2Accept', type: 'string', doc: 'Gate 2: tables whose differences are accepted (compared and shown, not failing), each with its reason: "table:reason; …"' }),
  opt({ key: 'gate3MinShadowed', type: 'int', default: '10000', min: 0, doc: 'Gate 3: shadowed write transactions needed before WRITES_TO_AURORA' }),
  opt({ key: 'gate3ReadP99Ms', type: 'int', default: '30', min: 1, doc: 'Gate 3: read p99 on the target through the proxy must be below this (ms)' }),
  opt({ key: 'gate3WriteP99Ms', type: 'int', default: '20', min: 1, doc: 'Gate 3: write p99 on the target (the shadowed statements) must be below this (ms)' }),
  opt({ key: 'snapshotTo', type: 'string', doc: 'Phase 4: where `pg-cutover snapshot` archives the source (pg_dump -Fc): s3://bucket/key (multipart upload with the AWS settings above) or a file path' }),
  opt({ key: 'pgBinDir', type: 'string', default: '/usr/lib/postgresql/15/bin', doc: 'Phase 4: directory of pg_dump and pg_restore for the snapshot (major version at least the source\'s)' }),
  opt({ key: 'stabilityDays', type: 'int', default: '90', min: 0, doc: 'Final gate: days (× --time-scale) writes must have been on the target without a rollback' }),
  opt({ key: 'slotAdvanceIntervalMs', type: 'int', default: '60000', min: 100, doc: 'While writes are on the target: how often the disabled forward subscription\'s slot on the source is advanced past the WAL that came from the target' }),
  opt({ key: 'slotRetentionAlertBytes', type: 'int', default: String(1024 * 1024 * 1024), min: 0, doc: 'Alert when a pg-cutover replication slot holds more WAL than this (either side)' }),
  opt({ key: 'historyIntervalMs', type: 'int', default: '10000', min: 100, doc: 'How often the sidecar records a history sample for the report (state, read split, p99, errors, lag, shadow match rate, slot retention)' }),
  opt({ key: 'logLevel', type: 'enum', default: 'info', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], doc: 'Log level (logs are JSON lines on stderr)' }),
  opt({ key: 'logLevelFile', type: 'file', doc: 'File holding the log level (one word); read at start and on SIGHUP, it overrides --log-level' }),
];
