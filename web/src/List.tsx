// The traffic list: virtualised, so that only the rows in view exist in the
// DOM. Past MAX_SCROLL pixels the scrollbar is scaled (a browser caps an
// element's height near 16-33 million pixels), and rows are positioned from
// the scaled offset, so a million rows scroll like a thousand.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import { clock, latency, size } from './format';
import { useModel } from './model';
import { endpointClause } from './query';
import { EpKind, Flag, type Row, statusClass } from './rows';
import { ProtocolBadge, V } from './ui';

const ROW_H = 24;
const MAX_SCROLL = 8_000_000;
/** Rows from the top at which older ones are fetched. */
const OLDER_AT = 40;

const kindName = ['address', 'pod', 'service', 'workload'];

function Endpoint({ side, label, kind }: { side: 'src' | 'dst'; label: string; kind: EpKind }) {
  return (
    <V c={endpointClause(side, kind, label)} class={`ep ep-${kindName[kind]}`}>
      {label}
    </V>
  );
}

function Markers({ r }: { r: Row }) {
  return (
    <>
      {r.flags & Flag.Gap ? <V f="gap" v={true} class="mk mk-gap">gap</V> : null}
      {r.flags & Flag.NoResponse ? <V f="unmatched" v="response" class="mk mk-half">no resp</V> : null}
      {r.flags & Flag.NoRequest ? <V f="unmatched" v="request" class="mk mk-half">no req</V> : null}
      {r.flags & Flag.Redacted ? <V f="redacted" v={true} class="mk mk-red">redacted</V> : null}
      {r.flags & Flag.Warnings ? <V c="size(warnings) > 0" class="mk mk-warn">!</V> : null}
    </>
  );
}

function RowView({ r, selected }: { r: Row; selected: boolean }) {
  const model = useModel();
  if (r.flags & Flag.Lost) {
    return (
      <div class="row row-lost" role="row">
        ⚠ {r.reqSize.toLocaleString('en-US')} entries lost here: this browser fell behind the hub's stream
      </div>
    );
  }
  const cls = statusClass(r.protocol, r.status, r.flags);
  return (
    <div
      class={'row' + (selected ? ' sel' : '')}
      role="row"
      aria-selected={selected}
      data-id={r.id}
      onClick={() => model.select(String(r.id))}
    >
      <span class="c-time">{clock(r.startMs)}</span>
      <span class="c-proto">
        <ProtocolBadge p={r.protocol} />
      </span>
      <span class="c-method">
        <V f="method" v={r.method} />
      </span>
      <span class="c-target" title={r.target}>
        <V f="target" v={r.target} />
      </span>
      <span class="c-status">
        {r.flags & Flag.NoResponse ? (
          <V f="unmatched" v="response" class="st st-unmatched">—</V>
        ) : (
          <V f="status" v={r.status} class={`st st-${cls}`} />
        )}
      </span>
      <span class="c-peers">
        <Endpoint side="src" label={r.src} kind={r.srcKind} />
        <span class="arrow">→</span>
        <Endpoint side="dst" label={r.dst} kind={r.dstKind} />
      </span>
      <span class="c-lat">{latency(r.durationNs)}</span>
      <span class="c-size">
        {size(r.reqSize)} / {size(r.respSize)}
      </span>
      <span class="c-flags">
        <Markers r={r} />
      </span>
    </div>
  );
}

