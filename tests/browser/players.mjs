// Plays a title in an independent player (Shaka Player, video.js with VHS, hls.js, dash.js) in
// Debian's headless Chromium, asks it the same questions whichever it is, and prints what it saw
// as JSON: position reached, renditions and the one playing, a switch to another rendition,
// caption tracks and the cue on screen, errors, every response's status.
//
// Usage: node players.mjs SCENARIO.json
//   {"player": "shaka"|"videojs"|"hlsjs"|"dashjs",
//    either the local stack: "viewer_url", "tenant", "content_id" (signs in, asks playback for the grant;
//      "format": "hls" (AES-128) | "cmaf" (CMAF HLS, cbcs, ClearKey) | "dash" picks the grant's URL)
//    or a folder: "root", "master" (served over http://127.0.0.1 with the key files it names;
//      "clearkey": {"kid": hex, "key": hex} answers W3C ClearKey licence requests at /clearkey;
//      "clear_keys": {kid hex: key hex} hands Shaka the keys outright, whatever DRM systems the manifest names),
//    "seconds": position to reach, "switch": true (after 2 s, play only another rendition and
//    wait until its picture is on screen), "until_cue": caption text to wait for, "screenshot": PATH}
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, signIn } from './stack.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const libraries = {
  shaka: 'node_modules/shaka-player/dist/shaka-player.compiled.js',
  // VHS hands encrypted media to EME through videojs-contrib-eme, video.js's own EME plugin.
  videojs: ['node_modules/video.js/dist/video.min.js', 'node_modules/videojs-contrib-eme/dist/videojs-contrib-eme.min.js'],
  hlsjs: 'node_modules/hls.js/dist/hls.min.js',
  dashjs: 'node_modules/dashjs/dist/modern/umd/dash.all.min.js',
};
const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const target = scenario.seconds ?? 5.5;
const library = libraries[scenario.player];
if (!library) throw new Error(`unknown player ${scenario.player}: one of ${Object.keys(libraries).join(', ')}`);

