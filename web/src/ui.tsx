// Small building blocks shared by the list and the detail.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import { bodyBase64, bodyBytes, hexDump, prettyJSON, prettyXML, size } from './format';
import { useModel } from './model';
import { clause, type FieldRef } from './query';
import type { AMQPField, Body, Header, ProtoField } from './types';

export const protocolNames: Record<string, string> = {
  http1: 'HTTP/1',
  http2: 'HTTP/2',
  grpc: 'gRPC',
  redis: 'Redis',
  kafka: 'Kafka',
  amqp: 'AMQP',
};

interface VProps {
  /** The query field; with v, the click adds `f == v` (shift: `f != v`). */
  f?: FieldRef;
  v?: string | number | boolean;
  /** A ready clause instead of f and v; shift-click negates it. */
  c?: string;
  class?: string;
  children?: ComponentChildren;
}

/** V is a value the user can click to filter by. */
export function V({ f, v, c, class: cls, children }: VProps) {
  const model = useModel();
  const include = c ?? (f !== undefined && v !== undefined ? clause(f, v) : '');
  if (!include) return <span class={cls}>{children ?? String(v ?? '')}</span>;
  const exclude = c ? `!(${c})` : clause(f!, v!, true);
  const onClick = (e: MouseEvent) => {
    e.stopPropagation();
    e.preventDefault();
    model.filter(e.shiftKey ? exclude : include);
  };
  return (
    <span
      class={'v ' + (cls ?? '')}
      role="button"
      tabIndex={-1}
      data-clause={include}
      title={`click: ${include}\nshift-click: ${exclude}`}
      onClick={onClick}
      onMouseDown={(e) => e.shiftKey && e.preventDefault()}
    >
      {children ?? String(v)}
    </span>
  );
}

export function ProtocolBadge({ p }: { p: string }) {
  return (
    <V f="protocol" v={p} class={`badge p-${p}`}>
      {protocolNames[p] ?? p}
    </V>
  );
}

