// Formatting of times, sizes and bodies.
import type { Body, Entry, Header } from './types';

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

/** Clock time with microseconds, local. */
export function clock(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  const us = Math.floor((ms - Math.floor(ms)) * 1000);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}${pad(us, 3)}`;
}

export function dateTime(ms: number): string {
  if (!Number.isFinite(ms)) return '';
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`;
}

export function latency(ns: number): string {
  if (!(ns > 0)) return '';
  if (ns < 1e3) return `${ns} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(ns < 1e4 ? 1 : 0)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(ns < 1e7 ? 2 : 1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

export function ms(v: number): string {
  return latency(v * 1e6) || '0';
}

export function size(n: number): string {
  if (!(n > 0)) return n === 0 ? '0 B' : '';
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n / 1000;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** bodyBytes decodes a body's data. */
export function bodyBytes(b: Body): Uint8Array {
  if (b.base64) {
    const s = atob(b.base64);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  return new TextEncoder().encode(b.text ?? '');
}

/** base64 of raw bytes given as base64 or text, for data: URLs. */
export function bodyBase64(b: Body): string {
  if (b.base64) return b.base64;
  const bytes = new TextEncoder().encode(b.text ?? '');
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
  return btoa(s);
}

/** hexDump renders up to limit bytes as offset, hex and ASCII columns. */
export function hexDump(bytes: Uint8Array, limit = 64 << 10): string {
  const n = Math.min(bytes.length, limit);
  const lines: string[] = [];
  for (let o = 0; o < n; o += 16) {
    let hex = '';
    let asc = '';
    for (let i = 0; i < 16; i++) {
      if (o + i < n) {
        const b = bytes[o + i];
        hex += b.toString(16).padStart(2, '0') + (i === 7 ? '  ' : ' ');
        asc += b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.';
      } else {
        hex += i === 7 ? '    ' : '   ';
      }
    }
    lines.push(`${o.toString(16).padStart(8, '0')}  ${hex} |${asc}|`);
  }
  if (bytes.length > n) lines.push(`… ${bytes.length - n} more bytes`);
  return lines.join('\n');
}

/** prettyJSON re-indents JSON text; null when it is not JSON. */
export function prettyJSON(text: string): string | null {
  const t = text.trim();
  if (!t || !'{['.includes(t[0])) return null;
  try {
    return JSON.stringify(JSON.parse(t), null, 2);
  } catch {
    return null;
  }
}

/** prettyXML indents markup one element per line; null when it does not
 * look like XML. It only re-flows whitespace, so a truncated document still
 * shows as far as it goes. */
export function prettyXML(text: string): string | null {
  const t = text.trim();
  if (!t.startsWith('<') || !t.endsWith('>')) return null;
  const tokens = t.replace(/>\s*</g, '><').split(/(?=<)|(?<=>)/);
  let depth = 0;
  const out: string[] = [];
  for (const tok of tokens) {
    if (!tok.trim()) continue;
    const closing = tok.startsWith('</');
    const selfClosing = tok.endsWith('/>') || tok.startsWith('<?') || tok.startsWith('<!');
    const opening = tok.startsWith('<') && !closing && !selfClosing;
    if (closing) depth = Math.max(0, depth - 1);
    const last = out.length - 1;
    // Keep <a>text</a> on one line.
    if (closing && last >= 1 && !out[last].trim().startsWith('<')) {
      out[last - 1] += out[last].trim() + tok;
      out.pop();
    } else {
      out.push('  '.repeat(depth) + tok);
    }
    if (opening) depth++;
  }
  return out.join('\n');
}

export function headerValue(hs: Header[] | null | undefined, name: string): string {
  const n = name.toLowerCase();
  return hs?.find((h) => h.name.toLowerCase() === n)?.value ?? '';
}

/** shellQuote quotes for POSIX shells. */
function shellQuote(s: string): string {
  return /^[A-Za-z0-9_\-.,:/@=+%]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** curl renders an HTTP request as a curl command; redacted values stay
 * redacted, and a binary or truncated body is left out with a note. */
export function curl(e: Entry): string {
  const r = e.http?.request;
  if (!r) return '';
  let url = r.target;
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    const host = r.authority || headerValue(r.headers, 'host') || `${e.dst.ip}:${e.dst.port}`;
    url = `${r.scheme || 'http'}://${host}${url.startsWith('/') ? '' : '/'}${url}`;
  }
  const parts = ['curl'];
  if (e.protocol === 'http2') parts.push('--http2-prior-knowledge');
  if (r.method !== 'GET' || r.body.size > 0) parts.push('-X', shellQuote(r.method));
  parts.push(shellQuote(url));
  for (const h of r.headers ?? []) {
    const n = h.name.toLowerCase();
    if (n.startsWith(':') || n === 'host' || n === 'content-length') continue;
    parts.push('-H', shellQuote(`${h.name}: ${h.value}`));
  }
  let note = '';
  if (r.body.size > 0) {
    if (r.body.text !== undefined && !r.body.truncated && !r.body.encoding) {
      parts.push('--data-raw', shellQuote(r.body.text));
    } else {
      note = `\n# the ${size(r.body.size)} body was ${r.body.truncated ? 'cut to a cap' : 'binary or content-encoded'} and is left out`;
    }
  }
  return parts.join(' ') + note;
}

export async function copyText(s: string): Promise<void> {
  try {
    await navigator.clipboard.writeText(s);
  } catch {
    // Clipboard refused (plain http on a remote host): fall back to a selection.
    const ta = document.createElement('textarea');
    ta.value = s;
    document.body.appendChild(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
}
