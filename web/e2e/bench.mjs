// Measurements for the note: node e2e/bench.mjs HUB_URL ROWS
//
// With the hub holding many entries (bench_test.go loads them): the time from
// applying a query to its history being on screen (the app's own
// performance measure 'sonde:query'), then, with ROWS rows in this
// browser's list, the frame rate while scrolling and the time to render
// after a jump. Prints one JSON line.
import { launch } from './browser.mjs';

const [hub, rowsArg] = process.argv.slice(2);
const rows = Number(rowsArg);
if (!hub || !(rows > 0)) {
  console.error('usage: node e2e/bench.mjs HUB_URL ROWS');
  process.exit(2);
}
const wait = { timeout: 120_000 };
const queries = ['', 'redis', 'status == "404"', 'elapsed > duration("100ms")', 'amqp && amqp_method == "basic.publish"'];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const { context, close } = await launch();
const page = await context.newPage();
await page.goto(hub);
await page.waitForFunction(() => window.__sonde.model.streamState === 'live', null, wait);

const result = { browser_rows: rows, queries: [] };
for (const q of queries) {
  const times = [];
  let held = 0;
  for (let i = 0; i < 3; i++) {
    await page.fill('.q-input', q);
    await page.waitForSelector('.q-field:not(.bad)');
    await page.evaluate(() => performance.clearMeasures('sonde:query'));
    await page.press('.q-input', 'Enter');
    await page.waitForFunction(() => performance.getEntriesByName('sonde:query').length > 0, null, wait);
    times.push(await page.evaluate(() => performance.getEntriesByName('sonde:query')[0].duration));
    held = await page.evaluate(() => window.__sonde.model.rows.size);
  }
  result.queries.push({ q, apply_ms: Math.round(median(times)), rows: held });
}

// Fill the list to ROWS rows from a page of real entries, as the stream
// would (IDs keep ascending).
await page.fill('.q-input', '');
await page.press('.q-input', 'Enter');
await page.waitForFunction(() => window.__sonde.model.streamState === 'live', null, wait);
Object.assign(
  result,
  await page.evaluate(async (n) => {
    const { model } = window.__sonde;
    const page = await (await fetch('/api/v1/entries?limit=1000')).json();
    model.setPaused(false);
    model.setFollow(false);
    let fill = 0;
    model.replaceRows((rows) => {
      const t0 = performance.now();
      for (let i = 0; i < n; i++) {
        const e = page.entries[i % page.entries.length];
        rows.push({ ...e, id: String(i + 1) });
      }
      fill = performance.now() - t0;
    });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return { fill_ms: Math.round(fill), heap_mb: Math.round((performance.memory?.usedJSHeapSize ?? 0) / 1e6) };
  }, rows),
);

// Scroll: three rows further every frame for four seconds (a steady
// flick), and record the frame intervals.
Object.assign(
  result,
  await page.evaluate(async () => {
    const el = document.querySelector('.list-scroll');
    el.scrollTop = 0;
    const max = el.scrollHeight - el.clientHeight;
    const realMax = window.__sonde.model.rows.size * 24 - el.clientHeight;
    const perFrame = (3 * 24 * max) / realMax;
    const frames = [];
    await new Promise((done) => {
      let last = 0;
      let start = 0;
      const step = (t) => {
        if (!start) start = t;
        if (last) frames.push(t - last);
        last = t;
        el.scrollTop = Math.min(max, el.scrollTop + perFrame);
        if (t - start < 4000) requestAnimationFrame(step);
        else done();
      };
      requestAnimationFrame(step);
    });
    const sorted = [...frames].sort((a, b) => a - b);
    const secs = frames.reduce((a, b) => a + b, 0) / 1000;
    // Jumps: anywhere in the list, time until the frame after the render.
    const jumps = [];
    for (let i = 0; i < 60; i++) {
      const t0 = performance.now();
      el.scrollTop = Math.random() * max;
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      jumps.push(performance.now() - t0);
    }
    jumps.sort((a, b) => a - b);
    return {
      scroll_fps: Math.round((frames.length / secs) * 10) / 10,
      frame_p95_ms: Math.round(sorted[Math.floor(sorted.length * 0.95)] * 10) / 10,
      frames_over_33ms: frames.filter((f) => f > 33.4).length,
      frames: frames.length,
      jump_p50_ms: Math.round(jumps[jumps.length >> 1] * 10) / 10,
      jump_p95_ms: Math.round(jumps[Math.floor(jumps.length * 0.95)] * 10) / 10,
      dom_rows: document.querySelectorAll('.list-scroll .row').length,
    };
  }),
);
// The machine's load, since other work on it slows the browser down.
result.load_average = (await import('node:os')).loadavg().map((x) => Math.round(x * 10) / 10);
console.log(JSON.stringify(result));
await close();
