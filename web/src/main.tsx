// The application shell: header, query bar, loss banners and the four views.
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api } from './api';
import { Detail } from './Detail';
import { count, dateTime } from './format';
import { List } from './List';
import { Model, ModelContext, useModel, type View } from './model';
import { QueryBar } from './QueryBar';
import { ServiceMap } from './ServiceMap';
import { StatsView } from './StatsView';
import { StatusView } from './StatusView';
import './style.css';

const views: [View, string][] = [
  ['list', 'Traffic'],
  ['map', 'Service map'],
  ['stats', 'Stats'],
  ['status', 'Status'],
];
const windows = ['5m', '15m', '1h', '6h', '24h'];

type Theme = 'light' | 'dark';
const themeKey = 'sonde.theme';

function initialTheme(): Theme {
  const saved = localStorage.getItem(themeKey);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

function isTyping(t: EventTarget | null): boolean {
  const el = t as HTMLElement | null;
  return !!el && (el.tagName === 'INPUT' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}

function App() {
  const model = useModel();
  // The theme and the stats window are this component's own: nothing else
  // writes them, and the views that need the window get it as a prop.
  const [theme, setTheme] = useState<Theme>(initialTheme);
  const [window_, setWindow] = useState('15m');
  const inputRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    document.documentElement.dataset.theme = theme;
  }, [theme]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key === 'Enter') {
        e.preventDefault();
        model.applyQuery(inputRef.current?.value.trim() ?? model.draft);
        return;
      }
      if (isTyping(e.target) || e.ctrlKey || e.metaKey || e.altKey) return;
      if (e.key === '/') {
        e.preventDefault();
        inputRef.current?.focus();
        inputRef.current?.select();
      } else if (e.key === 'Escape') {
        model.select('');
      } else if (model.view === 'list' && (e.key === 'j' || e.key === 'ArrowDown')) {
        e.preventDefault();
        model.move(1);
      } else if (model.view === 'list' && (e.key === 'k' || e.key === 'ArrowUp')) {
        e.preventDefault();
        model.move(-1);
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [model]);

  const view = model.view;
  const selectedId = model.selectedId;
  const rows = model.rows;
  const h = model.hub;
  const losses = model.losses;
  const live = model.streamState === 'live';
  return (
    <div class="app">
      <header class="top">
        <div class="brand">
          <svg viewBox="0 0 16 16" width="18" height="18" aria-hidden="true">
            <circle cx="8" cy="8" r="6.5" fill="none" stroke="currentColor" stroke-width="2" />
            <circle cx="8" cy="8" r="2.5" fill="currentColor" />
          </svg>
          Sonde
        </div>
        <nav class="views">
          {views.map(([v, label]) => (
            <button key={v} class={v === view ? 'on' : ''} aria-current={v === view ? 'page' : undefined} onClick={() => model.show(v)}>
              {label}
            </button>
          ))}
        </nav>
        <div class="top-right">
          <span class={`stream-state s-${model.streamState}`} title={model.streamError || 'the live stream from the hub'}>
            <span class="dot" />
            {model.paused ? 'paused' : model.streamState}
          </span>
          <span class="muted rows-count">{count(rows.size)} rows</span>
          {view === 'list' && (
            <>
              <button onClick={() => model.setPaused(!model.paused)} class={model.paused ? 'on' : ''} title="stop or resume showing new entries (they are kept)">
                {model.paused ? `Resume${rows.hi > model.pausedHi ? ` (+${count(rows.hi - model.pausedHi)})` : ''}` : 'Pause'}
              </button>
              <button onClick={() => model.setFollow(!model.follow)} class={model.follow ? 'on' : ''} title="keep the newest entry in view">
                Follow
              </button>
            </>
          )}
          {(view === 'map' || view === 'stats') && (
            <select value={window_} onChange={(e) => setWindow((e.target as HTMLSelectElement).value)} aria-label="window">
              {windows.map((w) => (
                <option key={w} value={w}>
                  last {w}
                </option>
              ))}
            </select>
          )}
          <a class="button" href={api.harURL(model.query)} download="sonde.har" title="HTTP entries of the current query as HAR 1.2">
            Export HAR
          </a>
          <button
            onClick={() => {
              const t = theme === 'dark' ? 'light' : 'dark';
              localStorage.setItem(themeKey, t);
              setTheme(t);
            }}
            title="light or dark theme"
            aria-label="toggle theme"
          >
            {theme === 'dark' ? '☀' : '☾'}
          </button>
        </div>
      </header>
      <QueryBar inputRef={inputRef} />
      {(losses.length > 0 || (h && h.evicted > 0 && h.history_start)) && (
        <div class="banners">
          {losses.map((l) => (
            <div key={l} class="banner loss" role="alert">
              {l}
            </div>
          ))}
          {h && h.evicted > 0 && h.history_start && (
            <div class="banner info">
              History starts at {dateTime(Date.parse(h.history_start))}: the hub evicted {count(h.evicted)} older entries to stay under its storage limit.
            </div>
          )}
        </div>
      )}
      {model.streamState === 'failed' && view === 'list' && <div class="banner loss">{model.streamError}</div>}
      <main class={'main view-' + view}>
        {view === 'list' && (
          <>
            <List selected={model.selectedPos} />
            {selectedId && <Detail id={selectedId} onClose={() => model.select('')} />}
          </>
        )}
        {view === 'map' && <ServiceMap query={model.query} window={window_} />}
        {view === 'stats' && <StatsView query={model.query} window={window_} />}
        {view === 'status' && <StatusView />}
      </main>
      <footer class="foot muted">
        <span>
          <kbd>/</kbd> query · <kbd>Enter</kbd> or <kbd>Ctrl</kbd>+<kbd>Enter</kbd> apply · <kbd>j</kbd>/<kbd>k</kbd> move · <kbd>Esc</kbd> close · click a value to filter, shift-click to exclude
        </span>
        <span>{live && h ? `${count(h.stored)} stored in the hub` : ''}</span>
      </footer>
    </div>
  );
}

const model = new Model();
// A handle for the browser tests and benchmarks (web/e2e).
(window as any).__sonde = { model };
model.start();

render(
  <ModelContext.Provider value={model}>
    <App />
  </ModelContext.Provider>,
  document.getElementById('app')!,
);
