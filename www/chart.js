// Who served each read and write: requests per second over the last 60 s, one stacked bar per second, colored
// by the node that answered (inline SVG, no library). Failed attempts (no answer, 5xx, 421) stack on top in red.

const SECONDS = 60;
const W = 600;
const H = 110;
const SVG = 'http://www.w3.org/2000/svg';

export class TrafficChart {
  /** `svgs`: {read, write} SVG elements; `colorOf(nodeId)` gives a node's color. */
  constructor(svgs, nodeIds, colorOf) {
    this.svgs = svgs;
    this.nodeIds = nodeIds;
    this.colorOf = colorOf;
    this.buckets = new Map(); // second -> { read: {node: n}, write: {node: n} }
  }

  /** One answered (or failed, node null) request. */
  record(kind, node, ok, at = Date.now()) {
    const second = Math.floor(at / 1000);
    let b = this.buckets.get(second);
    if (!b) this.buckets.set(second, (b = { read: {}, write: {} }));
    const key = ok && node ? node : 'failed';
    b[kind][key] = (b[kind][key] ?? 0) + 1;
  }

  draw(now = Date.now()) {
    const last = Math.floor(now / 1000);
    for (const s of this.buckets.keys()) if (s <= last - SECONDS) this.buckets.delete(s);
    for (const kind of ['read', 'write']) this.drawOne(kind, last);
  }

  drawOne(kind, last) {
    const keys = [...this.nodeIds, 'failed'];
    let max = 4;
    for (const b of this.buckets.values()) max = Math.max(max, keys.reduce((n, k) => n + (b[kind][k] ?? 0), 0));
    const parts = [];
    for (const y of [0.25, 0.5, 0.75]) parts.push(`<line class="grid-line" x1="0" x2="${W}" y1="${H * y}" y2="${H * y}"/>`);
    const slot = W / SECONDS;
    for (let i = 0; i < SECONDS; i++) {
      const b = this.buckets.get(last - SECONDS + 1 + i);
      if (!b) continue;
      let y = H;
      for (const k of keys) {
        const n = b[kind][k] ?? 0;
        if (!n) continue;
        const h = (n / max) * (H - 6);
        y -= h;
        const color = k === 'failed' ? 'var(--fail)' : this.colorOf(k);
        parts.push(`<rect x="${(i * slot + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(slot - 2).toFixed(1)}" height="${h.toFixed(1)}" fill="${color}" rx="1.5"><title>${escapeXml(k)}: ${n}</title></rect>`);
      }
    }
    this.svgs[kind].innerHTML = parts.join('');
    this.svgs[kind].setAttribute('xmlns', SVG);
  }
}

/** `text` safe inside SVG markup: node ids come from the servers and must show as text. */
const escapeXml = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** A small line of the last samples (null samples are gaps), scaled to its own max. */
export function sparkline(svg, samples) {
  const values = samples.filter((v) => v != null);
  if (!values.length) return void (svg.innerHTML = '');
  const max = Math.max(5, ...values);
  const step = 100 / Math.max(1, samples.length - 1);
  const lines = [];
  let points = [];
  samples.forEach((v, i) => {
    if (v == null) {
      if (points.length) lines.push(points);
      points = [];
    } else points.push(`${(i * step).toFixed(1)},${(22 - (v / max) * 20 - 1).toFixed(1)}`);
  });
  if (points.length) lines.push(points);
  svg.innerHTML = lines.map((p) => `<polyline points="${p.join(' ')}"/>`).join('');
}
