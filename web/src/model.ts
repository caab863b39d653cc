// Model is the application's state and every action that changes it: the
// rows and the stream that fills them, the applied query and the one being
// typed, the view and the selected entry (kept in the URL), and what the hub
// says about loss. Views read it through getters backed by signals
// (@preact/signals), so each re-renders on what it read, and change it only
// by calling its methods.
//
// The rows are the exception to one signal per value: a million of them live
// in typed arrays (rows.ts), changed in place by every stream message. One
// signal carries their version instead, set at most once per animation frame
// however many entries arrive in it, and the counts that move with the rows
// (received, lost) are read through it too.
import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import { batch, signal } from '@preact/signals';
import { api } from './api';
import { addClause, type Location, readLocation, rememberQuery, writeLocation } from './query';
import { Flag, Rows } from './rows';
import type { AgentInfo, Entry, HubStats } from './types';

/** Most rows the browser keeps; older ones are dropped from the head. */
export const MAX_ROWS = 2_000_000;
/** Entries the stream sends first (the hub allows up to 10,000). The
 * newest come last, so a longer history only delays the view; scrolling up
 * fetches the rest a page at a time. */
export const HISTORY = 1000;
/** Entries per page when loading older ones on scroll up. */
export const OLDER_PAGE = 1000;

const reconnectMin = 500;
const reconnectMax = 15_000;
const agentsPeriod = 5000;

export type StreamState = 'connecting' | 'history' | 'live' | 'reconnecting' | 'failed';

export type View = 'list' | 'map' | 'stats' | 'status';
export const VIEWS: readonly View[] = ['list', 'map', 'stats', 'status'];

function viewOf(s: string): View {
  return VIEWS.find((v) => v === s) ?? 'list';
}

/** What views may do with the rows: read them. */
export type RowsView = Readonly<Pick<Rows, 'lo' | 'hi' | 'size' | 'max' | 'trimmed' | 'bytes' | 'idAt' | 'flagsAt' | 'find' | 'get'>>;

export class Model {
  private readonly rowStore = new Rows(MAX_ROWS);
  private readonly s = {
    /** rowStore.version as of the last frame. */
    rows: signal(0),
    query: signal(''),
    draft: signal(''),
    view: signal<View>('list'),
    selected: signal(''),
    streamState: signal<StreamState>('connecting'),
    streamError: signal(''),
    hub: signal<HubStats | null>(null),
    agents: signal<AgentInfo[]>([]),
    agentsError: signal(''),
    paused: signal(false),
    pausedHi: signal(0),
    follow: signal(true),
    loadingOlder: signal(false),
    olderDone: signal(false),
    olderError: signal(''),
  };
  private lostCount = 0;
  private receivedCount = 0;

  private ws: WebSocket | null = null;
  private gen = 0;
  private retry = reconnectMin;
  private timer = 0;
  private frame = 0;

  /** start reads the URL, opens the stream and polls the agents. */
  start(): void {
    const l = readLocation();
    batch(() => {
      this.s.view.value = viewOf(l.view);
      this.s.selected.value = l.id;
      this.s.draft.value = l.q;
      this.restart(l.q);
    });
    addEventListener('popstate', () => this.restore(readLocation()));
    const poll = () => {
      api.agents().then(
        (r) => {
          batch(() => {
            this.s.agents.value = r.agents;
            this.s.agentsError.value = '';
          });
        },
        (err) => {
          this.s.agentsError.value = String(err.message ?? err);
        },
      );
    };
    poll();
    setInterval(poll, agentsPeriod);
  }

  get rows(): RowsView {
    this.s.rows.value;
    return this.rowStore;
  }
  get query(): string {
    return this.s.query.value;
  }
  /** The query in the query bar, applied or not. */
  get draft(): string {
    return this.s.draft.value;
  }
  get view(): View {
    return this.s.view.value;
  }
  /** The selected entry's ID; empty when none is. */
  get selectedId(): string {
    return this.s.selected.value;
  }
  /** The selected entry's position in the rows, or -1. */
  get selectedPos(): number {
    const id = this.selectedId;
    return id ? this.rows.find(Number(id)) : -1;
  }
  get streamState(): StreamState {
    return this.s.streamState.value;
  }
  get streamError(): string {
    return this.s.streamError.value;
  }
  /** Entries this browser was told it missed, since the page loaded. */
  get lost(): number {
    this.s.rows.value;
    return this.lostCount;
  }
  get received(): number {
    this.s.rows.value;
    return this.receivedCount;
  }
  /** The stream's last stats message. */
  get hub(): HubStats | null {
    return this.s.hub.value;
  }
  get agents(): AgentInfo[] {
    return this.s.agents.value;
  }
  get agentsError(): string {
    return this.s.agentsError.value;
  }
  get paused(): boolean {
    return this.s.paused.value;
  }
  /** The tail position the list shows while paused. */
  get pausedHi(): number {
    return this.s.pausedHi.value;
  }
  /** Whether the list keeps the newest entry in view. */
  get follow(): boolean {
    return this.s.follow.value;
  }
  get loadingOlder(): boolean {
    return this.s.loadingOlder.value;
  }
  get olderDone(): boolean {
    return this.s.olderDone.value;
  }
  get olderError(): string {
    return this.s.olderError.value;
  }

