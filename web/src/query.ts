// Building queries from what the user clicks, and reading the URL.
import { EpKind } from './rows';
import type { EndpointMember, EndpointQueryField, MapQueryField, QueryField } from './types';

/** A field a value can be filtered by: one of the hub's query fields, an
 * endpoint's member (src.pod) or a key of a map field
 * (request.headers["accept"]). The names come from the Go vocabulary, so a
 * field the hub renames fails the type check here. */
export type FieldRef = QueryField | `${EndpointQueryField}.${EndpointMember}` | `${MapQueryField}.${string}`;

/** A CEL literal for a value: strings quoted (CEL accepts JSON's escapes),
 * numbers and booleans bare. */
export function literal(v: string | number | boolean): string {
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/** One comparison: `field == value`, or `!=` to exclude. */
export function clause(field: FieldRef, v: string | number | boolean, exclude = false): string {
  return `${field} ${exclude ? '!=' : '=='} ${literal(v)}`;
}

/** Adds a clause to a query with &&, bracketing the query when an operator
 * of lower precedence (||, ?:) would otherwise capture the clause. */
export function addClause(q: string, c: string): string {
  const t = q.trim();
  if (!t) return c;
  if (t === c || t.endsWith('&& ' + c)) return t;
  return (/\|\||\?/.test(t) ? `(${t})` : t) + ' && ' + c;
}

/** The clause that selects an endpoint shown in the list as label. */
export function endpointClause(side: EndpointQueryField, kind: EpKind, label: string, exclude = false): string {
  switch (kind) {
    case EpKind.Pod:
      return clause(`${side}.pod`, label, exclude);
    case EpKind.Service:
      return clause(`${side}.service`, label, exclude);
    case EpKind.Workload:
      return clause(`${side}.workload`, label, exclude);
  }
  const m = /^\[?([^\]]*?)\]?:(\d+)$/.exec(label);
  if (side === 'dst' && m) {
    const both = `${side}.ip == ${literal(m[1])} && ${side}.port == ${m[2]}`;
    return exclude ? `!(${both})` : both;
  }
  return clause(`${side}.ip`, label, exclude);
}

/** The view the URL describes: ?q=&view=&id= */
export interface Location {
  q: string;
  view: string;
  id: string;
}

export function readLocation(): Location {
  const p = new URLSearchParams(location.search);
  return { q: p.get('q') ?? '', view: p.get('view') ?? 'list', id: p.get('id') ?? '' };
}

export function writeLocation(l: Location, push: boolean): void {
  const p = new URLSearchParams();
  if (l.q) p.set('q', l.q);
  if (l.view && l.view !== 'list') p.set('view', l.view);
  if (l.id) p.set('id', l.id);
  const s = p.toString();
  const url = location.pathname + (s ? '?' + s : '');
  if (url === location.pathname + location.search) return;
  if (push) history.pushState(null, '', url);
  else history.replaceState(null, '', url);
}

const historyKey = 'sonde.queries';
const historyMax = 30;

export function queryHistory(): string[] {
  try {
    const v = JSON.parse(localStorage.getItem(historyKey) ?? '[]');
    return Array.isArray(v) ? v.filter((s) => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

export function rememberQuery(q: string): void {
  if (!q.trim()) return;
  const h = [q, ...queryHistory().filter((s) => s !== q)].slice(0, historyMax);
  try {
    localStorage.setItem(historyKey, JSON.stringify(h));
  } catch {
    // Storage full or disabled: history is a convenience.
  }
}
