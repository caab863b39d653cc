// One entry in full, fetched from /api/v1/entries/{id}.
import type { ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api } from './api';
import { copyText, curl, dateTime, headerValue, latency, size } from './format';
import { parseTime } from './rows';
import type { AMQPContent, Endpoint, Entry, GRPCMessages, HTTPRequest, HTTPResponse, KafkaBatch } from './types';
import { AMQPFields, BodyView, HeadersTable, KV, ProtoTree, ProtocolBadge, Section, Tabs, V } from './ui';

type Tab = 'request' | 'response' | 'both' | 'info';
let lastTab: Tab = 'both';

export function Detail({ id, onClose }: { id: string; onClose: () => void }) {
  const [entry, setEntry] = useState<Entry | null>(null);
  const [error, setError] = useState('');
  const [tab, setTab] = useState<Tab>(lastTab);
  const [copied, setCopied] = useState('');

  useEffect(() => {
    const ac = new AbortController();
    setError('');
    api.entry(id, ac.signal).then(setEntry, (err) => {
      if (err.name !== 'AbortError') setError(err.message);
    });
    return () => ac.abort();
  }, [id]);

  const choose = (t: Tab) => {
    lastTab = t;
    setTab(t);
  };
  const copy = (what: string, text: string) => {
    copyText(text).then(() => {
      setCopied(what);
      setTimeout(() => setCopied(''), 1500);
    });
  };

  const e = entry && entry.id === id ? entry : null;
  return (
    <aside class="detail" aria-label="entry detail" data-entry={e?.id ?? ''}>
      <header class="detail-head">
        {e ? (
          <div class="detail-title">
            <ProtocolBadge p={e.protocol} />
            <V f="method" v={e.summary.method} class="strong" />
            <V f="target" v={e.summary.target} class="target" />
            {e.summary.status && <V f="status" v={e.summary.status} class="st" />}
            <span class="muted">{latency(e.duration_ns)}</span>
          </div>
        ) : (
          <div class="detail-title muted">{error || `entry ${id}…`}</div>
        )}
        <div class="detail-actions">
          {e?.http?.request && (
            <button onClick={() => copy('curl', curl(e))} title="copy the request as a curl command">
              {copied === 'curl' ? 'copied' : 'copy as curl'}
            </button>
          )}
          {e && (
            <button onClick={() => copy('json', JSON.stringify(e, null, 2))} title="copy the entry as JSON">
              {copied === 'json' ? 'copied' : 'copy JSON'}
            </button>
          )}
          <button class="close" onClick={onClose} title="close (Esc)" aria-label="close">
            ✕
          </button>
        </div>
      </header>
      {e && (
        <>
          <Tabs<Tab>
            tabs={[
              ['both', 'Request & response'],
              ['request', 'Request'],
              ['response', 'Response'],
              ['info', 'Timing & connection'],
            ]}
            value={tab}
            onChange={choose}
          />
          <Markers e={e} />
          <div class={'detail-body' + (tab === 'both' ? ' side' : '')}>
            {(tab === 'request' || tab === 'both') && (
              <div class="half" data-half="request">
                {tab === 'both' && <h2>Request</h2>}
                <RequestHalf e={e} />
              </div>
            )}
            {(tab === 'response' || tab === 'both') && (
              <div class="half" data-half="response">
                {tab === 'both' && <h2>Response</h2>}
                <ResponseHalf e={e} />
              </div>
            )}
            {tab === 'info' && <Info e={e} />}
          </div>
        </>
      )}
    </aside>
  );
}

