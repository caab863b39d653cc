// Status: the hub's store, this browser's stream, and every agent with its
// capture source and counters (loss counters stand out).
import { count, dateTime, size } from './format';
import { isLossCounter, useModel } from './model';
import { KV, Section } from './ui';

function ago(iso: string): string {
  const s = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(s)) return '';
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

export function StatusView() {
  const model = useModel();
  const h = model.hub;
  const rows = model.rows;
  return (
    <div class="status">
      <div class="status-cols">
        <Section title="Hub">
          {h ? (
            <KV
              rows={[
                ['entries stored', count(h.stored)],
                ['store size', `${size(h.store_bytes)} of ${size(h.storage_limit)}`],
                ['history starts', h.history_start ? dateTime(Date.parse(h.history_start)) : 'nothing stored yet'],
                ['evicted', <span class={h.evicted ? 'warn-text' : ''}>{count(h.evicted)}</span>],
                ['ingested', count(h.ingested)],
                ['agents connected', count(h.agents)],
                ['browser streams', count(h.stream_clients)],
              ]}
            />
          ) : (
            <p class="muted">Waiting for the stream's first stats.</p>
          )}
        </Section>
        <Section title="This browser">
          <KV
            rows={[
              ['stream', model.streamState + (model.streamError ? `: ${model.streamError}` : '')],
              ['rows held', `${count(rows.size)} (at most ${count(rows.max)})`],
              ['row memory', size(rows.bytes)],
              ['entries received', count(model.received)],
              ['entries lost', <span class={model.lost ? 'err-text' : ''}>{count(model.lost)}</span>],
              ['rows let go', count(rows.trimmed)],
            ]}
          />
        </Section>
      </div>
      <Section title={`Agents (${model.agents.length})`}>
        {model.agentsError && <p class="err-text">{model.agentsError}</p>}
        {model.agents.length ? (
          <table class="grid agents">
            <thead>
              <tr>
                <th>node</th>
                <th>source</th>
                <th>state</th>
                <th>version</th>
                <th>entries</th>
                <th>batches</th>
                <th>last seen</th>
                <th>counters</th>
              </tr>
            </thead>
            <tbody>
              {model.agents.map((a) => (
                <tr key={a.agent_id}>
                  <td title={a.agent_id}>{a.node}</td>
                  <td>{a.source}</td>
                  <td class={a.connected ? 'ok-text' : 'warn-text'}>{a.connected ? 'connected' : 'disconnected'}</td>
                  <td>{a.version}</td>
                  <td>{count(a.entries)}</td>
                  <td>
                    {count(a.batches)}
                    {a.duplicate_batches ? <span class="muted"> ({a.duplicate_batches} resent)</span> : null}
                  </td>
                  <td title={a.last_seen}>{ago(a.last_seen)}</td>
                  <td class="counters">
                    {Object.entries(a.counters ?? {})
                      .sort(([x], [y]) => x.localeCompare(y))
                      .map(([k, v]) => (
                        <span key={k} class={'counter' + (v > 0 && isLossCounter(a, k) ? ' loss' : '')}>
                          {k} {count(v)}
                        </span>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ) : (
          <p class="muted">No agent has connected to this hub (a capture loaded with `sonde read --serve` has none).</p>
        )}
      </Section>
    </div>
  );
}
