// What the scripts that drive the local stack's pages share: Chromium launched with the flags
// the project's rules name, the dev sign-in as a person fills it in, and a loopback fetch for
// requests a script intercepts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required'];

/// Headless Chromium with a fresh profile; `close()` closes it and removes the profile.
export async function launch(options = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultstream-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: CHROMIUM_ARGS,
    ...options,
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

/// Signs in through the dev sign-in form; resolves once the tenant's viewer (or creator) page
/// has loaded. Returns the tenant host signed in at.
export async function signIn(page, { viewer_url, tenant, user, role }) {
  await page.goto(viewer_url);
  await page.fill('input[name=tenant]', tenant);
  await page.fill('input[name=user]', user ?? 'ada');
  await page.selectOption('select[name=role]', role ?? 'viewer');
  await Promise.all([page.waitForURL(/cdn\.localhost/), page.click('button[type=submit]')]);
  return new URL(page.url()).host;
}

// Playwright's own fetch resolves names in Node, which (unlike Chromium) does not map
// *.localhost to loopback: send intercepted requests to 127.0.0.1 with their Host header.
export function loopbackFetch(request) {
  const url = new URL(request.url());
  const headers = { ...request.headers(), host: url.host };
  const body = request.postDataBuffer();
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: url.port || 80, path: url.pathname + url.search, method: request.method(), headers }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: { ...res.headers }, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
