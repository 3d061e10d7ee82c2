// The harness of lib/rill.mjs works end to end: a 1-node cluster and `rill console` start on
// ports they pick, and Chromium renders the console's first page (screenshot kept as
// tests/artifacts/browser/console-overview.png). Skipped while target/debug/rill has no
// `console` command. The console's feature tests sit beside this file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { launch, screenshot } from './lib/browser.mjs';
import { RILL_BIN, startCluster, startConsole } from './lib/rill.mjs';

const hasConsole = spawnSync(RILL_BIN, ['console', '--help'], { stdio: 'ignore' }).status === 0;

test('console serves its first page to chromium', { skip: !hasConsole && `${RILL_BIN} has no console command` }, async () => {
  const cluster = await startCluster(1);
  let app;
  let browser;
  try {
    app = await startConsole({ bootstrap: cluster.bootstrap });
    browser = await launch();
    const page = await browser.newPage();
    const response = await page.goto(`${app.url}/`, { timeout: 30_000 });
    assert.equal(response.status(), 200);
    assert.match(await page.title(), /\S/, 'the page has a title');
    await screenshot(page, 'console-overview');
  } finally {
    if (browser) await browser.close();
    if (app) await app.stop();
    await cluster.stop();
  }
});
