// Stats: requests per second over time by protocol, status classes and
// latency percentiles, as small SVG charts.
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { count, ms } from './format';
import { useModel } from './model';
import { addClause, clause } from './query';
import type { Stats } from './types';
import { ProtocolValues } from './types';
import { protocolNames } from './ui';

interface Data {
  all: Stats;
  /** Each protocol's own stats, for its rate line. */
  by: [string, Stats][];
}

/** seconds reads a Go duration such as "15m" or "1h". */
function seconds(window: string): number {
  const m = /^(\d+)(s|m|h)$/.exec(window);
  if (!m) return 900;
  return Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'];
}

export function StatsView({ query, window }: { query: string; window: string }) {
  const [data, setData] = useState<Data | null>(null);
  const [error, setError] = useState('');
  useEffect(() => {
    const ac = new AbortController();
    const load = async () => {
      try {
        const all = await api.stats(query, window, ac.signal);
        const protos = ProtocolValues.filter((p) => all.by_protocol?.[p]);
        const by = await Promise.all(
          protos.map(async (p) => [p, await api.stats(addClause(query, clause('protocol', p)), window, ac.signal)] as [string, Stats]),
        );
        setData({ all, by });
        setError('');
      } catch (err: any) {
        if (err.name !== 'AbortError') setError(err.message);
      }
    };
    load();
    const t = setInterval(load, 10_000);
    return () => {
      clearInterval(t);
      ac.abort();
    };
  }, [query, window]);

  if (error) return <div class="empty err-text">{error}</div>;
  if (!data) return <div class="empty">Loading stats…</div>;
  const s = data.all;
  const step = seconds(window) / Math.max(1, s.timeline?.length ?? 0);
  return (
    <div class="stats">
      <div class="cards">
        <Card label="requests" value={count(s.total)} />
        <Card label="per second" value={(s.total / seconds(window)).toFixed(2)} />
        <Card label="errors" value={`${count(s.errors)} (${s.total ? ((100 * s.errors) / s.total).toFixed(1) : '0'}%)`} bad={s.errors > 0} />
        <Card label="p50" value={ms(s.latency.p50_ms)} />
        <Card label="p90" value={ms(s.latency.p90_ms)} />
        <Card label="p99" value={ms(s.latency.p99_ms)} />
        <Card label="max" value={ms(s.latency.max_ms)} />
      </div>
      <div class="chart-box">
        <h3>Requests per second by protocol</h3>
        <RateChart data={data} step={step} />
      </div>
      <div class="chart-row">
        <div class="chart-box">
          <h3>Status classes</h3>
          <ClassBars s={s} />
        </div>
        <div class="chart-box">
          <h3>Latency percentiles</h3>
          <LatencyBars s={s} />
        </div>
      </div>
      <p class="muted">
        {new Date(s.from).toLocaleString()} – {new Date(s.to).toLocaleString()} (the window ends at the newest stored entry)
      </p>
    </div>
  );
}

function Card({ label, value, bad }: { label: string; value: string; bad?: boolean }) {
  return (
    <div class={'card' + (bad ? ' bad' : '')}>
      <div class="card-value">{value}</div>
      <div class="card-label">{label}</div>
    </div>
  );
}

const W = 760;
const H = 200;
const M = { l: 44, r: 12, t: 10, b: 24 };

