/**
 * The TLS context clients get after SSLRequest, as one holder with a `reload()` (SIGHUP: a renewed
 * certificate takes effect for new connections without a restart). Defaults follow current guidance
 * (Mozilla "intermediate"): TLS 1.2 at least, and for TLS 1.2 only ECDHE key exchange (forward secrecy)
 * with AEAD ciphers (no CBC, no SHA-1 MACs). TLS 1.3 suites are all AEAD with forward secrecy.
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureContext, type SecureVersion } from 'node:tls';
import { fail, ok, type Result } from '../auth/result.js';

export const TLS_MIN_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const;
export type TlsMinVersion = (typeof TLS_MIN_VERSIONS)[number];

export const DEFAULT_TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface TlsSettings {
  certPath: string;
  keyPath: string;
  minVersion: TlsMinVersion;
  /** OpenSSL cipher list for TLS 1.2. */
  ciphers: string;
}

export function buildTlsContext(s: TlsSettings): Result<SecureContext> {
  try {
    return ok(
      createSecureContext({
        cert: readFileSync(s.certPath),
        key: readFileSync(s.keyPath),
        minVersion: s.minVersion as SecureVersion,
        ciphers: s.ciphers,
        honorCipherOrder: true,
      }),
    );
  } catch (e) {
    return fail(`TLS certificate ${s.certPath} / key ${s.keyPath}: ${(e as Error).message}`);
  }
}

export class TlsHolder {
  private ctx: SecureContext;

  private constructor(
    private readonly settings: TlsSettings,
    ctx: SecureContext,
  ) {
    this.ctx = ctx;
  }

  static open(s: TlsSettings): Result<TlsHolder> {
    const r = buildTlsContext(s);
    return r.ok ? ok(new TlsHolder(s, r.value)) : r;
  }

  context(): SecureContext {
    return this.ctx;
  }

  /** Re-reads the certificate and key; on error the context in force stays. */
  reload(): Result<void> {
    const r = buildTlsContext(this.settings);
    if (!r.ok) return r;
    this.ctx = r.value;
    return ok(undefined);
  }
}
