// Shared helpers for the console's browser tests: Debian's Chromium driven by
// playwright-core (never a downloaded browser), screenshots kept as test artifacts.
//
//   import { launch, screenshot } from './lib/browser.mjs';
//   const browser = await launch();
//   const page = await browser.newPage();
//   await page.goto(url);
//   await screenshot(page, 'topics-created');
//   await browser.close();

import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const ARTIFACTS = path.join(REPO_ROOT, 'tests', 'artifacts', 'browser');

/** Debian's chromium: $CHROMIUM_PATH, else /usr/bin/chromium. */
export function chromiumPath() {
  const p = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (!existsSync(p)) {
    throw new Error(`${p} not found: apt-get install chromium (scripts/test.sh does)`);
  }
  return p;
}

// Headless as root on a machine with no network but loopback: no sandbox (root), and no
// background networking (its connections are refused here, and slow every start).
export const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--disable-extensions',
];

/** Launches a fresh headless Chromium (new empty profile each time). */
export async function launch(options = {}) {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
    ...options,
  });
}

/** Saves a full-page PNG as tests/artifacts/browser/<name>.png and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