// A folder is served the way a CDN would serve it (the test page lives on the same origin).
function serve(root, clearkey) {
  const types = { '.m3u8': 'application/vnd.apple.mpegurl', '.mpd': 'application/dash+xml', '.ts': 'video/mp2t',
    '.m4s': 'video/iso.segment', '.mp4': 'video/mp4', '.vtt': 'text/vtt', '.html': 'text/html' };
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (url === '/') { res.writeHead(200, { 'content-type': 'text/html' }); return res.end('<!doctype html><title>players</title><body></body>'); }
    if (url === '/clearkey' && clearkey) {
      // The W3C ClearKey licence exchange: {"kids": [...]} in, a JSON Web Key set out.
      const chunks = [];
      req.on('data', c => chunks.push(c));
      req.on('end', () => {
        const asked = JSON.parse(Buffer.concat(chunks).toString()).kids ?? [];
        const kid = Buffer.from(clearkey.kid, 'hex').toString('base64url');
        const keys = asked.filter(k => k.replace(/=+$/, '') === kid).map(k => ({ kty: 'oct', kid: k, k: Buffer.from(clearkey.key, 'hex').toString('base64url') }));
        result.licence_requests = (result.licence_requests ?? 0) + 1;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ keys, type: 'temporary' }));
      });
      return;
    }
    const file = path.resolve(root, '.' + url);
    if (!file.startsWith(path.resolve(root) + path.sep) || !fs.existsSync(file) || !fs.statSync(file).isFile()) { res.writeHead(404); return res.end(); }
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// The players are test tools loaded into the page for this run, not part of the product's page,
// whose content security policy allows only its own scripts.
const browser = await launch({ bypassCSP: true });
const result = { player: scenario.player, responses: [], console: [], heights_seen: [] };
let server;
let folderDrm;
try {
  const page = await browser.context.newPage();
  page.on('console', m => result.console.push(`${m.type()}: ${m.text()}`.slice(0, 300)));
  page.on('response', r => {
    const url = r.url();
    if (/\/v1\/|\/clearkey|\.(ts|m4s|mp4|m3u8|mpd|vtt|key|c0)(\?|$)/.test(url) || url.includes('/k')) result.responses.push({ url: url.split('?')[0], status: r.status() });
  });
  let url;
  if (scenario.root) {
    server = await serve(scenario.root, scenario.clearkey);
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    url = `http://127.0.0.1:${server.address().port}/${scenario.master}`;
    folderDrm = scenario.clearkey ? { 'org.w3.clearkey': `http://127.0.0.1:${server.address().port}/clearkey` } : undefined;
  } else {
    result.signed_in_at = await signIn(page, scenario);
  }
  for (const script of [library].flat()) await page.addScriptTag({ path: path.join(here, script) });
  if (scenario.player === 'videojs') await page.addStyleTag({ path: path.join(here, 'node_modules/video.js/dist/video-js.min.css') });
  await page.addScriptTag({ path: path.join(here, 'player_adapters.js') });
  if (scenario.debug) await page.evaluate(() => { window.PLAYER_DEBUG = true; });
  result.drm = await page.evaluate(async ({ name, url, contentId, format, folderDrm, clearKeys }) => {
    document.body.querySelectorAll('main, header').forEach(n => { n.hidden = true; });
    const video = document.createElement('video');
    video.id = 'probe'; video.controls = true; video.style.width = '960px';
    document.body.append(video);
    let drm = folderDrm;
    let session = {};
    if (!url) {
      // The viewer page's own grant: signed cookies for this host and session-bound URLs.
      const grant = await window.grant(contentId);
      window.playbackGrant = grant;
      url = { hls: grant.manifest_url, cmaf: grant.cmaf_manifest_url, dash: grant.dash_url }[format];
      // Shaka Player reads no ClearKey key format in HLS: it takes the `identity` key URL.
      if (format === 'cmaf' && name === 'shaka') url += '&keyformat=identity';
      if (format !== 'hls') drm = { 'org.w3.clearkey': grant.drm.clearkey.license_url };
      // Key and licence requests prove the viewer's session with its bearer token, as the
      // viewer page's own player does.
      session = { bearer: Session.token, bearerPaths: ['/v1/keys/', '/v1/licenses/'] };
    }
    window.probe = await window.Players.start(name, video, url, { drm, clearKeys, ...session, debug: window.PLAYER_DEBUG });
    return drm ?? null;
  }, { name: scenario.player, url, contentId: scenario.content_id, format: scenario.format ?? 'hls', folderDrm, clearKeys: scenario.clear_keys });

  const deadline = Date.now() + (scenario.timeout_ms ?? 45_000);
  for (;;) {
    const state = await page.evaluate(() => {
      const p = window.probe;
      const v = p.video || document.getElementById('probe');
      const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
      return { current_time: v.currentTime, width: v.videoWidth, height: v.videoHeight, decoded_frames: q.totalVideoFrames ?? 0,
        ended: v.ended, paused: v.paused, ready_state: v.readyState,
        buffered: [...Array(v.buffered.length).keys()].map(i => [v.buffered.start(i), v.buffered.end(i)]), version: p.version, variants: p.variants(), text: p.text(), errors: p.errors };
    });
    Object.assign(result, state);
    // `start_at`: a seek once the player knows the title's length, to play across a given time.
    if (scenario.start_at !== undefined && result.sought_to === undefined && state.ready_state >= 1) {
      await page.evaluate(t => { (window.probe.video || document.getElementById('probe')).currentTime = t; }, scenario.start_at);
      result.sought_to = scenario.start_at;
      result.decoded_at_seek = state.decoded_frames;
    }
    if (state.height && result.heights_seen.at(-1) !== state.height) result.heights_seen.push(state.height);
    if (scenario.switch && !result.switched_to && state.current_time >= 2 && state.variants.length > 1) {
      const other = state.variants.find(v => v.height !== state.height);
      result.switched_to = other.height;
      result.switched_at = state.current_time;
      await page.evaluate(id => window.probe.select(id), other.id);
    }
    const fatal = state.errors.some(e => e.fatal);
    const switched = !scenario.switch || (result.switched_to && state.height === result.switched_to);
    const cue = !scenario.until_cue || state.text.some(t => t.active.includes(scenario.until_cue));
    if (result.saw_cue === undefined || !result.saw_cue) result.saw_cue = scenario.until_cue ? cue : undefined;
    if ((state.current_time >= target && switched && (result.saw_cue ?? true)) || state.ended || fatal || Date.now() > deadline) break;
    await new Promise(r => setTimeout(r, 250));
  }
  if (scenario.screenshot) await page.screenshot({ path: scenario.screenshot });
} catch (e) {
  result.exception = String(e && e.stack || e);
} finally {
  await browser.close();
  if (server) server.close();
}
console.log(JSON.stringify(result));
