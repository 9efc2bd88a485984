// Drives the local stack's pages in Debian's headless Chromium (playwright-core) as a person
// would: signs in through the dev sign-in form, opens the viewer, plays a title with hls.js, and
// prints what happened as JSON. Chromium resolves *.localhost to loopback by itself.
//
// Usage: node viewer.mjs SCENARIO.json
//   {"viewer_url", "tenant", "user", "role": "viewer"|"creator", "content_id",
//    "mode": "play" | "strip-cookies" | "cookies": [...] (expired ones, set before playing) |
//            "swap-key" (with "other_content_id": the key URLs name that title instead),
//    "seconds": position to reach ("until_cue": also wait until this caption text is on screen), "screenshot": PATH, "upload": PATH (creator: file to upload),
//    "title": upload title, "packaging": "hls" | "cmaf" (the viewer's packaging menu)}
import fs from 'node:fs';
import { launch, loopbackFetch, signIn } from './stack.mjs';

const scenario = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const target = scenario.seconds ?? 3;
const browser = await launch();
const context = browser.context;
const result = { responses: [], console: [] };
try {
  const page = await context.newPage();
  page.on('console', m => result.console.push(`${m.type()}: ${m.text()}`));
  page.on('response', r => {
    const url = r.url();
    if (url.includes('/v1/') || url.includes('.ts') || url.includes('.m3u8') || url.includes('.vtt') || url.includes('.m4s')) result.responses.push({ url: url.split('?')[0], status: r.status() });
  });
  if (scenario.mode === 'strip-cookies' || scenario.cookies) {
    // Playback's Set-Cookie is dropped: the page has no cookies, or only the ones given here.
    await page.route('**/v1/content/*/playback', async route => {
      const response = await loopbackFetch(route.request());
      delete response.headers['set-cookie'];
      await route.fulfill(response);
    });
  }
  if (scenario.cookies) await context.addCookies(scenario.cookies);
  if (scenario.mode === 'swap-key') {
    await page.route('**/index.m3u8*', async route => {
      const response = await route.fetch();
      // The key URL names another title; the token stays the one minted for this title.
      const body = (await response.text()).replaceAll(`/v1/keys/${scenario.content_id}/`, `/v1/keys/${scenario.other_content_id}/`);
      await route.fulfill({ response, body });
    });
  }

  // Sign in as a person would.
  result.signed_in_at = await signIn(page, scenario);

  if (scenario.upload) {
    // The uploads already there, once the page has listed them (not a guess at how long that takes).
    await page.waitForFunction(() => window.vaultstream && window.vaultstream.listings > 0, null, { timeout: 20_000 });
    const before = new Set(await page.$$eval('.upload', nodes => nodes.map(n => n.dataset.contentId)));
    await page.fill('#title', scenario.title ?? 'Browser upload');
    await page.setInputFiles('#file', scenario.upload);
    await page.click('#upload-button');
    const deadline = Date.now() + (scenario.timeout_ms ?? 120_000);
    for (;;) {
      const rows = await page.$$eval('.upload', nodes => nodes.map(n => ({
        content_id: n.dataset.contentId, status: n.querySelector('.status').textContent,
        failure: n.querySelector('.error').textContent, bar: n.querySelector('.bar > div').style.width,
      })));
      result.uploads = rows;
      result.upload = rows.find(r => !before.has(r.content_id)) ?? null;
      result.form_error = await page.textContent('#form-error');
      const done = result.upload && ['READY', 'PARTIAL', 'FAILED', 'FAILED_INVALID'].includes(result.upload.status);
      if (done || result.form_error || Date.now() > deadline) break;
      await new Promise(r => setTimeout(r, 250));
    }
    result.upload_progress = result.upload ? await page.evaluate(id => window.vaultstream.progress[id] ?? [], result.upload.content_id) : [];
    if (scenario.screenshot) await page.screenshot({ path: scenario.screenshot });
  } else {
    // Wait for the list, then play the title (by clicking its card when it is listed).
    await page.waitForSelector('#titles .card, #titles p, #list-error:not(:empty)', { timeout: 20_000 });
    result.listed = await page.$$eval('#titles .card', cards => cards.map(c => c.dataset.contentId));
    const card = await page.$(`#titles .card[data-content-id="${scenario.content_id}"]`);
    if (card) await card.click();
    else await page.evaluate(id => play({ content_id: id, title: 'by id' }), scenario.content_id);
    // The packaging menu, as a person switches it once the title plays (it replays the title).
    if (scenario.packaging) await page.selectOption('#packaging', scenario.packaging);
    const deadline = Date.now() + 30_000;
    for (;;) {
      const state = await page.evaluate(() => {
        const v = document.getElementById('video');
        const s = window.vaultstream;
        return {
          current_time: v.currentTime, width: v.videoWidth, height: v.videoHeight,
          levels: s.hls ? s.hls.levels.map(l => l.height) : [], keys_fetched: s.keysFetched ? [...s.keysFetched] : [],
          errors: s.errors, packaging: s.packaging, player_error: document.getElementById('player-error').textContent,
          quality_options: [...document.querySelectorAll('#quality option')].map(o => o.textContent),
          caption_options: [...document.querySelectorAll('#captions option')].map(o => o.textContent),
          subtitle_tracks: s.hls ? s.hls.subtitleTracks.map(t => ({ name: t.name, lang: t.lang, default: t.default, forced: t.forced })) : [],
          subtitle_track: s.hls ? s.hls.subtitleTrack : -1,
          // What the browser has of the showing text track: every cue and the ones on screen now.
          text_tracks: [...v.textTracks].map(t => ({
            label: t.label, language: t.language, mode: t.mode,
            cues: t.cues ? [...t.cues].map(c => ({ start: c.startTime, end: c.endTime, text: c.text })) : [],
            active: t.activeCues ? [...t.activeCues].map(c => c.text) : [],
          })),
        };
      });
      Object.assign(result, state);
      const fatal = state.errors.some(e => e.fatal);
      const cueShown = !scenario.until_cue || state.text_tracks.some(t => t.active.includes(scenario.until_cue));
      if ((state.current_time >= target && cueShown) || fatal || Date.now() > deadline) break;
      if (state.current_time >= 1 && scenario.all_levels && state.levels.length) {
        // Step through every rung so each rendition's key is fetched, as a quality change does.
        const next = state.levels.findIndex((_, i) => !state.keys_fetched.includes(i));
        if (next >= 0) await page.evaluate(i => { window.vaultstream.hls.currentLevel = i; }, next);
      }
      await new Promise(r => setTimeout(r, 250));
    }
    if (scenario.screenshot) await page.screenshot({ path: scenario.screenshot });
  }
} catch (e) {
  result.exception = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
