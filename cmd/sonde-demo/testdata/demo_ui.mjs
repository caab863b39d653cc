// node testdata/demo_ui.mjs URL POD...: opens a running sonde-demo in
// Debian's Chromium and checks that the list shows entries that name the
// lab's pods. Prints "ok - what" or "not ok - why" and exits 1. With
// SONDE_DEMO_SCREENSHOT=FILE it also saves what the page shows.
import { launch } from '../../../web/e2e/browser.mjs';

const [url, ...pods] = process.argv.slice(2);
if (!url || pods.length === 0) {
  console.error('usage: node testdata/demo_ui.mjs URL POD...');
  process.exit(2);
}
const { context, close } = await launch();
try {
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(
    () => window.__sonde?.model.streamState === 'live' && window.__sonde.model.rows.size > 0,
    null,
    { timeout: 20_000 },
  );
  const rows = await page.evaluate(() => window.__sonde.model.rows.size);
  // The pod names must be on the screen, not only in the model.
  await page.waitForFunction((pods) => pods.some((p) => document.body.innerText.includes(p)), pods, { timeout: 10_000 });
  const text = await page.evaluate(() => document.body.innerText);
  const shown = pods.filter((p) => text.includes(p));
  if (errors.length) throw new Error(`page errors: ${errors.join('; ')}`);
  if (process.env.SONDE_DEMO_SCREENSHOT) await page.screenshot({ path: process.env.SONDE_DEMO_SCREENSHOT });
  console.log(`ok - the UI lists ${rows} entries naming ${shown.join(', ')}`);
} catch (err) {
  console.log(`not ok - ${err.message}`);
  process.exitCode = 1;
} finally {
  await close();
}
