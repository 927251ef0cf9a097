/** Where the final snapshot goes: `s3://bucket/key` or a file path (kept apart from the SDK for the config loader). */
export type SnapshotDest =
  | { readonly kind: 's3'; readonly bucket: string; readonly key: string }
  | { readonly kind: 'file'; readonly path: string };

/** `s3://bucket/key` or a path; null when it is neither. */
export function parseSnapshotDest(v: string): SnapshotDest | null {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(v);
  if (m) return { kind: 's3', bucket: m[1]!, key: m[2]! };
  if (v.startsWith('s3:')) return null;
  return v.trim() === '' ? null : { kind: 'file', path: v };
}

export function describeDest(d: SnapshotDest): string {
  return d.kind === 's3' ? `s3://${d.bucket}/${d.key}` : d.path;
}

