/**
 * Self-contained SVG charts drawn on the server from recorded history: line charts with threshold lines and
 * a state timeline. No library, no script, no external reference: the markup opens offline anywhere.
 */
const W = 960;
const H = 220;
const PAD = { left: 64, right: 16, top: 28, bottom: 34 };

export interface Series {
  readonly name: string;
  readonly color: string;
  /** [epoch ms, value]; null is a gap. */
  readonly points: readonly (readonly [number, number | null])[];
}

export interface Threshold {
  readonly value: number;
  readonly label: string;
  readonly color: string;
}

export interface LineChart {
  readonly id: string;
  readonly title: string;
  readonly unit: string;
  readonly series: readonly Series[];
  readonly thresholds?: readonly Threshold[];
  /** Fixed y range top (e.g. 100 for percent); default from the data and thresholds. */
  readonly yMax?: number;
  readonly format?: (v: number) => string;
}

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const clock = (ms: number) => new Date(ms).toISOString().slice(11, 19);

/** A time tick label; the first and last are anchored inward so they stay inside the frame. */
function timeLabel(x: number, y: number, t: number, f: number): string {
  const anchor = f === 0 ? 'start' : f === 1 ? 'end' : 'middle';
  return `<text x="${x.toFixed(1)}" y="${y}" text-anchor="${anchor}" font-family="sans-serif" font-size="11" fill="#57606a">${clock(t)}</text>`;
}

function frame(id: string, title: string, body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" id="${esc(id)}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">` +
    `<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff" stroke="#d0d7de"/>` +
    `<text x="${PAD.left}" y="18" font-family="sans-serif" font-size="14" font-weight="bold" fill="#1f2328">${esc(title)}</text>${body}</svg>`;
}

function empty(id: string, title: string): string {
  return frame(id, title, `<text class="no-data" x="${W / 2}" y="${H / 2}" text-anchor="middle" font-family="sans-serif" font-size="13" fill="#57606a">no data recorded yet</text>`);
}

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

