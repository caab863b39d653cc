// Rows is the traffic list's memory: one row per entry, kept in typed arrays
// (about 70 bytes a row plus interned strings) rather than as objects, so
// that a million rows cost tens of megabytes and no garbage-collector pauses.
//
// Rows are addressed by position. Positions only grow at the tail (live
// entries) and only shrink at the head (older pages loaded on scroll up), so
// the arrays are a deque: data sits between off and off+size, with room left
// on both sides when they grow.
import type { Endpoint, Entry, Protocol } from './types';
import { ProtocolValues } from './types';

export const enum Flag {
  Gap = 1,
  NoResponse = 2,
  NoRequest = 4,
  Redacted = 8,
  Warnings = 16,
  Error = 32,
  /** A marker row: the stream lost `count` entries here (count in reqSize). */
  Lost = 64,
}

/** How an endpoint's label maps back to a query field. */
export const enum EpKind {
  Address = 0,
  Pod = 1,
  Service = 2,
  Workload = 3,
}

/** Strings interns repeated text (methods, targets, names) once. */
class Strings {
  private index = new Map<string, number>();
  private list: string[] = [];
  id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.list.length;
      this.list.push(s);
      this.index.set(s, i);
    }
    return i;
  }
  get(i: number): string {
    return this.list[i];
  }
  get size(): number {
    return this.list.length;
  }
}

type Column = Float64Array | Uint32Array | Uint8Array;

/** A row as the list renders it. */
export interface Row {
  id: number;
  startMs: number;
  durationNs: number;
  protocol: Protocol;
  method: string;
  target: string;
  status: string;
  src: string;
  srcKind: EpKind;
  dst: string;
  dstKind: EpKind;
  reqSize: number;
  respSize: number;
  flags: number;
}

