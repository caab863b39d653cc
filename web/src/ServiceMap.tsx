// The service map: who talks to whom, drawn in layers from clients on the
// left to servers on the right. Layout: ranks by longest path over the graph
// without its back edges (found by depth-first search), then a few sweeps
// ordering each layer by the mean position of its neighbours.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { count, ms } from './format';
import { useModel } from './model';
import { literal } from './query';
import type { MapEdge, MapNode, ServiceMap as Map_ } from './types';
import { protocolNames } from './ui';

const nodeW = 190;
const nodeH = 44;
const colGap = 150;
const rowGap = 34;
const pad = 24;
/** Room above the layers for edges that skip one (they pass over it). */
const lanePad = 64;

interface Placed extends MapNode {
  x: number;
  y: number;
}

function layout(nodes: MapNode[], edges: MapEdge[]): { placed: Map<string, Placed>; width: number; height: number; top: (from: number, to: number) => number } {
  const out = new Map<string, string[]>();
  const inc = new Map<string, string[]>();
  for (const n of nodes) {
    out.set(n.id, []);
    inc.set(n.id, []);
  }
  for (const e of edges) {
    if (e.source === e.target || !out.has(e.source) || !out.has(e.target)) continue;
    out.get(e.source)!.push(e.target);
    inc.get(e.target)!.push(e.source);
  }
  // Back edges by iterative DFS, roots first.
  const state = new Map<string, number>(); // 1 on stack, 2 done
  const back = new Set<string>();
  const roots = [...nodes].sort((a, b) => inc.get(a.id)!.length - inc.get(b.id)!.length || a.id.localeCompare(b.id));
  for (const r of roots) {
    if (state.has(r.id)) continue;
    const stack: [string, number][] = [[r.id, 0]];
    state.set(r.id, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const next = out.get(top[0])!;
      if (top[1] < next.length) {
        const t = next[top[1]++];
        const s = state.get(t);
        if (s === 1) back.add(top[0] + '\n' + t);
        else if (!s) {
          state.set(t, 1);
          stack.push([t, 0]);
        }
      } else {
        state.set(top[0], 2);
        stack.pop();
      }
    }
  }
  // Longest path ranks over the remaining DAG (Kahn's order).
  const rank = new Map<string, number>();
  const indeg = new Map<string, number>();
  for (const n of nodes) indeg.set(n.id, 0);
  for (const [s, ts] of out) for (const t of ts) if (!back.has(s + '\n' + t)) indeg.set(t, indeg.get(t)! + 1);
  const queue = nodes.filter((n) => indeg.get(n.id) === 0).map((n) => n.id);
  for (const id of queue) rank.set(id, 0);
  while (queue.length) {
    const s = queue.shift()!;
    for (const t of out.get(s)!) {
      if (back.has(s + '\n' + t)) continue;
      rank.set(t, Math.max(rank.get(t) ?? 0, rank.get(s)! + 1));
      indeg.set(t, indeg.get(t)! - 1);
      if (indeg.get(t) === 0) queue.push(t);
    }
  }
  const layers: string[][] = [];
  for (const n of nodes) {
    const r = rank.get(n.id) ?? 0;
    (layers[r] ??= []).push(n.id);
  }
  for (const l of layers) l?.sort();
  // Barycentre sweeps, left to right then right to left.
  const order = new Map<string, number>();
  const setOrder = () => layers.forEach((l) => l?.forEach((id, i) => order.set(id, i)));
  setOrder();
  const mean = (ids: string[]) => (ids.length ? ids.reduce((a, id) => a + (order.get(id) ?? 0), 0) / ids.length : -1);
  for (let sweep = 0; sweep < 4; sweep++) {
    const fwd = sweep % 2 === 0;
    for (let i = fwd ? 1 : layers.length - 2; fwd ? i < layers.length : i >= 0; i += fwd ? 1 : -1) {
      const l = layers[i];
      if (!l) continue;
      const key = new Map(l.map((id) => [id, mean((fwd ? inc : out).get(id)!)]));
      l.sort((a, b) => (key.get(a)! < 0 || key.get(b)! < 0 ? 0 : key.get(a)! - key.get(b)!) || a.localeCompare(b));
      setOrder();
    }
  }
  const tallest = Math.max(1, ...layers.map((l) => l?.length ?? 0));
  const height = lanePad + pad * 2 + tallest * nodeH + (tallest - 1) * rowGap;
  const placed = new Map<string, Placed>();
  const byID = new Map(nodes.map((n) => [n.id, n]));
  layers.forEach((l, r) => {
    if (!l) return;
    const h = l.length * nodeH + (l.length - 1) * rowGap;
    l.forEach((id, i) => {
      placed.set(id, { ...byID.get(id)!, x: pad + r * (nodeW + colGap), y: lanePad + (height - lanePad - h) / 2 + i * (nodeH + rowGap) });
    });
  });
  // The y above every node of the layers strictly between two x positions.
  const top = (from: number, to: number) => {
    let y = Infinity;
    for (const n of placed.values()) if (n.x > from && n.x < to) y = Math.min(y, n.y);
    return y;
  };
  return { placed, width: pad * 2 + layers.length * nodeW + Math.max(0, layers.length - 1) * colGap, height, top };
}

