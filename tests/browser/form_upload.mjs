// Submits a file through a plain HTML form (no script on the page) built from an upload grant's
// `"upload":{"method":"POST","url","fields"}`, in Debian's headless Chromium (playwright-core),
// and prints what the form's target answered as JSON: {status, url, body}.
//
// Usage: node form_upload.mjs SCENARIO_JSON_FILE
//   scenario: {"url", "fields": {name: value}, "file": path, "screenshot"?: path}
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const escape = s => String(s).replace(/[&<>"']/g, c => `&#${c.charCodeAt(0)};`);
// The file input comes last: S3 ignores every field after it.
const page = `<!doctype html><title>Upload</title>
<form id="upload" method="post" enctype="multipart/form-data" action="${escape(scenario.url)}">
${Object.entries(scenario.fields).map(([n, v]) => `<input type="hidden" name="${escape(n)}" value="${escape(v)}">`).join('\n')}
<label>Video file <input type="file" name="file"></label>
<button type="submit">Upload</button>
</form>`;

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/html' });
  res.end(page);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultstream-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let outcome;
try {
  const tab = await context.newPage();
  await tab.goto(`http://127.0.0.1:${server.address().port}/`);
  await tab.setInputFiles('input[type=file]', scenario.file);
  if (scenario.screenshot) await tab.screenshot({ path: scenario.screenshot });
  const [response] = await Promise.all([
    tab.waitForResponse(r => r.request().method() === 'POST', { timeout: 60_000 }),
    tab.click('button[type=submit]'),
  ]);
  outcome = { status: response.status(), url: response.url(), body: await response.text().catch(() => '') };
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(outcome));