export function lineChart(c: LineChart): string {
  const all = c.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((v): v is number => v !== null && Number.isFinite(v));
  if (xs.length === 0 || ys.length === 0) return empty(c.id, c.title);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const yMax = c.yMax ?? niceMax(Math.max(...ys, ...(c.thresholds ?? []).map((t) => t.value)) * 1.1);
  const fmt = c.format ?? ((v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : String(Number(v.toPrecision(3)))));
  const px = (t: number) => PAD.left + ((t - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const py = (v: number) => H - PAD.bottom - (Math.min(v, yMax) / yMax) * (H - PAD.top - PAD.bottom);
  const parts: string[] = [];
  // Axes, grid and labels.
  for (const f of [0, 0.5, 1]) {
    const y = py(yMax * f);
    parts.push(`<line x1="${PAD.left}" y1="${y.toFixed(1)}" x2="${W - PAD.right}" y2="${y.toFixed(1)}" stroke="#eaeef2"/>`);
    parts.push(`<text x="${PAD.left - 6}" y="${(y + 4).toFixed(1)}" text-anchor="end" font-family="sans-serif" font-size="11" fill="#57606a">${esc(fmt(yMax * f))}</text>`);
  }
  for (const f of [0, 0.25, 0.5, 0.75, 1]) parts.push(timeLabel(px(x0 + (x1 - x0) * f), H - 12, x0 + (x1 - x0) * f, f));
  parts.push(`<text x="14" y="${H / 2}" transform="rotate(-90 14 ${H / 2})" text-anchor="middle" font-family="sans-serif" font-size="11" fill="#57606a">${esc(c.unit)}</text>`);
  for (const th of c.thresholds ?? []) {
    const y = py(th.value).toFixed(1);
    parts.push(`<line class="threshold" x1="${PAD.left}" y1="${y}" x2="${W - PAD.right}" y2="${y}" stroke="${th.color}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
    parts.push(`<text x="${W - PAD.right - 4}" y="${(Number(y) - 4).toFixed(1)}" text-anchor="end" font-family="sans-serif" font-size="11" fill="${th.color}">${esc(th.label)}</text>`);
  }
  // Series: one polyline per run of known values; a lone point is a dot.
  let legendX = PAD.left + c.title.length * 7.6 + 24;
  for (const s of c.series) {
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) parts.push(`<polyline class="series" fill="none" stroke="${s.color}" stroke-width="2" points="${run.join(' ')}"/>`);
      else if (run.length === 1) {
        const [x, y] = run[0]!.split(',');
        parts.push(`<circle class="series" cx="${x}" cy="${y}" r="2.5" fill="${s.color}"/>`);
      }
      run = [];
    };
    for (const [t, v] of s.points) {
      if (v === null || !Number.isFinite(v)) flush();
      else run.push(`${px(t).toFixed(1)},${py(v).toFixed(1)}`);
    }
    flush();
    parts.push(`<rect x="${legendX}" y="9" width="12" height="4" fill="${s.color}"/><text x="${legendX + 16}" y="15" font-family="sans-serif" font-size="11" fill="#1f2328">${esc(s.name)}</text>`);
    legendX += 24 + s.name.length * 6.5;
  }
  return frame(c.id, c.title, parts.join(''));
}

export interface Segment {
  readonly from: number;
  readonly to: number;
  readonly label: string;
}

export const STATE_COLORS: Record<string, string> = {
  SOURCE_PRIMARY: '#8c959f',
  READS_10PCT_AURORA: '#a5d6ff',
  READS_50PCT_AURORA: '#54aeff',
  READS_100PCT_AURORA: '#0969da',
  SHADOW_WRITES: '#8250df',
  WRITES_TO_AURORA: '#1a7f37',
  SOURCE_READ_ONLY: '#2da44e',
  CUTOVER_COMPLETE: '#116329',
  ROLLBACK: '#cf222e',
};

/** Contiguous runs of the same state in the samples. */
export function segments(samples: readonly { at: number; state: string }[]): Segment[] {
  const out: { from: number; to: number; label: string }[] = [];
  for (const s of samples) {
    const last = out[out.length - 1];
    if (last && last.label === s.state) last.to = s.at;
    else {
      if (last) last.to = s.at;
      out.push({ from: s.at, to: s.at, label: s.state });
    }
  }
  return out;
}

export function timelineChart(id: string, title: string, segs: readonly Segment[]): string {
  if (segs.length === 0) return empty(id, title);
  const x0 = segs[0]!.from;
  const x1 = Math.max(segs[segs.length - 1]!.to, x0 + 1);
  const px = (t: number) => PAD.left + ((t - x0) / (x1 - x0)) * (W - PAD.left - PAD.right);
  const parts: string[] = [];
  for (const s of segs) {
    const x = px(s.from);
    const w = Math.max(2, px(s.to) - x);
    parts.push(`<rect class="segment" x="${x.toFixed(1)}" y="40" width="${w.toFixed(1)}" height="60" fill="${STATE_COLORS[s.label] ?? '#6e7781'}"><title>${esc(s.label)} ${clock(s.from)}–${clock(s.to)}</title></rect>`);
  }
  for (const f of [0, 0.5, 1]) parts.push(timeLabel(px(x0 + (x1 - x0) * f), 118, x0 + (x1 - x0) * f, f));
  const seen = [...new Set(segs.map((s) => s.label))];
  seen.forEach((label, i) => {
    const x = PAD.left + (i % 4) * 220;
    const y = 140 + Math.floor(i / 4) * 20;
    parts.push(`<rect x="${x}" y="${y}" width="12" height="12" fill="${STATE_COLORS[label] ?? '#6e7781'}"/><text x="${x + 16}" y="${y + 10}" font-family="sans-serif" font-size="11" fill="#1f2328">${esc(label)}</text>`);
  });
  return frame(id, title, parts.join(''));
}
