// Model is the application's state outside the component tree: the rows,
// the stream that fills them, the applied query, and what the hub says about
// loss. Components subscribe and re-render at most once per animation frame,
// however many entries arrive in it.
import { api } from './api';
import { Rows } from './rows';
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

export class Model {
  readonly rows = new Rows(MAX_ROWS);
  query = '';
  streamState: StreamState = 'connecting';
  streamError = '';
  /** Entries this browser was told it missed, since the page loaded. */
  lost = 0;
  received = 0;
  hub: HubStats | null = null;
  agents: AgentInfo[] = [];
  agentsError = '';
  paused = false;
  /** The tail position the list shows while paused. */
  pausedHi = 0;
  follow = true;
  loadingOlder = false;
  olderDone = false;
  olderError = '';

  private ws: WebSocket | null = null;
  private gen = 0;
  private retry = reconnectMin;
  private timer = 0;
  private frame = 0;
  private listeners = new Set<() => void>();

  constructor() {
    const poll = () => {
      api.agents().then(
        (r) => {
          this.agents = r.agents;
          this.agentsError = '';
          this.changed();
        },
        (err) => {
          this.agentsError = String(err.message ?? err);
          this.changed();
        },
      );
    };
    poll();
    setInterval(poll, agentsPeriod);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** changed schedules one notification for this frame. */
  changed(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const fn of this.listeners) fn();
    });
  }

  /** The last position the list shows. */
  get shownHi(): number {
    return this.paused ? Math.max(this.rows.lo, Math.min(this.pausedHi, this.rows.hi)) : this.rows.hi;
  }

  /** apply starts over with a new query: rows cleared, a new stream. */
  apply(q: string): void {
    this.query = q;
    this.rows.clear();
    this.olderDone = false;
    this.olderError = '';
    this.follow = true;
    performance.clearMarks('sonde:apply');
    performance.mark('sonde:apply');
    this.connect(HISTORY, true);
  }

  setPaused(p: boolean): void {
    this.paused = p;
    this.pausedHi = this.rows.hi;
    this.changed();
  }

  private connect(history: number, fresh: boolean): void {
    const gen = ++this.gen;
    this.ws?.close();
    clearTimeout(this.timer);
    this.streamState = fresh ? 'connecting' : 'reconnecting';
    this.streamError = '';
    this.changed();
    const ws = new WebSocket(api.streamURL(this.query, history));
    this.ws = ws;
    let firstLive = true;
    ws.onmessage = (ev) => {
      if (gen !== this.gen) return;
      const m = JSON.parse(ev.data);
      switch (m.type) {
        case 'entry':
          this.add(m.entry as Entry);
          if (this.streamState === 'live' && firstLive) {
            firstLive = false;
            performance.mark('sonde:first-live');
          }
          break;
        case 'history_end':
          this.streamState = 'live';
          this.retry = reconnectMin;
          if (fresh) {
            // The query's result is on screen once this frame renders.
            requestAnimationFrame(() => performance.measure('sonde:query', 'sonde:apply'));
          }
          if (fresh && m.count < history) this.olderDone = true;
          break;
        case 'lost':
          this.lost += m.count;
          this.rows.pushLost(m.count);
          break;
        case 'stats':
          this.hub = m.stats as HubStats;
          break;
        case 'error':
          this.streamError = m.error;
          break;
      }
      this.changed();
    };
    ws.onclose = (ev) => {
      if (gen !== this.gen) return;
      this.ws = null;
      if (ev.code === 1006 && this.streamState === 'connecting') {
        // The upgrade was refused: ask the REST API why (a bad query says so).
        api.entries(this.query, undefined, 1).then(
          () => this.reconnect(),
          (err) => {
            this.streamState = 'failed';
            this.streamError = err.message;
            this.changed();
          },
        );
        return;
      }
      this.reconnect();
    };
  }

  /** reconnect after a dropped stream; history again, minus what is held. */
  private reconnect(): void {
    this.streamState = 'reconnecting';
    this.changed();
    const gen = this.gen;
    this.timer = window.setTimeout(() => {
      if (gen === this.gen) this.connect(10_000, false);
    }, this.retry);
    this.retry = Math.min(this.retry * 2, reconnectMax);
  }

  private add(e: Entry): void {
    // After a reconnect the history repeats what is already held.
    const last = this.rows.lastID;
    if (Number(e.id) <= last) return;
    this.received++;
    this.rows.push(e);
  }

  /** loadOlder fetches the page before the oldest row held. */
  async loadOlder(): Promise<void> {
    // Older than what? Only once the history has arrived and set a bound.
    const first = this.rows.firstID;
    if (this.loadingOlder || this.olderDone || this.streamState !== 'live' || Number.isNaN(first) || this.rows.size >= this.rows.max) return;
    const gen = this.gen;
    this.loadingOlder = true;
    this.olderError = '';
    this.changed();
    try {
      const page = await api.entries(this.query, String(first), OLDER_PAGE);
      if (gen !== this.gen) return;
      for (const e of page.entries) {
        if (!this.rows.unshift(e)) break;
      }
      if (!page.next) this.olderDone = true;
    } catch (err: any) {
      this.olderError = err.message;
    } finally {
      if (gen === this.gen) this.loadingOlder = false;
      this.changed();
    }
  }

  /** Loss the page must show, in sentences. */
  get losses(): string[] {
    const out: string[] = [];
    if (this.lost > 0) {
      out.push(`This browser missed ${this.lost.toLocaleString('en-US')} entries: it fell behind the hub's stream (marked in the list).`);
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
    if (this.rows.trimmed > 0) {
      out.push(`This browser let go of the ${this.rows.trimmed.toLocaleString('en-US')} oldest rows to stay under ${this.rows.max.toLocaleString('en-US')}.`);
    }
    return out;
  }
}

/** Counters whose growth means data was lost somewhere (kernel ring buffer,
 * capture socket, assembly, the agent's buffer). */
export function isLossCounter(a: AgentInfo, name: string): boolean {
  return a.loss?.includes(name) ?? false;
}

export const model = new Model();
