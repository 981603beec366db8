import dagre from '@dagrejs/dagre';
import type { PlanNode } from './api';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 250;
const NODE_H = 104;

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, parent?: Element): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (parent) parent.appendChild(el);
  return el;
}

function text(parent: Element, x: number, y: number, cls: string, s: string): SVGTextElement {
  const t = svg('text', { x, y, class: cls }, parent);
  t.textContent = s;
  return t;
}

function clip(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s;
}

/** VertexLive is what the job page shows live on a vertex of the graph. */
export interface VertexLive {
  recordsIn: number;
  recordsOut: number;
  bytesIn: number;
  bytesOut: number;
  backpressure?: string; // ok, low, high
  watermark?: string;
  status?: string;
}

/**
 * drawPlan lays the plan out with dagre (left to right) and draws it as
 * SVG: a box per vertex with its name and parallelism, an edge per input
 * labelled with its partitioning (ship_strategy). It returns a function
 * that updates the live numbers without redrawing.
 */
export function drawPlan(container: HTMLElement, nodes: PlanNode[], onSelect: (id: string) => void): (live: Map<string, VertexLive>) => void {
  const g = new dagre.graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: 'LR', nodesep: 30, ranksep: 90, marginx: 12, marginy: 12 });
  g.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) g.setNode(n.id, { width: NODE_W, height: NODE_H });
  for (const n of nodes) {
    for (const inp of n.inputs || []) {
      if (ids.has(inp.id)) g.setEdge(inp.id, n.id, { width: 80, height: 18, label: inp.ship_strategy }, `${inp.id}-${n.id}-${inp.num}`);
    }
  }
  dagre.layout(g);
  const gl = g.graph();
  const root = svg('svg', { class: 'plan', width: Math.ceil(gl.width || 0), height: Math.ceil(gl.height || 0), role: 'img', 'aria-label': 'job graph' });
  const defs = svg('defs', {}, root);
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' }, defs);
  svg('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' }, marker);
  for (const e of g.edges()) {
    const ed = g.edge(e) as { points: { x: number; y: number }[]; label?: string; x?: number; y?: number };
    const d = ed.points.map((p, i) => `${i === 0 ? 'M' : 'L'} ${p.x.toFixed(1)} ${p.y.toFixed(1)}`).join(' ');
    const grp = svg('g', { class: 'edge', 'data-from': e.v, 'data-to': e.w }, root);
    svg('path', { d, 'marker-end': 'url(#arrow)' }, grp);
    if (ed.label && ed.x !== undefined && ed.y !== undefined) text(grp, ed.x, ed.y + 4, 'edge-label', ed.label);
  }
  const cells = new Map<string, { in: SVGTextElement; out: SVGTextElement; bp: SVGTextElement; box: SVGRectElement; wm: SVGTextElement }>();
  for (const n of nodes) {
    const p = g.node(n.id);
    const x = p.x - NODE_W / 2;
    const y = p.y - NODE_H / 2;
    const grp = svg('g', { class: 'vertex', 'data-vertex-id': n.id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})`, tabindex: 0, role: 'button' }, root);
    grp.addEventListener('click', () => onSelect(n.id));
    grp.addEventListener('keydown', (ev) => {
      if ((ev as KeyboardEvent).key === 'Enter') onSelect(n.id);
    });
    const box = svg('rect', { width: NODE_W, height: NODE_H, rx: 6, class: 'vertex-box' }, grp);
    const title = text(grp, 10, 18, 'vertex-name', clip(n.description || n.operator, 34));
    svg('title', {}, title).textContent = n.description;
    text(grp, NODE_W - 10, 18, 'vertex-par', `×${n.parallelism}`);
    const rin = text(grp, 10, 40, 'rec-in', 'in: –');
    const rout = text(grp, 10, 58, 'rec-out', 'out: –');
    const bp = text(grp, 10, 80, 'bp', 'back-pressure: –');
    const wm = text(grp, 10, 96, 'wm', '');
    cells.set(n.id, { in: rin, out: rout, bp, box, wm });
  }
  container.replaceChildren(root);
  return (live) => {
    for (const [id, c] of cells) {
      const v = live.get(id);
      if (!v) continue;
      c.in.textContent = `in: ${fmtCount(v.recordsIn)} rec · ${fmtBytes(v.bytesIn)}`;
      c.out.textContent = `out: ${fmtCount(v.recordsOut)} rec · ${fmtBytes(v.bytesOut)}`;
      c.in.setAttribute('data-records', String(v.recordsIn));
      c.out.setAttribute('data-records', String(v.recordsOut));
      c.bp.textContent = `back-pressure: ${v.backpressure ?? '–'}`;
      c.box.setAttribute('class', `vertex-box bp-${v.backpressure ?? 'unknown'}`);
      c.wm.textContent = v.watermark ? `wm ${v.watermark}` : '';
    }
  };
}

export function fmtCount(n: number): string {
  if (n >= 1e9) return (n / 1e9).toFixed(1) + 'G';
  if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
  if (n >= 1e4) return (n / 1e3).toFixed(1) + 'k';
  return String(n);
}

export function fmtBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}
