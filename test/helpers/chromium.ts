/**
 * Debian's headless chromium for the report test: --dump-dom and --screenshot of a local file, offline (no
 * network: a dead proxy for anything that would leave the machine), with a fresh profile each run. The PNG is
 * decoded here (zlib + PNG row filters; no dependency) to check that the page is not blank.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';

export function findChromium(): string | null {
  for (const p of [process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser']) if (p && existsSync(p)) return p;
  return null;
}

function run(bin: string, args: string[], timeoutMs = 90_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--disable-dev-shm-usage', '--proxy-server=127.0.0.1:9', '--hide-scrollbars'];

/** Runs chromium on `file` with `args`, each run with its own profile directory. */
async function chromium(bin: string, file: string, args: string[]) {
  const profile = mkdtempSync(join(tmpdir(), 'pgc-chromium-'));
  try {
    return await run(bin, [...FLAGS, `--user-data-dir=${profile}`, ...args, `file://${file}`]);
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

export const dumpDom = (bin: string, file: string) => chromium(bin, file, ['--virtual-time-budget=2000', '--dump-dom']);

export async function screenshot(bin: string, file: string, png: string): Promise<{ code: number; stderr: string }> {
  const r = await chromium(bin, file, [`--screenshot=${png}`, '--window-size=1200,2000']);
  return { code: r.code, stderr: r.stderr };
}

export interface PngStats {
  readonly width: number;
  readonly height: number;
  readonly distinctColors: number;
  /** Share of pixels that are not (near) white. */
  readonly inkShare: number;
}

/** Decodes an 8-bit RGB/RGBA non-interlaced PNG (what chromium writes) and counts its colours. */
export function pngStats(path: string): PngStats {
  const b = readFileSync(path);
  if (b.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0, height = 0, depth = 0, colorType = 0;
  const idat: Buffer[] = [];
  while (off < b.length) {
    const len = b.readUInt32BE(off);
    const type = b.toString('latin1', off + 4, off + 8);
    const data = b.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      depth = data[8]!;
      colorType = data[9]!;
    } else if (type === 'IDAT') idat.push(data);
    off += 12 + len;
  }
  if (depth !== 8 || (colorType !== 2 && colorType !== 6)) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colorType}`);
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const prev = Buffer.alloc(stride);
  const cur = Buffer.alloc(stride);
  const colors = new Set<number>();
  let ink = 0;
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const up = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      switch (f) {
        case 1: v += a; break;
        case 2: v += up; break;
        case 3: v += (a + up) >> 1; break;
        case 4: {
          const p = a + up - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - up), pc = Math.abs(p - c);
          v += pa <= pb && pa <= pc ? a : pb <= pc ? up : c;
          break;
        }
        default: break;
      }
      cur[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      const r = cur[x * bpp]!, g = cur[x * bpp + 1]!, bl = cur[x * bpp + 2]!;
      colors.add((r << 16) | (g << 8) | bl);
      if (r < 235 || g < 235 || bl < 235) ink++;
    }
    cur.copy(prev);
  }
  return { width, height, distinctColors: colors.size, inkShare: ink / (width * height) };
}
