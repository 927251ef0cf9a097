/**
 * Settings any role may set for its own session: PostgreSQL's context `user` (PGC_USERSET), the names
 * `select name from pg_settings where context = 'user'` lists on both PostgreSQL 14 and 15 (a name only one
 * major knows would fail the login on the other backend). A client may pass these at login, as startup
 * parameters or in `options`, as it may directly (node-postgres sends statement_timeout and
 * idle_in_transaction_session_timeout this way). Left out, beside the presentation settings kept in
 * startup-params.ts: default_transaction_read_only and the transaction_* settings (a login could switch the
 * non-writer link's read-only default off), and local_preload_libraries (loads code at login).
 */
export const USER_SETTINGS: ReadonlySet<string> = new Set([
  'array_nulls', 'backend_flush_after', 'backslash_quote', 'bytea_output', 'check_function_bodies',
  'client_connection_check_interval', 'client_min_messages', 'commit_siblings', 'constraint_exclusion',
  'cpu_index_tuple_cost', 'cpu_operator_cost', 'cpu_tuple_cost', 'cursor_tuple_fraction', 'debug_pretty_print',
  'debug_print_parse', 'debug_print_plan', 'debug_print_rewritten', 'default_statistics_target',
  'default_table_access_method', 'default_tablespace', 'default_text_search_config', 'default_toast_compression',
  'default_transaction_deferrable', 'default_transaction_isolation', 'effective_cache_size',
  'effective_io_concurrency', 'enable_async_append', 'enable_bitmapscan', 'enable_gathermerge', 'enable_hashagg',
  'enable_hashjoin', 'enable_incremental_sort', 'enable_indexonlyscan', 'enable_indexscan', 'enable_material',
  'enable_memoize', 'enable_mergejoin', 'enable_nestloop', 'enable_parallel_append', 'enable_parallel_hash',
  'enable_partition_pruning', 'enable_partitionwise_aggregate', 'enable_partitionwise_join', 'enable_seqscan',
  'enable_sort', 'enable_tidscan', 'escape_string_warning', 'exit_on_error', 'force_parallel_mode',
  'from_collapse_limit', 'geqo', 'geqo_effort', 'geqo_generations', 'geqo_pool_size', 'geqo_seed',
  'geqo_selection_bias', 'geqo_threshold', 'gin_fuzzy_search_limit', 'gin_pending_list_limit',
  'hash_mem_multiplier', 'idle_in_transaction_session_timeout', 'idle_session_timeout', 'jit', 'jit_above_cost',
  'jit_expressions', 'jit_inline_above_cost', 'jit_optimize_above_cost', 'jit_tuple_deforming',
  'join_collapse_limit', 'lc_monetary', 'lc_numeric', 'lc_time', 'lock_timeout',
  'log_parameter_max_length_on_error', 'logical_decoding_work_mem', 'maintenance_io_concurrency',
  'maintenance_work_mem', 'max_parallel_maintenance_workers', 'max_parallel_workers',
  'max_parallel_workers_per_gather', 'min_parallel_index_scan_size', 'min_parallel_table_scan_size',
  'parallel_leader_participation', 'parallel_setup_cost', 'parallel_tuple_cost', 'password_encryption',
  'plan_cache_mode', 'quote_all_identifiers', 'random_page_cost', 'restrict_nonsystem_relation_kind',
  'row_security', 'seq_page_cost', 'standard_conforming_strings', 'statement_timeout', 'synchronize_seqscans',
  'synchronous_commit', 'tcp_keepalives_count', 'tcp_keepalives_idle', 'tcp_keepalives_interval',
  'tcp_user_timeout', 'temp_buffers', 'temp_tablespaces', 'timezone_abbreviations', 'trace_notify', 'trace_sort',
  'transform_null_equals', 'vacuum_cost_delay', 'vacuum_cost_limit', 'vacuum_cost_page_dirty',
  'vacuum_cost_page_hit', 'vacuum_cost_page_miss', 'vacuum_failsafe_age', 'vacuum_freeze_min_age',
  'vacuum_freeze_table_age', 'vacuum_multixact_failsafe_age', 'vacuum_multixact_freeze_min_age',
  'vacuum_multixact_freeze_table_age', 'wal_sender_timeout', 'wal_skip_threshold', 'work_mem', 'xmlbinary',
  'xmloption',
]);
