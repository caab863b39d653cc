// The browser tests: node e2e/run.mjs HUB_URL CONTROL_URL SCREENSHOT_DIR
//
// HUB_URL is a hub filled from real captures (see e2e_test.go); CONTROL_URL
// lets this script ask the Go test to stream live entries in, report loss
// from an agent, or burst entries past this browser's stream queue. Each
// check prints "ok - what"; the first failure prints "not ok - what: why"
// and exits 1.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { launch } from './browser.mjs';

const [hub, control, shots] = process.argv.slice(2);
if (!hub || !control || !shots) {
  console.error('usage: node e2e/run.mjs HUB_URL CONTROL_URL SCREENSHOT_DIR');
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
// Generous: CI runs other packages' tests beside this one on two cores.
const wait = { timeout: 45_000 };

async function getJSON(url, init) {
  const res = await fetch(url, init);
  const body = await res.json();
  if (!res.ok) throw new Error(`${url}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}
const ctl = (what) => getJSON(`${control}/${what}`, { method: 'POST' });
/** How many stored entries match q, from the REST API. */
async function hubCount(q) {
  let n = 0;
  let before = '';
  for (;;) {
    const p = await getJSON(`${hub}/api/v1/entries?limit=1000&q=${encodeURIComponent(q)}${before ? '&before=' + before : ''}`);
    n += p.entries.length;
    if (!p.next) return n;
    before = p.next;
  }
}

const expect = await getJSON(`${control}/expect`);
const { context, close } = await launch();
let page = await context.newPage();
const errors = [];
const watch = (p) => {
  p.on('pageerror', (e) => errors.push(String(e)));
  // A 400 is how the hub answers the bad query the tests type on purpose.
  p.on('console', (m) => m.type() === 'error' && !m.text().includes('status of 400') && errors.push(m.text()));
};
watch(page);

let step = '';
async function check(what, fn) {
  step = what;
  await fn();
  console.log(`ok - ${what}`);
}
const rowsHeld = (p = page) => p.evaluate(() => window.__sonde.model.rows.size);
const query = (p = page) => p.evaluate(() => window.__sonde.model.query);
async function waitRows(n, p = page) {
  try {
    // The model holds the rows before the list renders them (a frame
    // later): wait for both, or a check of the list reads the old one.
    await p.waitForFunction(
      (n) => {
        const m = window.__sonde.model;
        const list = document.querySelector('.list');
        const shown = !list || m.paused || list.getAttribute('aria-rowcount') === String(m.shownHi - m.rows.lo);
        return m.rows.size === n && m.streamState === 'live' && shown;
      },
      n,
      wait,
    );
  } catch (err) {
    const m = await p.evaluate(() => {
      const r = window.__sonde.model.rows;
      const ids = [];
      for (let i = r.lo; i < r.hi; i++) ids.push(r.idAt(i));
      return { rows: r.size, state: window.__sonde.model.streamState, q: window.__sonde.model.query, ids: ids.join(',') };
    });
    throw new Error(`waiting for ${n} rows: ${JSON.stringify(m)}: ${err.message}`);
  }
}
/** applyQuery types q, applies it, and waits until the list holds what the hub has for it. */
async function applyQuery(q) {
  await page.fill('.q-input', q);
  await page.waitForSelector('.q-field:not(.bad)', wait);
  await page.press('.q-input', 'Enter');
  await page.waitForFunction((q) => window.__sonde.model.query === q && window.__sonde.model.streamState === 'live', q, wait);
  await waitRows(await hubCount(q));
}
/** clickInView clicks the first value matching selector and text that is
 * wholly in the list's view (a virtual list reuses rows as it scrolls, so
 * letting the driver scroll an element into view would move the target). */
async function clickInView(selector, text, modifiers = []) {
  // The list renders a frame after its model changes: look once two frames
  // have passed, and only at a value that is what the mouse would hit.
  const box = await page.evaluate(
    ([selector, text]) =>
      new Promise((resolve) =>
        requestAnimationFrame(() =>
          requestAnimationFrame(() => {
            const view = document.querySelector('.list-scroll').getBoundingClientRect();
            for (const el of document.querySelectorAll(selector)) {
              const r = el.getBoundingClientRect();
              const x = r.x + r.width / 2, y = r.y + r.height / 2;
              if (el.textContent === text && r.top >= view.top && r.bottom <= view.bottom && el.contains(document.elementFromPoint(x, y))) {
                return resolve({ x, y });
              }
            }
            resolve(null);
          }),
        ),
      ),
    [selector, text],
  );
  assert.ok(box, `no ${text} in view`);
  for (const m of modifiers) await page.keyboard.down(m);
  await page.mouse.click(box.x, box.y);
  for (const m of modifiers) await page.keyboard.up(m);
}
const shot = (name) => page.screenshot({ path: join(shots, name) });

try {
  await check('the list fills with the stored entries', async () => {
    await page.goto(hub);
    const total = await hubCount('');
    assert.ok(total > 20, `the hub holds only ${total} entries`);
    await waitRows(total);
    const protos = await page.$$eval('.list-scroll .badge', (els) => [...new Set(els.map((e) => e.textContent))]);
    assert.ok(protos.length >= 1, 'no protocol badge in view');
  });

  await check('live entries stream in and the list follows the tail', async () => {
    const before = await rowsHeld();
    await ctl('live?n=30');
    await waitRows(before + 30);
    const newest = (await getJSON(`${hub}/api/v1/entries?limit=1`)).entries[0].id;
    await page.waitForFunction(
      (id) => [...document.querySelectorAll('.list-scroll .row[data-id]')].pop()?.dataset.id === id,
      newest,
      wait,
    );
    await shot('traffic.png');
  });

  await check('pause holds the list still while entries keep arriving; resume shows them', async () => {
    const before = await rowsHeld();
    await page.click('button:has-text("Pause")');
    await ctl('live?n=5');
    await waitRows(before + 5);
    const shown = await page.evaluate(() => window.__sonde.model.shownHi - window.__sonde.model.rows.lo);
    assert.equal(shown, before);
    await page.click('button:has-text("Resume (+5)")');
    await page.waitForFunction((n) => window.__sonde.model.shownHi - window.__sonde.model.rows.lo === n, before + 5, wait);
  });

  await check('a query narrows the list', async () => {
    const all = await rowsHeld();
    await applyQuery('redis');
    const want = await hubCount('redis');
    await waitRows(want);
    assert.ok(want > 0 && want < all, `redis matches ${want} of ${all}`);
    const badges = await page.$$eval('.list-scroll .badge', (els) => [...new Set(els.map((e) => e.textContent))]);
    assert.deepEqual(badges, ['Redis']);
    assert.equal(new URL(page.url()).searchParams.get('q'), 'redis');
  });

  await check('a bad query shows its error at the right place', async () => {
    const { q, position, message } = expect.bad_query;
    await page.fill('.q-input', q);
    const err = await page.waitForSelector('.q-err', wait);
    assert.equal(Number(await err.getAttribute('data-pos')), position);
    assert.equal(await err.textContent(), Array.from(q)[position] ?? ' ');
    const shown = await page.textContent('.q-message');
    assert.ok(shown.includes(message), `message ${JSON.stringify(shown)} lacks ${JSON.stringify(message)}`);
    assert.ok(await page.isDisabled('.querybar button.primary'));
    await shot('query-error.png');
    await page.fill('.q-input', 'redis');
  });

  await check('clicking a status value adds it to the query', async () => {
    await applyQuery('http1');
    await clickInView('.list-scroll .c-status .v', '404');
    await page.waitForFunction(() => window.__sonde.model.query === 'http1 && status == "404"', null, wait);
    const want = await hubCount('http1 && status == "404"');
    await waitRows(want);
    const statuses = await page.$$eval('.list-scroll .c-status', (els) => [...new Set(els.map((e) => e.textContent))]);
    assert.deepEqual(statuses, ['404']);
    assert.equal(await page.inputValue('.q-input'), 'http1 && status == "404"');
  });

  await check('the HAR export holds the current query', async () => {
    const href = await page.getAttribute('a:has-text("Export HAR")', 'href');
    assert.equal(new URL(href, hub).searchParams.get('q'), 'http1 && status == "404"');
    const har = await getJSON(new URL(href, hub).href);
    assert.equal(har.log.entries.length, await hubCount('http1 && status == "404"'));
    assert.ok(har.log.entries.every((e) => e.response.status === 404));
  });

  await check('shift-click excludes a value', async () => {
    await applyQuery('http1');
    await clickInView('.list-scroll .c-method .v', 'GET', ['Shift']);
    await page.waitForFunction(() => window.__sonde.model.query === 'http1 && method != "GET"', null, wait);
    await waitRows(await hubCount('http1 && method != "GET"'));
    const methods = await page.$$eval('.list-scroll .c-method', (els) => els.map((e) => e.textContent));
    assert.ok(methods.length > 0 && !methods.includes('GET'), methods.join(','));
  });

  for (const d of expect.details) {
    await check(`the detail of a ${d.protocol} entry shows its fields`, async () => {
      const q = `protocol == "${d.protocol}"`;
      await page.goto(`${hub}/?q=${encodeURIComponent(q)}&id=${d.id}`);
      await page.waitForSelector(`.detail[data-entry="${d.id}"]`, wait);
      for (const c of d.clauses) {
        const n = await page.locator(`.detail [data-clause="${c.replace(/["\\]/g, '\\$&')}"]`).count();
        assert.ok(n > 0, `no value for ${c} in the detail`);
      }
      const text = await page.textContent('.detail');
      for (const s of d.texts ?? []) assert.ok(text.includes(s), `the detail lacks ${JSON.stringify(s)}`);
      await shot(`detail-${d.protocol}.png`);
      if (d.protocol === 'http1') {
        await page.click('.detail button:has-text("copy as curl")');
        const clip = await page.evaluate(() => navigator.clipboard.readText());
        assert.ok(clip.startsWith('curl ') && clip.includes(d.curl), `curl: ${clip}`);
        await page.click('.detail .tabs button:has-text("Timing & connection")');
        await page.waitForSelector(`.detail [data-clause="dst.port == ${d.dst_port}"]`, wait);
      }
    });
  }

  await check('the URL reproduces the view', async () => {
    await page.goto(hub);
    await waitRows(await hubCount(''));
    await applyQuery('http1 || redis');
    await clickInView('.list-scroll .c-time', await page.evaluate(() => document.querySelectorAll('.list-scroll .c-time')[3].textContent));
    const id = await page.getAttribute('.list-scroll .row.sel', 'data-id');
    await page.waitForSelector(`.detail[data-entry="${id}"]`, wait);
    const url = page.url();
    const rows = await rowsHeld();
    const other = await context.newPage();
    watch(other);
    await other.goto(url);
    await waitRows(rows, other);
    assert.equal(await query(other), 'http1 || redis');
    assert.equal(await other.inputValue('.q-input'), 'http1 || redis');
    await other.waitForSelector(`.detail[data-entry="${id}"]`, wait);
    assert.equal(await other.getAttribute('.list-scroll .row.sel', 'data-id'), id);
    await other.close();
  });

  await check('the keyboard: / focuses, Ctrl+Enter applies, j/k move, Esc closes', async () => {
    await page.goto(hub);
    await waitRows(await hubCount(''));
    await page.keyboard.press('/');
    assert.ok(await page.evaluate(() => document.activeElement?.classList.contains('q-input')));
    await page.keyboard.type('http1');
    await page.keyboard.press('Control+Enter');
    await page.waitForFunction(() => window.__sonde.model.query === 'http1' && window.__sonde.model.streamState === 'live', null, wait);
    await page.evaluate(() => document.activeElement.blur()); // leave the input, as a user would
    const ids = await page.evaluate(() => {
      const r = window.__sonde.model.rows;
      return [String(r.idAt(r.lo)), String(r.idAt(r.lo + 1))];
    });
    await page.keyboard.press('j');
    await page.waitForSelector(`.detail[data-entry="${ids[0]}"]`, wait);
    await page.keyboard.press('j');
    await page.waitForSelector(`.detail[data-entry="${ids[1]}"]`, wait);
    await page.keyboard.press('k');
    await page.waitForSelector(`.detail[data-entry="${ids[0]}"]`, wait);
    await page.keyboard.press('Escape');
    await page.waitForSelector('.detail', { state: 'detached', ...wait });
  });

  await check('the service map draws the live traffic and filters on click', async () => {
    await page.goto(`${hub}/?view=map`);
    await page.waitForSelector('svg [data-node]', wait);
    const nodes = await page.$$eval('svg [data-node]', (els) => els.map((e) => e.dataset.node));
    for (const n of expect.map_nodes) assert.ok(nodes.includes(n), `no node ${n} in ${nodes}`);
    await shot('service-map.png');
    await page.locator('svg .edge[data-protocol="redis"] .edge-label').first().click();
    await page.waitForFunction(() => window.__sonde.model.query.includes('protocol == "redis"'), null, wait);
    assert.equal(new URL(page.url()).searchParams.get('view'), null);
    await waitRows(await hubCount(await query()));
    assert.ok((await rowsHeld()) > 0);
  });

  await check('stats show rates, status classes and latency', async () => {
    await page.goto(`${hub}/?view=stats`);
    await page.waitForSelector('.cards .card', wait);
    await page.waitForSelector('.chart path.rate-total', wait);
    const classes = await page.$$eval('rect.bar', (els) => els.length);
    assert.ok(classes > 0);
    await shot('stats.png');
  });

  await check('the loss banner appears when an agent reports drops', async () => {
    await page.goto(`${hub}/?view=status`);
    await page.waitForSelector('.agents td', wait);
    assert.equal(await page.locator('.banner.loss').count(), 0);
    await ctl('loss');
    const banner = await page.waitForSelector('.banner.loss', { timeout: 30_000 });
    const text = await banner.textContent();
    assert.ok(text.includes(expect.loss_counter), text);
    await page.waitForSelector('.counter.loss', wait);
    await shot('status.png');
  });

  await check('the loss banner appears when this browser falls behind the stream', async () => {
    await page.goto(hub);
    await page.waitForFunction(() => window.__sonde.model.streamState === 'live', null, wait);
    await ctl('burst?n=3000');
    const banner = await page.waitForSelector('.banner.loss:has-text("This browser missed")', wait);
    assert.match(await banner.textContent(), /missed [\d,]+ entries/);
    const lost = await page.evaluate(() => window.__sonde.model.lost);
    assert.ok(lost > 0);
    const marked = await page.evaluate(() => {
      const r = window.__sonde.model.rows;
      let n = 0;
      for (let p = r.lo; p < r.hi; p++) if (r.flagsAt(p) & 64) n += r.get(p).reqSize;
      return n;
    });
    assert.equal(marked, lost, 'the list marks where entries were lost');
  });

  await check('scrolling up loads older entries', async () => {
    await page.goto(hub);
    await page.waitForFunction(() => window.__sonde.model.streamState === 'live', null, wait);
    const total = await hubCount('');
    const held = await rowsHeld();
    assert.ok(held < total, `the history already holds all ${total} entries`);
    await page.evaluate(() => window.__sonde.model.setFollow(false));
    // Setting scrollTop to where it already is fires no scroll event, and the
    // event comes a frame later: send one, then wait for the page it asks for.
    for (let i = 0; i < 10 && (await rowsHeld()) < total; i++) {
      const before = await rowsHeld();
      await page.evaluate(() => {
        const el = document.querySelector('.list-scroll');
        el.scrollTop = 0;
        el.dispatchEvent(new Event('scroll'));
      });
      await page.waitForFunction((n) => window.__sonde.model.rows.size > n || window.__sonde.model.olderDone, before, wait);
    }
    assert.equal(await rowsHeld(), total);
    const ids = await page.evaluate(() => {
      const r = window.__sonde.model.rows;
      for (let p = r.lo + 1; p < r.hi; p++) if (!(r.flagsAt(p) & 64) && r.idAt(p) <= r.idAt(p - 1)) return `out of order at ${p}`;
      return 'ascending';
    });
    assert.equal(ids, 'ascending');
  });

  await check('the dark theme', async () => {
    await page.goto(hub);
    await page.waitForFunction(() => window.__sonde.model.streamState === 'live', null, wait);
    await page.click('button[aria-label="toggle theme"]');
    // The page sets the attribute once it has rendered the new theme.
    await page.waitForFunction(() => document.documentElement.dataset.theme === 'dark', null, wait);
    await clickInView('.list-scroll .c-time', await page.evaluate(() => document.querySelectorAll('.list-scroll .c-time')[4].textContent));
    await page.waitForSelector('.detail[data-entry]', wait);
    await shot('traffic-dark.png');
    await page.click('button[aria-label="toggle theme"]');
  });

  assert.deepEqual(errors, [], 'the page logged errors');
  console.log('ok - no errors in the page');
} catch (err) {
  console.log(`not ok - ${step}: ${err.message}`);
  if (errors.length) console.log(`page errors:\n${errors.join('\n')}`);
  try {
    await page.screenshot({ path: join(shots, 'failure.png') });
  } catch {}
  await close();
  process.exit(1);
}
await close();