/** nodeClause selects a map node's traffic on one side or (side absent) either. */
function nodeClause(n: MapNode, side?: 'src' | 'dst'): string {
  const one = (s: 'src' | 'dst') => {
    if (n.kind === 'address') {
      const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(n.name);
      if (m) return `${s}.ip == ${literal(m[1])} && ${s}.port == ${m[2]}`;
      return `${s}.ip == ${literal(n.name)}`;
    }
    const name = `${s}.${n.kind} == ${literal(n.name)}`;
    return n.namespace ? `${s}.namespace == ${literal(n.namespace)} && ${name}` : name;
  };
  if (side) return one(side);
  if (n.kind === 'address' && /:\d+$/.test(n.name)) return one('dst');
  return `(${one('src')}) || (${one('dst')})`;
}

export function ServiceMap({ query, window }: { query: string; window: string }) {
  const model = useModel();
  const [data, setData] = useState<Map_ | null>(null);
  const [error, setError] = useState('');
  const [hover, setHover] = useState('');
  useEffect(() => {
    const ac = new AbortController();
    const load = () =>
      api.serviceMap(query, window, ac.signal).then(
        (m) => {
          setData(m);
          setError('');
        },
        (err) => err.name !== 'AbortError' && setError(err.message),
      );
    load();
    const t = setInterval(load, 10_000);
    return () => {
      clearInterval(t);
      ac.abort();
    };
  }, [query, window]);

  if (error) return <div class="empty err-text">{error}</div>;
  if (!data) return <div class="empty">Loading the service map…</div>;
  if (!data.nodes.length) return <div class="empty">No traffic in this window{query ? ' matches the query' : ''}.</div>;

  const { placed, width, height, top } = layout(data.nodes, data.edges);
  const maxCount = Math.max(...data.edges.map((e) => e.count));
  // Edges between the same pair fan out by protocol.
  const pairIndex = new Map<string, number>();
  let skips = 0;
  const filterEdge = (e: MapEdge) => {
    const s = placed.get(e.source)!;
    const t = placed.get(e.target)!;
    model.filter(`(${nodeClause(s, 'src')}) && (${nodeClause(t, 'dst')}) && protocol == ${literal(e.protocol)}`);
    model.show('list');
  };
  return (
    <div class="map">
      <div class="legend">
        {[...new Set(data.edges.map((e) => e.protocol))].sort().map((p) => (
          <span key={p} class={`badge p-${p}`}>
            {protocolNames[p] ?? p}
          </span>
        ))}
        <span class="muted">
          {data.nodes.length} nodes, {data.edges.length} edges · edge labels: requests · errors · p99 latency · click a node or an edge to filter
        </span>
      </div>
      <div class="map-scroll">
        <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label="service map">
          <defs>
            <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">
              <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
            </marker>
          </defs>
          {data.edges.map((e) => {
            const s = placed.get(e.source);
            const t = placed.get(e.target);
            if (!s || !t) return null;
            const key = e.source + '\n' + e.target;
            const k = pairIndex.get(key) ?? 0;
            pairIndex.set(key, k + 1);
            const off = k * 10;
            const id = `${key}\n${e.protocol}`;
            let d: string;
            let lx: number;
            let ly: number;
            if (s === t) {
              const x = s.x + nodeW - 30;
              const y = s.y;
              d = `M${x},${y} c 20,-40 60,-20 30,${nodeH / 2}`;
              lx = x + 40;
              ly = y - 22 - off;
            } else if (t.x > s.x && top(s.x, t.x) < Infinity) {
              // A layer or more in between: pass over it.
              const x1 = s.x + nodeW;
              const y1 = s.y + nodeH / 2 + off - 4;
              const x2 = t.x;
              const y2 = t.y + nodeH / 2 + off - 4;
              // Each skipping edge gets its own lane, stacked upwards.
              const lane = top(s.x, t.x) - 14 - off - 16 * skips++;
              d = `M${x1},${y1} C${x1 + 60},${y1} ${x1 + 60},${lane} ${x1 + 120},${lane} L${x2 - 120},${lane} C${x2 - 60},${lane} ${x2 - 60},${y2} ${x2},${y2}`;
              lx = (x1 + x2) / 2;
              ly = lane - 5;
            } else if (t.x > s.x) {
              const x1 = s.x + nodeW;
              const y1 = s.y + nodeH / 2 + off - 4;
              const x2 = t.x;
              const y2 = t.y + nodeH / 2 + off - 4;
              const mx = (x1 + x2) / 2;
              d = `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`;
              lx = mx;
              ly = (y1 + y2) / 2 - 6;
            } else {
              // A back edge or one within a layer: arc below.
              const x1 = s.x + nodeW / 2 + off;
              const y1 = s.y + nodeH;
              const x2 = t.x + nodeW / 2 + off;
              const y2 = t.y + nodeH;
              const dip = Math.max(y1, y2) + 40 + off;
              d = `M${x1},${y1} C${x1},${dip} ${x2},${dip} ${x2},${y2}`;
              lx = (x1 + x2) / 2;
              ly = dip - 8;
            }
            const errRate = e.count ? e.errors / e.count : 0;
            const w = 1.5 + 3.5 * Math.sqrt(e.count / maxCount);
            return (
              <g
                key={id}
                class={'edge' + (hover === id ? ' hover' : '') + (errRate > 0 ? ' has-errors' : '')}
                onMouseEnter={() => setHover(id)}
                onMouseLeave={() => setHover('')}
                onClick={() => filterEdge(e)}
                data-protocol={e.protocol}
              >
                <title>
                  {`${e.source} → ${e.target} (${protocolNames[e.protocol] ?? e.protocol})\n${count(e.count)} requests, ${count(e.errors)} errors\nlatency p50 ${ms(e.latency.p50_ms)}, p90 ${ms(e.latency.p90_ms)}, p99 ${ms(e.latency.p99_ms)}, max ${ms(e.latency.max_ms)}`}
                </title>
                <path d={d} class="edge-hit" />
                <path d={d} class="edge-line" style={{ stroke: `var(--p-${e.protocol})`, strokeWidth: w }} marker-end="url(#arrow)" />
                <text x={lx} y={ly} class="edge-label" text-anchor="middle">
                  {count(e.count)} · {errRate > 0 ? `${(errRate * 100).toFixed(errRate < 0.1 ? 1 : 0)}% err` : '0 err'} · {ms(e.latency.p99_ms)}
                </text>
              </g>
            );
          })}
          {[...placed.values()].map((n) => (
            <g
              key={n.id}
              class={'node node-' + n.kind}
              transform={`translate(${n.x},${n.y})`}
              onClick={() => {
                model.filter(nodeClause(n));
                model.show('list');
              }}
              data-node={n.id}
            >
              <title>{`${n.kind} ${n.id}\nclick to filter by it`}</title>
              <rect width={nodeW} height={nodeH} rx="6" />
              <text x="10" y="18" class="node-name">
                {n.name.length > 24 ? n.name.slice(0, 23) + '…' : n.name}
              </text>
              <text x="10" y="34" class="node-kind">
                {n.kind}
                {n.namespace ? ` · ${n.namespace}` : ''}
              </text>
            </g>
          ))}
        </svg>
      </div>
    </div>
  );
}
