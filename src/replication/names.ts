/** Default names of the native replication objects pg-cutover creates (no imports: the CLI's --help reads them). */
export const DEFAULT_PUBLICATION = 'pgcutover';
export const DEFAULT_SUBSCRIPTION = 'pgcutover';