  /** The last position the list shows. */
  get shownHi(): number {
    const rows = this.rows;
    return this.paused ? Math.max(rows.lo, Math.min(this.pausedHi, rows.hi)) : rows.hi;
  }

  setDraft(q: string): void {
    this.s.draft.value = q;
  }

  /** applyQuery applies q: remembered, shown in the bar, in the URL, streamed. */
  applyQuery(q: string): void {
    rememberQuery(q);
    batch(() => {
      this.s.draft.value = q;
      this.restart(q);
    });
    this.writeLocation(true);
  }

  /** filter adds a clause (`field == value`) to the applied query and applies it. */
  filter(clause: string): void {
    this.applyQuery(addClause(this.s.query.peek(), clause));
  }

  /** select shows one entry in full ('' closes it); the URL says which. */
  select(id: string): void {
    this.s.selected.value = id;
    this.writeLocation(false);
  }

  /** move selects the next (d = 1) or previous (d = -1) entry shown. */
  move(d: number): void {
    const rows = this.rowStore;
    const hi = this.shownHi;
    const sel = this.selectedPos;
    let p = sel >= 0 ? sel + d : d > 0 ? rows.lo : hi - 1;
    while (p >= rows.lo && p < hi && rows.flagsAt(p) & Flag.Lost) p += d;
    if (p >= rows.lo && p < hi) this.select(String(rows.idAt(p)));
  }

  show(v: View): void {
    this.s.view.value = v;
    this.writeLocation(true);
  }

  setPaused(p: boolean): void {
    batch(() => {
      this.s.paused.value = p;
      this.s.pausedHi.value = this.rowStore.hi;
    });
  }

  setFollow(f: boolean): void {
    this.s.follow.value = f;
  }

  /** replaceRows empties the rows and lets fill write them directly, as
   * the stream would: for the list's benchmark, which fills more rows than
   * a hub sends in the time it measures. */
  replaceRows(fill: (rows: Rows) => void): void {
    this.rowStore.clear();
    fill(this.rowStore);
    this.rowsChanged();
  }

  /** loadOlder fetches the page before the oldest row held. */
  async loadOlder(): Promise<void> {
    // Older than what? Only once the history has arrived and set a bound.
    const rows = this.rowStore;
    const first = rows.firstID;
    if (this.s.loadingOlder.peek() || this.s.olderDone.peek() || this.s.streamState.peek() !== 'live' || Number.isNaN(first) || rows.size >= rows.max) return;
    const gen = this.gen;
    batch(() => {
      this.s.loadingOlder.value = true;
      this.s.olderError.value = '';
    });
    try {
      const page = await api.entries(this.s.query.peek(), String(first), OLDER_PAGE);
      if (gen !== this.gen) return;
      for (const e of page.entries) {
        if (!rows.unshift(e)) break;
      }
      this.rowsChanged();
      if (!page.next) this.s.olderDone.value = true;
    } catch (err: any) {
      this.s.olderError.value = err.message;
    } finally {
      if (gen === this.gen) this.s.loadingOlder.value = false;
    }
  }

  /** Loss the page must show, in sentences. */
  get losses(): string[] {
    const out: string[] = [];
    const lost = this.lost;
    if (lost > 0) {
      out.push(`This browser missed ${lost.toLocaleString('en-US')} entries: it fell behind the hub's stream (marked in the list).`);
    }
    for (const a of this.agents) {
      const lossy = Object.entries(a.counters ?? {}).filter(([k, v]) => v > 0 && isLossCounter(a, k));
      if (lossy.length) {
        out.push(
          `Agent on ${a.node || a.agent_id} (${a.source}) reports loss: ` +
            lossy.map(([k, v]) => `${k} ${v.toLocaleString('en-US')}`).join(', ') +
            '.',
        );
      }
    }
    const rows = this.rows;
    if (rows.trimmed > 0) {
      out.push(`This browser let go of the ${rows.trimmed.toLocaleString('en-US')} oldest rows to stay under ${rows.max.toLocaleString('en-US')}.`);
    }
    return out;
  }