export function List({ selected }: { selected: number }) {
  const model = useModel();
  const ref = useRef<HTMLDivElement>(null);
  const [vh, setVh] = useState(600);
  const [scrollTop, setScrollTop] = useState(0);
  const programmatic = useRef(false);
  const anchor = useRef({ lo: 0, pos: 0, shift: 0 });

  const rows = model.rows;
  const lo = rows.lo;
  const n = model.shownHi - lo;
  // Read here, not in the layout effect, so that a change of either renders.
  const stick = model.follow && !model.paused;
  const real = n * ROW_H;
  const virt = Math.min(real, MAX_SCROLL);
  const realMax = Math.max(0, real - vh);
  const virtMax = Math.max(0, virt - vh);
  const toReal = (top: number) => (virtMax > 0 ? (top * realMax) / virtMax : 0);
  const toVirt = (r: number) => (realMax > 0 ? (r * virtMax) / realMax : 0);
  const realTop = Math.min(toReal(scrollTop), realMax);
  const first = Math.floor(realTop / ROW_H);
  const shift = realTop - first * ROW_H;
  const count = Math.min(n - first, Math.ceil(vh / ROW_H) + 1);

  useEffect(() => {
    const el = ref.current!;
    const ro = new ResizeObserver(() => setVh(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Keep the view where it was when rows come or go at the head, or stick
  // to the tail when following.
  useLayoutEffect(() => {
    const el = ref.current!;
    const want = stick ? virtMax : anchor.current.lo !== lo ? toVirt((anchor.current.pos - lo) * ROW_H + anchor.current.shift) : -1;
    if (want >= 0 && Math.abs(el.scrollTop - want) >= 1) {
      programmatic.current = true;
      el.scrollTop = want;
      setScrollTop(el.scrollTop);
    }
    anchor.current = { lo, pos: lo + first, shift };
  });

  // Bring the selected row into view (j/k, or a selection from the URL).
  useEffect(() => {
    if (selected < lo || selected >= lo + n) return;
    const top = (selected - lo) * ROW_H;
    if (top >= realTop && top + ROW_H <= realTop + vh) return;
    const el = ref.current!;
    model.setFollow(false);
    const target = top < realTop ? top : top + ROW_H - vh;
    el.scrollTop = toVirt(Math.max(0, target));
  }, [selected]);

  const onScroll = () => {
    const el = ref.current!;
    setScrollTop(el.scrollTop);
    if (programmatic.current) {
      programmatic.current = false;
      return;
    }
    const atBottom = el.scrollTop >= virtMax - 2;
    model.setFollow(atBottom);
    if (toReal(el.scrollTop) / ROW_H < OLDER_AT) model.loadOlder();
  };

  const slots = [];
  for (let i = 0; i < count; i++) {
    const p = lo + first + i;
    // Keyed by position: rows still in view keep their DOM nodes as it scrolls.
    slots.push(<RowView key={p} r={rows.get(p)} selected={p === selected} />);
  }
  return (
    <div class="list" role="grid" aria-rowcount={n}>
      <div class="row head" role="row">
        <span class="c-time">time</span>
        <span class="c-proto">protocol</span>
        <span class="c-method">method</span>
        <span class="c-target">target</span>
        <span class="c-status">status</span>
        <span class="c-peers">source → destination</span>
        <span class="c-lat">latency</span>
        <span class="c-size">req / resp</span>
        <span class="c-flags" />
      </div>
      <div class="list-scroll" ref={ref} onScroll={onScroll} tabIndex={0}>
        <div class="list-window" style={{ height: `${vh}px` }}>
          {first < OLDER_AT && (model.loadingOlder || model.olderError) && (
            <div class="older-note">{model.olderError ? `older entries: ${model.olderError}` : 'loading older entries…'}</div>
          )}
          <div style={{ transform: `translateY(${-shift}px)` }}>{slots}</div>
          {n === 0 && <Empty />}
        </div>
        <div style={{ height: `${Math.max(0, virt - vh)}px` }} />
      </div>
    </div>
  );
}

function Empty() {
  const model = useModel();
  const s = model.streamState;
  return (
    <div class="empty">
      {s === 'failed'
        ? model.streamError
        : s === 'connecting'
          ? 'Connecting to the hub…'
          : s === 'reconnecting'
            ? 'The hub went away; reconnecting…'
            : model.query
              ? 'Nothing matches this query yet. New entries will appear as they arrive.'
              : 'No traffic yet. Entries will appear as they arrive.'}
    </div>
  );
}