/** KV is a two-column table of label and value; empty values are left out. */
export function KV({ rows }: { rows: [string, ComponentChildren][] }) {
  const shown = rows.filter(([, v]) => v !== undefined && v !== null && v !== '' && v !== false);
  if (!shown.length) return null;
  return (
    <table class="kv">
      <tbody>
        {shown.map(([k, v]) => (
          <tr key={k}>
            <th>{k}</th>
            <td>{v}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Section({ title, children, extra }: { title: string; children: ComponentChildren; extra?: ComponentChildren }) {
  return (
    <section class="sec">
      <h3>
        {title}
        {extra && <span class="sec-extra">{extra}</span>}
      </h3>
      {children}
    </section>
  );
}

/** Headers as a table; field(name) gives the query field for a header. */
export function HeadersTable({ headers, field }: { headers?: Header[] | null; field?: (name: string) => FieldRef }) {
  if (!headers?.length) return <p class="muted">none</p>;
  return (
    <table class="headers">
      <tbody>
        {headers.map((h, i) => (
          <tr key={i}>
            <th>{h.name}</th>
            <td>{field ? <V f={field(h.name.toLowerCase())} v={h.value} /> : h.value}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Tabs<T extends string>({
  tabs,
  value,
  onChange,
}: {
  tabs: [T, string][];
  value: T;
  onChange: (t: T) => void;
}) {
  return (
    <div class="tabs" role="tablist">
      {tabs.map(([t, label]) => (
        <button key={t} role="tab" aria-selected={t === value} class={t === value ? 'on' : ''} onClick={() => onChange(t)}>
          {label}
        </button>
      ))}
    </div>
  );
}

type BodyMode = 'pretty' | 'raw' | 'hex';

/** BodyView shows a body pretty-printed (JSON, XML), as an image, as text or
 * as a hex dump, with its size and whether it was cut. */
export function BodyView({ body, contentType }: { body?: Body | null; contentType?: string }) {
  const [mode, setMode] = useState<BodyMode>('pretty');
  if (!body || (!body.size && !body.text && !body.base64)) return <p class="muted">no body</p>;
  const ct = (contentType ?? '').toLowerCase();
  const binary = body.base64 !== undefined && body.text === undefined;
  const image = ct.startsWith('image/') && !body.truncated;
  const text = body.text ?? '';
  let pretty: string | null = null;
  if (!binary) pretty = prettyJSON(text) ?? (ct.includes('xml') || text.trimStart().startsWith('<?xml') ? prettyXML(text) : null);
  const kept = binary ? bodyBytes(body).length : new TextEncoder().encode(text).length;
  const effective: BodyMode = mode === 'pretty' && binary && !image ? 'hex' : mode;
  return (
    <div class="body">
      <div class="body-bar">
        <span class="muted">
          {size(body.size)}
          {body.encoding && ` (${body.encoding}, shown decoded)`}
          {body.truncated && ` · first ${size(kept)} kept`}
          {binary && ' · binary'}
        </span>
        <Tabs<BodyMode>
          tabs={[
            ['pretty', image ? 'image' : pretty ? 'pretty' : 'text'],
            ['raw', 'raw'],
            ['hex', 'hex'],
          ]}
          value={effective}
          onChange={setMode}
        />
      </div>
      {effective === 'pretty' && image ? (
        <img class="body-img" alt="body" src={`data:${ct.split(';')[0]};base64,${bodyBase64(body)}`} />
      ) : effective === 'hex' ? (
        <pre class="code hex">{hexDump(bodyBytes(body))}</pre>
      ) : (
        <pre class="code">{effective === 'pretty' && pretty ? pretty : binary ? hexDump(bodyBytes(body)) : text}</pre>
      )}
      {body.truncated && <p class="note">The body was longer than the capture keeps; what is shown is its beginning.</p>}
    </div>
  );
}

/** ProtoTree shows protobuf fields decoded without a schema. */
export function ProtoTree({ fields }: { fields?: ProtoField[] }) {
  if (!fields?.length) return null;
  return (
    <ul class="tree">
      {fields.map((f, i) => (
        <li key={i}>
          <span class="fnum">{f.number}</span> <span class="muted">{f.kind}</span>{' '}
          {f.kind === 'string' && <span class="str">{JSON.stringify(f.value ?? '')}</span>}
          {(f.kind === 'varint' || f.kind === 'i32' || f.kind === 'i64') && (
            <span class="num">
              {f.value}
              {f.signed && <span class="muted"> (signed {f.signed})</span>}
              {f.float && <span class="muted"> (float {f.float})</span>}
            </span>
          )}
          {f.kind === 'packed' && <span class="num">[{(f.values ?? []).join(', ')}]</span>}
          {f.kind === 'bytes' && <span class="hexs">{bytesPreview(f.bytes)}</span>}
          {(f.kind === 'message' || f.kind === 'group') && f.size !== undefined && <span class="muted">{size(f.size)}</span>}
          {f.truncated && <span class="warn-text"> (cut)</span>}
          <ProtoTree fields={f.fields} />
        </li>
      ))}
    </ul>
  );
}

function bytesPreview(b64?: string): string {
  if (!b64) return '';
  const s = atob(b64);
  let out = '';
  for (let i = 0; i < Math.min(s.length, 48); i++) out += s.charCodeAt(i).toString(16).padStart(2, '0') + ' ';
  return out + (s.length > 48 ? `… (${s.length} bytes)` : '');
}

/** AMQPFields shows method arguments and field tables. */
export function AMQPFields({ fields }: { fields?: AMQPField[] }) {
  if (!fields?.length) return <p class="muted">none</p>;
  return (
    <table class="headers">
      <tbody>
        {fields.map((f, i) => (
          <tr key={i}>
            <th>{f.name ?? `[${i}]`}</th>
            <td>
              <span class="muted">{f.type}</span>{' '}
              {f.fields ? <AMQPFields fields={f.fields} /> : <span class={f.encoding ? 'hexs' : ''}>{f.value ?? ''}</span>}
              {f.truncated && <span class="warn-text"> (cut)</span>}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