function Markers({ e }: { e: Entry }) {
  const items: ComponentChildren[] = [];
  if (e.gap) items.push(<V f="gap" v={true} class="mk mk-gap">gap: bytes were missing inside this exchange</V>);
  if (e.unmatched === 'response') items.push(<V f="unmatched" v="response" class="mk mk-half">no response was seen</V>);
  if (e.unmatched === 'request') items.push(<V f="unmatched" v="request" class="mk mk-half">the request was not captured</V>);
  if (e.redacted) items.push(<V f="redacted" v={true} class="mk mk-red">secrets redacted</V>);
  if (!items.length && !e.warnings?.length) return null;
  return (
    <div class="markers">
      {items}
      {e.warnings?.map((w, i) => (
        <div key={i} class="warn-text">
          ⚠ {w}
        </div>
      ))}
    </div>
  );
}

function RequestHalf({ e }: { e: Entry }) {
  if (e.http) {
    const r = e.http.request;
    if (!r) return <p class="muted">The request was not captured.</p>;
    return (
      <>
        <p class="line">
          <V f="method" v={r.method} class="strong" /> <V f="path" v={r.path}>{r.target}</V> <V f="http_version" v={r.version} class="muted" />
        </p>
        <KV
          rows={[
            ['host', r.authority && <V f="host" v={r.authority} />],
            ['scheme', r.scheme],
            ['HTTP/2 stream', e.http.stream_id],
          ]}
        />
        <HTTPParts m={r} side="request" />
      </>
    );
  }
  if (e.grpc) {
    const g = e.grpc;
    return (
      <>
        <KV
          rows={[
            ['service', <V f="grpc_service" v={g.service} />],
            ['method', <V f="grpc_method" v={g.method} />],
            ['authority', g.authority],
            ['content type', g.content_type],
            ['HTTP/2 stream', g.stream_id],
          ]}
        />
        <Section title="Metadata">
          <HeadersTable headers={g.request_metadata} />
        </Section>
        <Messages title="Request messages" m={g.requests} />
      </>
    );
  }
  if (e.redis) {
    const r = e.redis;
    if (!r.command && !r.push_kind) return <p class="muted">The command was not captured.</p>;
    return (
      <>
        <KV
          rows={[
            ['command', r.command && <V f="redis_command" v={r.command} class="strong" />],
            ['key', r.key && <V f="redis_key" v={r.key} />],
            ['push', r.push_kind],
            ['channel', r.channel],
            ['pattern', r.pattern],
            ['sent', [r.inline && 'inline', r.queued && 'queued in MULTI', r.no_reply && 'no reply by design'].filter(Boolean).join(', ')],
          ]}
        />
        {!!r.args?.length && (
          <Section title={`Arguments (${r.arg_count ?? r.args.length})`}>
            <ol class="args">
              {r.args.map((a, i) => (
                <li key={i}>
                  <V c={`${JSON.stringify(a)} in redis_args`}>{a}</V>
                </li>
              ))}
            </ol>
            {r.args_truncated && <p class="note">More arguments were sent than are kept.</p>}
          </Section>
        )}
      </>
    );
  }
  if (e.kafka) {
    const k = e.kafka;
    return (
      <>
        <KV
          rows={[
            ['API', <V f="kafka_api" v={k.api} class="strong" />],
            ['API key', <V f="kafka_api_key" v={k.api_key} />],
            ['version', <V f="kafka_api_version" v={k.api_version} />],
            ['correlation ID', String(k.correlation_id)],
            ['client ID', k.client_id && <V f="kafka_client_id" v={k.client_id} />],
            ['group', k.group_id],
            ['transactional ID', k.transactional_id],
            ['SASL mechanism', k.sasl_mechanism],
            ['SASL token', k.sasl_auth && size(k.sasl_auth.size)],
          ]}
        />
        {!!k.topics?.length && (
          <Section title={`Topics (${k.topic_count ?? k.topics.length})`}>
            <table class="grid">
              <thead>
                <tr>
                  <th>topic</th>
                  <th>partitions</th>
                </tr>
              </thead>
              <tbody>
                {k.topics.map((t, i) => (
                  <tr key={i}>
                    <td>{t.name ? <V f="target" v={t.name} /> : <span class="muted">ID {t.id}</span>}</td>
                    <td>{(t.partitions ?? []).join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        )}
        {k.api === 'Produce' && <Batches batches={k.batches} count={k.record_count} />}
      </>
    );
  }
  if (e.amqp) {
    const a = e.amqp;
    return (
      <>
        <KV
          rows={[
            ['method', <V f="amqp_method" v={a.method} class="strong" />],
            ['channel', <V f="amqp_channel" v={a.channel} />],
            ['class / method ID', `${a.class_id} / ${a.method_id}`],
            ['sent by', a.sender],
            ['exchange', a.exchange],
            ['routing key', a.routing_key],
            ['queue', a.queue],
            ['consumer tag', a.consumer_tag],
            ['delivery tag', a.delivery_tag],
            ['protocol header', a.protocol_header],
          ]}
        />
        <Section title="Arguments">
          <AMQPFields fields={a.arguments} />
        </Section>
        {a.content && <Content c={a.content} />}
      </>
    );
  }
  return <p class="muted">No record.</p>;
}

function ResponseHalf({ e }: { e: Entry }) {
  if (e.http) {
    const r = e.http.response;
    if (!r) return <p class="muted">No response was seen{e.http.reset_code ? ` (stream reset: ${e.http.reset_code})` : ''}.</p>;
    return (
      <>
        <p class="line">
          <span class="muted">{r.version}</span> <V f="status_code" v={r.status_code} class="strong" /> {r.reason}
        </p>
        <KV
          rows={[
            ['informational', r.informational?.join(', ')],
            ['upgrade to', e.http.upgrade],
            ['stream reset', e.http.reset_code],
          ]}
        />
        <HTTPParts m={r} side="response" />
      </>
    );
  }
  if (e.grpc) {
    const g = e.grpc;
    return (
      <>
        <KV
          rows={[
            ['status', g.status ? <V f="grpc_status" v={g.status} class="strong" /> : <span class="muted">did not finish</span>],
            ['code', <V f="grpc_status_code" v={g.status_code} />],
            ['message', g.message && <V f="grpc_message" v={g.message} />],
            ['HTTP status', g.http_status],
            ['stream reset', g.reset_code],
          ]}
        />
        {!!g.status_details?.length && (
          <Section title="Status details">
            <ProtoTree fields={g.status_details} />
          </Section>
        )}
        <Section title="Metadata">
          <HeadersTable headers={g.response_metadata} />
        </Section>
        <Messages title="Response messages" m={g.responses} />
        <Section title="Trailers">
          <HeadersTable headers={g.trailers} />
        </Section>
      </>
    );
  }
  if (e.redis) {
    const r = e.redis;
    if (e.unmatched === 'response' || (!r.reply_type && !r.error)) return <p class="muted">No reply{r.no_reply ? ' (none expected)' : ' was seen'}.</p>;
    return (
      <>
        <KV
          rows={[
            ['type', r.reply_type],
            ['error', r.error && <V f="redis_error" v={r.error} class="err-text" />],
            ['elements', r.reply_count],
            ['attributes', r.attributes],
          ]}
        />
        {r.reply !== undefined && <pre class="code">{r.reply}</pre>}
        {r.reply_truncated && <p class="note">The reply was longer than the capture keeps.</p>}
      </>
    );
  }
  if (e.kafka) {
    const k = e.kafka;
    if (!k.error) return <p class="muted">No response was seen.</p>;
    return (
      <>
        <KV
          rows={[
            ['error', <span class={k.error_code ? 'err-text' : ''}>{k.error}</span>],
            ['error code', String(k.error_code)],
          ]}
        />
        {!!k.errors?.length && (
          <Section title="Errors">
            <table class="grid">
              <thead>
                <tr>
                  <th>code</th>
                  <th>name</th>
                  <th>topic</th>
                  <th>partition</th>
                  <th>message</th>
                </tr>
              </thead>
              <tbody>
                {k.errors.map((x, i) => (
                  <tr key={i}>
                    <td>{x.code}</td>
                    <td class="err-text">{x.name}</td>
                    <td>{x.topic}</td>
                    <td>{x.partition >= 0 ? x.partition : ''}</td>
                    <td>{x.message}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </Section>
        )}
        {k.api !== 'Produce' && <Batches batches={k.batches} count={k.record_count} />}
      </>
    );
  }
  if (e.amqp) {
    const a = e.amqp;
    return (
      <>
        {a.reply ? (
          <>
            <KV
              rows={[
                ['reply', <span class="strong">{a.reply.method}</span>],
                ['class / method ID', `${a.reply.class_id} / ${a.reply.method_id}`],
              ]}
            />
            <Section title="Arguments">
              <AMQPFields fields={a.reply.arguments} />
            </Section>
            {a.reply.content && <Content c={a.reply.content} />}
          </>
        ) : (
          <p class="muted">{e.unmatched === 'response' ? 'No reply was seen.' : 'This method has no reply.'}</p>
        )}
        <KV
          rows={[
            ['reply code', a.reply_code],
            ['reply text', a.reply_text],
            ['confirmed', a.confirm && `${a.confirm.status} (delivery tag ${a.confirm.delivery_tag}${a.confirm.multiple ? ', multiple' : ''})`],
          ]}
        />
      </>
    );
  }
  return null;
}

/** HTTPParts shows an HTTP message's headers (each one a filter on
 * side.headers), trailers and body. */
function HTTPParts({ m, side }: { m: HTTPRequest | HTTPResponse; side: 'request' | 'response' }) {
  return (
    <>
      <Section title="Headers">
        <HeadersTable headers={m.headers} field={(n) => `${side}.headers[${JSON.stringify(n)}]`} />
      </Section>
      {!!m.trailers?.length && (
        <Section title="Trailers">
          <HeadersTable headers={m.trailers} />
        </Section>
      )}
      <Section title="Body">
        <BodyView body={m.body} contentType={headerValue(m.headers, 'content-type')} />
      </Section>
    </>
  );
}

function Messages({ title, m }: { title: string; m: GRPCMessages }) {
  return (
    <Section title={`${title} (${m.count}, ${size(m.bytes)}${m.encoding ? `, ${m.encoding}` : ''})`}>
      {(m.messages ?? []).map((msg, i) => (
        <div key={i} class="message">
          <div class="muted">
            #{i + 1} · {size(msg.size)}
            {msg.compressed && ' · compressed'}
            {msg.truncated && ' · cut'}
          </div>
          {msg.fields?.length ? (
            <ProtoTree fields={msg.fields} />
          ) : (
            msg.data && <BodyView body={{ size: msg.size, base64: msg.data, truncated: msg.truncated }} />
          )}
          {msg.decode_error && <p class="warn-text">{msg.decode_error}</p>}
        </div>
      ))}
      {m.truncated && <p class="note">More messages were sent than are kept.</p>}
    </Section>
  );
}

function Batches({ batches, count }: { batches?: KafkaBatch[]; count?: number }) {
  if (!batches?.length) return null;
  return (
    <Section title={`Records (${count ?? 0})`}>
      {batches.map((b, i) => (
        <div key={i} class="batch">
          <div class="muted">
            {b.topic} [{b.partition}] · offset {b.base_offset} · {b.record_count} records · {b.compression} · {size(b.size)}
            {b.transactional && ' · transactional'}
            {b.control && ' · control'}
          </div>
          <table class="grid">
            <thead>
              <tr>
                <th>offset</th>
                <th>time</th>
                <th>key</th>
                <th>value</th>
                <th>headers</th>
              </tr>
            </thead>
            <tbody>
              {(b.records ?? []).map((r, j) => (
                <tr key={j}>
                  <td>{r.offset}</td>
                  <td>{r.timestamp_ms >= 0 ? dateTime(r.timestamp_ms) : ''}</td>
                  <td>{r.key ? <Inline b={r.key} /> : <span class="muted">null</span>}</td>
                  <td>{r.value ? <Inline b={r.value} /> : <span class="muted">null (tombstone)</span>}</td>
                  <td>{(r.headers ?? []).map((h) => `${h.name}=${h.value ? (h.value.text ?? h.value.base64 ?? '') : 'null'}`).join(', ')}</td>
                </tr>
              ))}
            </tbody>
          </table>
          {b.truncated && <p class="note">The batch has more records than are kept.</p>}
        </div>
      ))}
    </Section>
  );
}

function Inline({ b }: { b: { text?: string; base64?: string; size: number; truncated?: boolean } }) {
  return (
    <span class={b.text === undefined ? 'hexs' : 'str'}>
      {b.text ?? b.base64 ?? ''}
      {b.truncated && <span class="muted"> … ({size(b.size)})</span>}
    </span>
  );
}

function Content({ c }: { c: AMQPContent }) {
  const p = c.properties;
  return (
    <Section title="Content">
      <KV
        rows={[
          ['content type', p.content_type],
          ['content encoding', p.content_encoding],
          ['delivery mode', p.delivery_mode && (p.delivery_mode === 2 ? '2 (persistent)' : `${p.delivery_mode} (transient)`)],
          ['priority', p.priority],
          ['correlation ID', p.correlation_id],
          ['reply to', p.reply_to],
          ['expiration', p.expiration],
          ['message ID', p.message_id],
          ['timestamp', p.timestamp],
          ['type', p.type],
          ['user ID', p.user_id],
          ['app ID', p.app_id],
          ['body', `${size(c.body_size)} in ${c.body_frames} frame${c.body_frames === 1 ? '' : 's'}`],
        ]}
      />
      {!!p.headers?.length && (
        <Section title="Headers">
          <AMQPFields fields={p.headers} />
        </Section>
      )}
      <BodyView body={c.body} contentType={p.content_type} />
    </Section>
  );
}

function EndpointKV({ side, ep }: { side: 'src' | 'dst'; ep: Endpoint }) {
  return (
    <KV
      rows={[
        ['address', <V f={`${side}.ip`} v={ep.ip} />],
        ['port', <V f={`${side}.port`} v={ep.port} />],
        ['pod', ep.pod && <V f={`${side}.pod`} v={ep.pod} />],
        ['namespace', ep.namespace && <V f={`${side}.namespace`} v={ep.namespace} />],
        ['service', ep.service && <V f={`${side}.service`} v={ep.service} />],
        ['workload', ep.workload && <V f={`${side}.workload`} v={ep.workload} />],
        ['node', ep.node && <V f={`${side}.node`} v={ep.node} />],
      ]}
    />
  );
}

function Info({ e }: { e: Entry }) {
  const start = parseTime(e.start);
  return (
    <div class="info">
      <Section title="Timing">
        <KV
          rows={[
            ['start', <span title={e.start}>{dateTime(start)}</span>],
            ['end', dateTime(start + e.duration_ns / 1e6)],
            ['elapsed', latency(e.duration_ns) || '0'],
            ['request size', `${size(e.request_size)} on the wire`],
            ['response size', `${size(e.response_size)} on the wire`],
          ]}
        />
      </Section>
      <Section title="Client">
        <EndpointKV side="src" ep={e.src} />
      </Section>
      <Section title="Server">
        <EndpointKV side="dst" ep={e.dst} />
      </Section>
      <Section title="Capture">
        <KV
          rows={[
            ['entry ID', <V f="id" v={e.id} />],
            ['protocol', <ProtocolBadge p={e.protocol} />],
            ['node', e.node && <V f="node" v={e.node} />],
            ['source', e.source && <V f="source" v={e.source} />],
          ]}
        />
      </Section>
    </div>
  );
}