  /** restore follows the browser's back and forward buttons. */
  private restore(l: Location): void {
    batch(() => {
      this.s.view.value = viewOf(l.view);
      this.s.selected.value = l.id;
      if (l.q !== this.s.query.peek()) {
        this.s.draft.value = l.q;
        this.restart(l.q);
      }
    });
  }

  private writeLocation(push: boolean): void {
    writeLocation({ q: this.s.query.peek(), view: this.s.view.peek(), id: this.s.selected.peek() }, push);
  }

  /** restart starts over with a new query: rows cleared, a new stream. */
  private restart(q: string): void {
    this.s.query.value = q;
    this.rowStore.clear();
    this.rowsChanged();
    this.s.olderDone.value = false;
    this.s.olderError.value = '';
    this.s.follow.value = true;
    performance.clearMarks('sonde:apply');
    performance.mark('sonde:apply');
    this.connect(HISTORY, true);
  }

  /** rowsChanged tells the rows' readers, once for this frame. */
  private rowsChanged(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.s.rows.value = this.rowStore.version;
    });
  }

  private connect(history: number, fresh: boolean): void {
    const gen = ++this.gen;
    this.ws?.close();
    clearTimeout(this.timer);
    batch(() => {
      this.s.streamState.value = fresh ? 'connecting' : 'reconnecting';
      this.s.streamError.value = '';
    });
    const ws = new WebSocket(api.streamURL(this.s.query.peek(), history));
    this.ws = ws;
    let firstLive = true;
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      const m = JSON.parse(ev.data);
      switch (m.type) {
        case 'entry':
          this.add(m.entry as Entry);
          if (this.s.streamState.peek() === 'live' && firstLive) {
            firstLive = false;
            performance.mark('sonde:first-live');
          }
          break;
        case 'history_end':
          batch(() => {
            this.s.streamState.value = 'live';
            if (fresh && m.count < history) this.s.olderDone.value = true;
          });
          this.retry = reconnectMin;
          if (fresh) {
            // The query's result is on screen once this frame renders.
            requestAnimationFrame(() => performance.measure('sonde:query', 'sonde:apply'));
          }
          break;
        case 'lost':
          this.lostCount += m.count;
          this.rowStore.pushLost(m.count);
          this.rowsChanged();
          break;
        case 'stats':
          this.s.hub.value = m.stats as HubStats;
          break;
        case 'error':
          this.s.streamError.value = m.error;
          break;
      }
    };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.ws = null;
      if (ev.code === 1006 && this.s.streamState.peek() === 'connecting') {
        // The upgrade was refused: ask the REST API why (a bad query says so).
        api.entries(this.s.query.peek(), undefined, 1).then(
          () => this.reconnect(),
          (err) => {
            batch(() => {
              this.s.streamState.value = 'failed';
              this.s.streamError.value = err.message;
            });
          },
        );
        return;
      }
      this.reconnect();
    };
  }

  /** reconnect after a dropped stream; history again, minus what is held. */
  private reconnect(): void {
    this.s.streamState.value = 'reconnecting';
    const gen = this.gen;
    this.timer = window.setTimeout(() => {
      if (gen === this.gen) this.connect(10_000, false);
    }, this.retry);
    this.retry = Math.min(this.retry * 2, reconnectMax);
  }

  private add(e: Entry): void {
    // After a reconnect the history repeats what is already held.
    const last = this.rowStore.lastID;
    if (Number(e.id) <= last) return;
    this.receivedCount++;
    this.rowStore.push(e);
    this.rowsChanged();
  }
}

/** Counters whose growth means data was lost somewhere (kernel ring buffer,
 * capture socket, assembly, the agent's buffer). */
export function isLossCounter(a: AgentInfo, name: string): boolean {
  return a.loss?.includes(name) ?? false;
}

/** The model the views read, handed down by main.tsx. */
export const ModelContext = createContext<Model | null>(null);

export function useModel(): Model {
  const m = useContext(ModelContext);
  if (!m) throw new Error('no Model: render the app inside a ModelContext provider');
  return m;
}
