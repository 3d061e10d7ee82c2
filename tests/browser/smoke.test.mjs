// The browser tool chain works: Debian's chromium starts under playwright-core, loads a
// page from a loopback server, runs its script, takes a click and a screenshot.
// The console's own browser tests sit beside this file and use lib/browser.mjs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { existsSync } from 'node:fs';
import { launch, screenshot } from './lib/browser.mjs';

const PAGE = `<!doctype html><html><head><title>rill smoke</title></head><body>
<button id="b" onclick="document.getElementById('out').textContent = 'clicked ' + (++window.n)">go</button>
<p id="out">idle</p><script>window.n = 0</script></body></html>`;

test('chromium loads a loopback page, clicks and screenshots', async () => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  const browser = await launch();
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${port}/`, { timeout: 30_000 });
    assert.equal(await page.title(), 'rill smoke');
    await page.click('#b');
    await page.click('#b');
    assert.equal(await page.textContent('#out'), 'clicked 2');
    const file = await screenshot(page, 'smoke');
    assert.ok(existsSync(file), `${file} written`);
  } finally {
    await browser.close();
    server.close();
  }
});
