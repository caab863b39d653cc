// Calls to the hub's REST API (apiserver/README.md lists it).
import type { AgentsAnswer, Entry, FieldsAnswer, Page, ServiceMap, Stats, ValidateAnswer } from './types';

/** ApiError is a non-2xx answer: the hub's sentence, and for bad queries the
 * character (code point) where it went wrong. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly position?: number,
  ) {
    super(message);
  }
}

async function request<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await fetch(path, init);
  let body: any;
  try {
    body = await res.json();
  } catch {
    throw new ApiError(`the hub answered ${res.status} without JSON`, res.status);
  }
  if (!res.ok) {
    throw new ApiError(body?.error ?? `the hub answered ${res.status}`, res.status, body?.position);
  }
  return body as T;
}

function qs(params: Record<string, string | number | undefined>): string {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') u.set(k, String(v));
  }
  const s = u.toString();
  return s ? '?' + s : '';
}

export const api = {
  entries: (q: string, before: string | undefined, limit: number, signal?: AbortSignal) =>
    request<Page>('/api/v1/entries' + qs({ q, before, limit }), { signal }),
  entry: (id: string, signal?: AbortSignal) => request<Entry>('/api/v1/entries/' + encodeURIComponent(id), { signal }),
  validate: (q: string, signal?: AbortSignal) =>
    request<ValidateAnswer>('/api/v1/query/validate', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ q }),
      signal,
    }),
  fields: () => request<FieldsAnswer>('/api/v1/query/fields'),
  stats: (q: string, window: string, signal?: AbortSignal) =>
    request<Stats>('/api/v1/stats' + qs({ q, window }), { signal }),
  serviceMap: (q: string, window: string, signal?: AbortSignal) =>
    request<ServiceMap>('/api/v1/servicemap' + qs({ q, window }), { signal }),
  agents: () => request<AgentsAnswer>('/api/v1/agents'),
  harURL: (q: string) => '/api/v1/export/har' + qs({ q }),
  streamURL: (q: string, history: number) => {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}/api/v1/stream${qs({ q, history })}`;
  },
};
