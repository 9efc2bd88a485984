// Plays an HLS master playlist with hls.js in Debian's headless Chromium (playwright-core) and
// prints what the player saw as JSON: position reached, picture size, frames decoded, errors.
//
// Usage: node play.mjs ROOT MASTER [SECONDS]
//   ROOT    folder served over http://127.0.0.1 (must contain MASTER and the key files it names)
//   MASTER  master playlist path relative to ROOT
//   SECONDS playback position to reach (default 4)
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const [root, master, secondsArg] = process.argv.slice(2);
if (!root || !master) {
  console.error('usage: node play.mjs ROOT MASTER [SECONDS]');
  process.exit(2);
}
const target = Number(secondsArg ?? 4);
const here = path.dirname(fileURLToPath(import.meta.url));
const hlsJs = path.join(here, 'node_modules', 'hls.js', 'dist', 'hls.min.js');
const types = {
  '.m3u8': 'application/vnd.apple.mpegurl', '.ts': 'video/mp2t', '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4', '.js': 'text/javascript', '.html': 'text/html',
};
const page = `<!doctype html><video id="v" muted playsinline></video>
<script src="/hls.js"></script><script>
window.result = { errors: [], levels: [] };
const v = document.getElementById('v');
const hls = new Hls();
hls.on(Hls.Events.ERROR, (_, d) => result.errors.push({ type: d.type, details: d.details, fatal: d.fatal, reason: d.reason ?? (d.error && String(d.error)) }));
hls.on(Hls.Events.MANIFEST_PARSED, (_, d) => { result.levels = d.levels.map(l => l.height); v.play(); });
hls.loadSource('/media/${encodeURI(master)}');
hls.attachMedia(v);
</script>`;

const server = http.createServer((req, res) => {
  const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  let file;
  if (url === '/') { res.writeHead(200, { 'content-type': 'text/html' }); return res.end(page); }
  if (url === '/hls.js') file = hlsJs;
  else if (url.startsWith('/media/')) {
    file = path.resolve(root, '.' + url.slice('/media'.length));
    if (!file.startsWith(path.resolve(root) + path.sep)) { res.writeHead(403); return res.end(); }
  }
  if (!file || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404); return res.end(); }
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const origin = `http://127.0.0.1:${server.address().port}`;

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultstream-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required'],
});
let outcome;
try {
  const tab = await context.newPage();
  await tab.goto(origin + '/');
  const deadline = Date.now() + 20_000;
  for (;;) {
    outcome = await tab.evaluate(() => {
      const v = document.getElementById('v');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      return {
        current_time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
        decoded_frames: q.totalVideoFrames ?? 0, ended: v.ended,
        levels: window.result.levels, errors: window.result.errors,
      };
    });
    const fatal = outcome.errors.some(e => e.fatal);
    if (outcome.current_time >= target || outcome.ended || fatal || Date.now() > deadline) break;
    await new Promise(r => setTimeout(r, 250));
  }
} finally {
  await context.close();
  server.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(outcome));