/** The label an endpoint gets in the list, and how to query it. */
function endpointLabel(ep: Endpoint, server: boolean): [string, EpKind] {
  if (ep.pod) return [ep.pod, EpKind.Pod];
  if (server && ep.service) return [ep.service, EpKind.Service];
  if (ep.workload) return [ep.workload, EpKind.Workload];
  if (ep.service) return [ep.service, EpKind.Service];
  if (!server) return [ep.ip, EpKind.Address];
  return [ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`, EpKind.Address];
}

/** statusClass mirrors apiserver/query.StatusClass for colouring. */
export function statusClass(protocol: Protocol, status: string, flags: number): string {
  if (flags & Flag.NoResponse) return 'unmatched';
  if (protocol === 'http1' || protocol === 'http2') {
    const c = Number(status[0]);
    return c >= 1 && c <= 5 && status.length === 3 ? `${c}xx` : 'other';
  }
  return flags & Flag.Error ? 'error' : 'ok';
}

function isError(e: Entry): boolean {
  if (e.http?.response) return e.http.response.status_code >= 500;
  if (e.grpc) return e.grpc.status_code > 0;
  if (e.redis) return !!e.redis.error;
  if (e.kafka) return e.kafka.error_code !== 0;
  return !!e.amqp?.reply_code && e.amqp.reply_code >= 300;
}

export class Rows {
  /** Positions of the first row and one past the last. */
  lo = 0;
  hi = 0;
  /** Bumped on every change, for renderers to notice. */
  version = 0;
  /** Rows dropped from the head to stay under max. */
  trimmed = 0;

  private off = 0;
  private cap = 0;
  private strings = new Strings();
  private id = new Float64Array(0);
  private start = new Float64Array(0);
  private dur = new Float64Array(0);
  private req = new Float64Array(0);
  private resp = new Float64Array(0);
  private method = new Uint32Array(0);
  private target = new Uint32Array(0);
  private status = new Uint32Array(0);
  private src = new Uint32Array(0);
  private dst = new Uint32Array(0);
  private proto = new Uint8Array(0);
  private flags = new Uint8Array(0);
  private kinds = new Uint8Array(0);

  constructor(readonly max: number) {}

  get size(): number {
    return this.hi - this.lo;
  }

  /** Newest and oldest entry IDs held (NaN when empty or a marker). */
  get lastID(): number {
    for (let p = this.hi - 1; p >= this.lo; p--) if (!(this.flagsAt(p) & Flag.Lost)) return this.idAt(p);
    return NaN;
  }
  get firstID(): number {
    for (let p = this.lo; p < this.hi; p++) if (!(this.flagsAt(p) & Flag.Lost)) return this.idAt(p);
    return NaN;
  }

  clear(): void {
    this.lo = this.hi = this.off = this.cap = this.trimmed = 0;
    this.strings = new Strings();
    this.resize(0, 0);
    this.version++;
  }

  /** Appends an entry at the tail, trimming the head past max. */
  push(e: Entry): void {
    this.reserve(false);
    this.write(this.off + this.size, e);
    this.hi++;
    if (this.size > this.max) {
      this.lo++;
      this.off++;
      this.trimmed++;
    }
    this.version++;
  }

  /** Prepends an entry at the head (older than every row held); false when full. */
  unshift(e: Entry): boolean {
    if (this.size >= this.max) return false;
    this.reserve(true);
    this.off--;
    this.lo--;
    this.write(this.off, e);
    this.version++;
    return true;
  }

  /** Appends a marker row saying the stream lost n entries here. */
  pushLost(n: number): void {
    this.reserve(false);
    const i = this.off + this.size;
    this.id[i] = NaN;
    this.start[i] = NaN;
    this.dur[i] = 0;
    this.req[i] = n;
    this.resp[i] = 0;
    this.method[i] = this.target[i] = this.status[i] = this.src[i] = this.dst[i] = this.strings.id('');
    this.proto[i] = 0;
    this.flags[i] = Flag.Lost;
    this.kinds[i] = 0;
    this.hi++;
    this.version++;
  }

  idAt(p: number): number {
    return this.id[this.off + p - this.lo];
  }
  flagsAt(p: number): number {
    return this.flags[this.off + p - this.lo];
  }

  /** Position of the row with entry ID id, or -1 (binary search: IDs ascend). */
  find(id: number): number {
    let a = this.lo;
    let b = this.hi - 1;
    while (a <= b) {
      const m = (a + b) >> 1;
      let q = m;
      while (q <= b && Number.isNaN(this.idAt(q))) q++;
      if (q > b) {
        b = m - 1;
        continue;
      }
      const v = this.idAt(q);
      if (v === id) return q;
      if (v < id) a = q + 1;
      else b = m - 1;
    }
    return -1;
  }

  get(p: number): Row {
    const i = this.off + p - this.lo;
    const k = this.kinds[i];
    return {
      id: this.id[i],
      startMs: this.start[i],
      durationNs: this.dur[i],
      protocol: ProtocolValues[this.proto[i]],
      method: this.strings.get(this.method[i]),
      target: this.strings.get(this.target[i]),
      status: this.strings.get(this.status[i]),
      src: this.strings.get(this.src[i]),
      srcKind: k & 3,
      dst: this.strings.get(this.dst[i]),
      dstKind: (k >> 2) & 3,
      reqSize: this.req[i],
      respSize: this.resp[i],
      flags: this.flags[i],
    };
  }

  /** Bytes the arrays hold (not counting strings), for the status view. */
  get bytes(): number {
    return this.cap * (8 * 5 + 4 * 5 + 3);
  }

  private write(i: number, e: Entry): void {
    this.id[i] = Number(e.id);
    this.start[i] = parseTime(e.start);
    this.dur[i] = e.duration_ns;
    this.req[i] = e.request_size;
    this.resp[i] = e.response_size;
    this.method[i] = this.strings.id(e.summary.method);
    this.target[i] = this.strings.id(e.summary.target);
    this.status[i] = this.strings.id(e.summary.status);
    const [s, sk] = endpointLabel(e.src, false);
    const [d, dk] = endpointLabel(e.dst, true);
    this.src[i] = this.strings.id(s);
    this.dst[i] = this.strings.id(d);
    this.kinds[i] = sk | (dk << 2);
    this.proto[i] = Math.max(0, ProtocolValues.indexOf(e.protocol));
    let f = 0;
    if (e.gap) f |= Flag.Gap;
    if (e.unmatched === 'response') f |= Flag.NoResponse;
    if (e.unmatched === 'request') f |= Flag.NoRequest;
    if (e.redacted) f |= Flag.Redacted;
    if (e.warnings?.length) f |= Flag.Warnings;
    if (isError(e)) f |= Flag.Error;
    this.flags[i] = f;
  }

  /** Makes room for one more row at the head (front) or the tail. */
  private reserve(front: boolean): void {
    if (front ? this.off > 0 : this.off + this.size < this.cap) return;
    const n = this.size;
    const cap = Math.max(1024, this.cap * 2);
    // Leave room on the side that grows; a deque that grew at the head once
    // is likely to again (scrolling up loads page after page).
    const off = front ? cap - n - Math.max(0, this.cap - this.off - n) : Math.min(this.off, (cap - n) >> 1);
    this.resize(cap, off);
  }

  private resize(cap: number, off: number): void {
    const n = this.size;
    const move = <T extends Column>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      if (n > 0) b.set(a.subarray(this.off, this.off + n), off);
      return b;
    };
    const f64 = (k: number) => new Float64Array(k);
    const u32 = (k: number) => new Uint32Array(k);
    const u8 = (k: number) => new Uint8Array(k);
    this.id = move(this.id, f64);
    this.start = move(this.start, f64);
    this.dur = move(this.dur, f64);
    this.req = move(this.req, f64);
    this.resp = move(this.resp, f64);
    this.method = move(this.method, u32);
    this.target = move(this.target, u32);
    this.status = move(this.status, u32);
    this.src = move(this.src, u32);
    this.dst = move(this.dst, u32);
    this.proto = move(this.proto, u8);
    this.flags = move(this.flags, u8);
    this.kinds = move(this.kinds, u8);
    this.cap = cap;
    this.off = off;
  }
}

/** parseTime reads RFC 3339 with nanoseconds into milliseconds, keeping the
 * microseconds that Date.parse drops. */
export function parseTime(s: string): number {
  const ms = Date.parse(s);
  const m = /\.(\d+)/.exec(s);
  if (!m || m[1].length <= 3) return ms;
  return ms + Number('0.' + m[1].slice(3, 6).padEnd(3, '0'));
}
