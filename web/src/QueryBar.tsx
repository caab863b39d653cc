// The query bar: CEL validated as you type (the hub compiles it), the error
// underlined at its position, history, examples and the field reference.
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiError } from './api';
import { useModel } from './model';
import { queryHistory } from './query';
import type { FieldInfo } from './types';

const validateDelay = 150;

const examples: [string, string][] = [
  ['http && status_code >= 500', 'server errors over HTTP'],
  ['grpc && grpc_status != "OK"', 'failed gRPC calls'],
  ['elapsed > duration("100ms")', 'slow exchanges'],
  ['redis && redis_command == "GET"', 'Redis reads'],
  ['kafka && kafka_api == "Produce"', 'Kafka produce requests'],
  ['amqp && amqp_method == "basic.publish"', 'AMQP publishes'],
  ['dst.namespace == "payments"', 'traffic to one namespace'],
  ['gap || unmatched != ""', 'exchanges with loss'],
  ['request.headers["content-type"].contains("json")', 'JSON requests'],
];

export interface QueryError {
  message: string;
  /** Code point offset; undefined when the error has no position. */
  position?: number;
}

interface Props {
  /** The input, for the app's keys (/ to focus, Ctrl+Enter to apply). */
  inputRef: { current: HTMLInputElement | null };
}

export function QueryBar({ inputRef }: Props) {
  const model = useModel();
  const draft = model.draft;
  const applied = model.query;
  const [error, setError] = useState<QueryError | null>(null);
  const [checking, setChecking] = useState(false);
  const [panel, setPanel] = useState<'' | 'history' | 'help'>('');
  const mirror = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (!draft.trim()) {
      setError(null);
      return;
    }
    const ac = new AbortController();
    setChecking(true);
    const t = setTimeout(() => {
      api.validate(draft, ac.signal).then(
        () => {
          setError(null);
          setChecking(false);
        },
        (err) => {
          if (err.name === 'AbortError') return;
          setChecking(false);
          setError(err instanceof ApiError ? { message: err.message, position: err.position } : { message: String(err.message ?? err) });
        },
      );
    }, validateDelay);
    return () => {
      clearTimeout(t);
      ac.abort();
    };
  }, [draft]);

  const submit = () => {
    if (error) return;
    setPanel('');
    model.applyQuery(draft.trim());
  };
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      submit();
    } else if (e.key === 'Escape') {
      setPanel('');
      (e.target as HTMLInputElement).blur();
      e.stopPropagation();
    }
  };
  const syncScroll = () => {
    if (mirror.current && inputRef.current) mirror.current.scrollLeft = inputRef.current.scrollLeft;
  };

  // The underline: the code point at the error's position, or a space
  // after the end when the query ended too early.
  const chars = Array.from(draft);
  const pos = error?.position;
  const marked = pos !== undefined && error;
  const dirty = draft.trim() !== applied;

  return (
    <div class="querybar">
      <div class={'q-field' + (error ? ' bad' : '') + (dirty ? ' dirty' : '')}>
        <div class="q-mirror" ref={mirror} aria-hidden="true">
          {marked ? (
            <>
              {chars.slice(0, pos).join('')}
              <span class="q-err" data-pos={pos}>
                {pos < chars.length ? chars[pos] : ' '}
              </span>
              {chars.slice(pos + 1).join('')}
            </>
          ) : (
            draft
          )}
        </div>
        <input
          ref={inputRef}
          class="q-input"
          type="text"
          spellcheck={false}
          autocomplete="off"
          placeholder='Filter with CEL, e.g. http && status_code >= 500   ( / to focus, Enter to apply )'
          aria-label="query"
          aria-invalid={!!error}
          value={draft}
          onInput={(e) => {
            model.setDraft((e.target as HTMLInputElement).value);
            syncScroll();
          }}
          onScroll={syncScroll}
          onKeyUp={syncScroll}
          onKeyDown={onKey}
        />
      </div>
      <button class="primary" onClick={submit} disabled={!!error} title="apply (Enter or Ctrl+Enter)">
        Apply
      </button>
      {(draft || applied) && (
        <button
          onClick={() => model.applyQuery('')}
          title="show everything"
        >
          Clear
        </button>
      )}
      <button class={panel === 'history' ? 'on' : ''} onClick={() => setPanel(panel === 'history' ? '' : 'history')} title="recent queries">
        History
      </button>
      <button class={panel === 'help' ? 'on' : ''} onClick={() => setPanel(panel === 'help' ? '' : 'help')} title="fields and examples">
        Fields
      </button>
      {(error || checking) && (
        <div class={'q-message' + (error ? ' bad' : '')} role="status">
          {error ? (
            <>
              {error.position !== undefined && <span class="muted">at character {error.position}: </span>}
              <span class="q-error-text">{error.message}</span>
            </>
          ) : (
            'checking…'
          )}
        </div>
      )}
      {panel === 'history' && (
        <HistoryPanel
          pick={(q) => {
            setPanel('');
            model.applyQuery(q);
          }}
        />
      )}
      {panel === 'help' && <HelpPanel insert={(q) => model.setDraft(q)} />}
    </div>
  );
}

function HistoryPanel({ pick }: { pick: (q: string) => void }) {
  const h = queryHistory();
  return (
    <div class="q-panel">
      {h.length ? (
        <ul class="q-history">
          {h.map((q) => (
            <li key={q}>
              <button class="link" onClick={() => pick(q)}>
                <code>{q}</code>
              </button>
            </li>
          ))}
        </ul>
      ) : (
        <p class="muted">Queries you apply are remembered here (in this browser).</p>
      )}
    </div>
  );
}

let fieldsCache: Promise<FieldInfo[]> | null = null;

function HelpPanel({ insert }: { insert: (q: string) => void }) {
  const [fields, setFields] = useState<FieldInfo[]>([]);
  const [error, setError] = useState('');
  useEffect(() => {
    fieldsCache ??= api.fields().then((r) => r.fields);
    fieldsCache.then(setFields, (err) => {
      fieldsCache = null;
      setError(err.message);
    });
  }, []);
  return (
    <div class="q-panel help">
      <h3>Examples</h3>
      <ul class="q-examples">
        {examples.map(([q, what]) => (
          <li key={q}>
            <button class="link" onClick={() => insert(q)}>
              <code>{q}</code>
            </button>{' '}
            <span class="muted">{what}</span>
          </li>
        ))}
      </ul>
      <p class="muted">
        Click any value in the list or the detail to add <code>field == value</code> to the query; shift-click to exclude it.
      </p>
      <h3>Fields</h3>
      {error && <p class="err-text">{error}</p>}
      <table class="grid fields">
        <thead>
          <tr>
            <th>field</th>
            <th>type</th>
            <th>meaning</th>
            <th>example</th>
          </tr>
        </thead>
        <tbody>
          {fields.map((f) => (
            <tr key={f.name}>
              <td>
                <code>{f.name}</code>
              </td>
              <td class="muted">{f.type}</td>
              <td>{f.doc}</td>
              <td>
                <button class="link" onClick={() => insert(f.example)}>
                  <code>{f.example}</code>
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