function RateChart({ data, step }: { data: Data; step: number }) {
  const tl = data.all.timeline ?? [];
  if (!tl.length) return <p class="muted">no data</p>;
  const n = tl.length;
  const rate = (c: number) => c / step;
  const max = Math.max(1e-9, ...tl.map((b) => rate(b.count)));
  const x = (i: number) => M.l + (i / Math.max(1, n - 1)) * (W - M.l - M.r);
  const y = (v: number) => H - M.b - (v / max) * (H - M.t - M.b);
  const line = (vals: number[]) => vals.map((v, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  const t0 = new Date(tl[0].start);
  const t1 = new Date(tl[n - 1].start);
  const fmt = (d: Date) => d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  return (
    <>
      <svg viewBox={`0 0 ${W} ${H}`} class="chart" role="img" aria-label="requests per second">
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line x1={M.l} x2={W - M.r} y1={y(max * f)} y2={y(max * f)} class="grid-line" />
            <text x={M.l - 6} y={y(max * f) + 4} text-anchor="end" class="axis">
              {(max * f).toFixed(max < 10 ? 1 : 0)}
            </text>
          </g>
        ))}
        <path d={line(tl.map((b) => rate(b.count)))} class="rate-total" />
        <path d={line(tl.map((b) => rate(b.errors)))} class="rate-errors" />
        {data.by.map(([p, st]) => (
          <path key={p} d={line((st.timeline ?? []).map((b) => rate(b.count)))} class="rate-proto" style={{ stroke: `var(--p-${p})` }} />
        ))}
        <text x={M.l} y={H - 6} class="axis">
          {fmt(t0)}
        </text>
        <text x={W - M.r} y={H - 6} class="axis" text-anchor="end">
          {fmt(t1)}
        </text>
      </svg>
      <div class="legend">
        <span class="lg lg-total">all</span>
        <span class="lg lg-errors">errors</span>
        {data.by.map(([p]) => (
          <span key={p} class={`badge p-${p}`}>
            {protocolNames[p] ?? p}
          </span>
        ))}
      </div>
    </>
  );
}

const classOrder = ['2xx', 'ok', '1xx', '3xx', '4xx', '5xx', 'error', 'unmatched', 'other'];

function ClassBars({ s }: { s: Stats }) {
  const model = useModel();
  const byClass = s.by_status_class ?? {};
  const protos = Object.keys(byClass).sort();
  if (!protos.length) return <p class="muted">no data</p>;
  const bw = 360;
  return (
    <svg viewBox={`0 0 ${bw + 150} ${protos.length * 28 + 8}`} class="chart" role="img" aria-label="status classes">
      {protos.map((p, row) => {
        const cls = byClass[p];
        const total = Object.values(cls).reduce((a, b) => a + b, 0);
        let x = 70;
        return (
          <g key={p} transform={`translate(0,${row * 28 + 4})`}>
            <text x="0" y="15" class="axis">
              {protocolNames[p] ?? p}
            </text>
            {classOrder
              .filter((c) => cls[c])
              .map((c) => {
                const w = (cls[c] / total) * bw;
                const el = (
                  <rect
                    key={c}
                    x={x}
                    y="2"
                    width={Math.max(w, 1)}
                    height="18"
                    class={`bar st-${c}`}
                    onClick={() => model.filter(`protocol == "${p}" && status_class == "${c}"`)}
                  >
                    <title>{`${protocolNames[p] ?? p} ${c}: ${count(cls[c])} (${((100 * cls[c]) / total).toFixed(1)}%) — click to filter`}</title>
                  </rect>
                );
                x += w;
                return el;
              })}
            <text x={bw + 76} y="15" class="axis">
              {count(total)}
            </text>
          </g>
        );
      })}
    </svg>
  );
}

function LatencyBars({ s }: { s: Stats }) {
  const vals: [string, number][] = [
    ['p50', s.latency.p50_ms],
    ['p90', s.latency.p90_ms],
    ['p99', s.latency.p99_ms],
    ['max', s.latency.max_ms],
  ];
  // Square-root scale: a max far out must not flatten the median.
  const top = Math.sqrt(Math.max(1e-9, ...vals.map(([, v]) => v)));
  return (
    <svg viewBox="0 0 420 120" class="chart" role="img" aria-label="latency percentiles">
      {vals.map(([k, v], i) => (
        <g key={k} transform={`translate(0,${i * 28 + 4})`}>
          <text x="0" y="15" class="axis">
            {k}
          </text>
          <rect x="40" y="2" width={Math.max(1, (Math.sqrt(v) / top) * 280)} height="18" class="bar lat" />
          <text x={46 + (Math.sqrt(v) / top) * 280} y="15" class="axis">
            {ms(v)}
          </text>
        </g>
      ))}
    </svg>
  );
}
