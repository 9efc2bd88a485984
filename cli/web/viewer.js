// The viewer: the tenant's titles with status and poster; a chosen title plays with hls.js.
// Playback returns CloudFront signed cookies (set on this host) and a personalised manifest URL;
// segments come from this host with those cookies, keys from the API with the signed key URL and
// the viewer's bearer token.
'use strict';
const state = { hls: null, playing: null, keysFetched: new Set(), errors: [] };
window.vaultstream = state; // what tests read

// Transient failures are retried; a refusal (401, 403, 404: no session, expired or foreign
// cookies, another tenant's title) is final at once, so the viewer sees why instead of a spinner.
function policy(firstByteMs, loadMs) {
  const refused = response => response && [401, 403, 404].includes(response.code);
  return { default: {
    maxTimeToFirstByteMs: firstByteMs, maxLoadTimeMs: loadMs,
    timeoutRetry: { maxNumRetry: 2, retryDelayMs: 0, maxRetryDelayMs: 0 },
    errorRetry: { maxNumRetry: 4, retryDelayMs: 1000, maxRetryDelayMs: 8000,
      shouldRetry: (config, count, timeout, response, retry) => retry && !refused(response) },
  } };
}

// One grant per title at a time: the poster and the player asking at once would each set a
// CloudFront-Policy and -Signature cookie pair, and a request sent between the two could carry
// one cookie of each pair (a signature that does not match its policy).
const grants = new Map();
function grant(contentId) {
  const held = grants.get(contentId);
  if (held && held.until > Date.now()) return held.promise;
  const promise = api('POST', `/v1/content/${encodeURIComponent(contentId)}/playback`);
  grants.set(contentId, { promise, until: Date.now() + 60_000 });
  promise.catch(() => grants.delete(contentId));
  return promise;
}

async function listTitles() {
  const box = document.getElementById('titles');
  let page;
  try {
    page = await api('GET', '/v1/content?limit=48');
  } catch (e) {
    document.getElementById('list-error').textContent = `Cannot list titles: ${e.message}`;
    return;
  }
  box.replaceChildren();
  if (!page.items.length) box.append(el('p', { class: 'muted' }, 'No titles yet. Upload one on the Upload page.'));
  for (const item of page.items) {
    const playable = item.status === 'READY' || item.status === 'PARTIAL';
    const poster = el('div', { class: 'poster' }, playable ? '' : (item.status === 'PROCESSING' ? `transcoding ${Math.round((item.progress || 0) * 100)} %` : item.status.toLowerCase()));
    const card = el('div', { class: `card${playable ? ' playable' : ''}`, 'data-content-id': item.content_id },
      poster,
      el('div', { class: 'meta' }, el('div', { class: 'title', title: item.title }, item.title), el('span', { class: `status ${item.status}` }, item.status),
        item.failure ? el('div', { class: 'error' }, item.failure.message) : ''));
    if (playable) {
      card.onclick = () => play(item);
      // The poster is private content too: it loads with this title's signed cookies.
      if (item.poster) {
        grant(item.content_id).then(() => {
          poster.style.backgroundImage = `url("/${Session.claims.tenant}/${item.content_id}/${item.poster}")`;
        }).catch(() => {});
      }
    }
    box.append(card);
  }
}

async function play(item) {
  const stage = document.getElementById('stage');
  const errorBox = document.getElementById('player-error');
  errorBox.textContent = '';
  stage.hidden = false;
  document.getElementById('now-playing').textContent = item.title;
  let playback;
  try {
    playback = await grant(item.content_id);
  } catch (e) {
    errorBox.textContent = `Playback refused: ${e.message}`;
    state.errors.push({ fatal: true, details: 'playback_refused', status: e.status });
    return;
  }
  if (state.hls) state.hls.destroy();
  state.playing = item.content_id;
  state.keysFetched = new Set();
  state.errors = [];
  const video = document.getElementById('video');
  // Playlists and keys come from the API (another origin, CORS); segments from this host, with
  // the cookies playback just set. A key URL alone opens nothing: each key request carries the
  // viewer's session as its bearer token.
  // CMAF (cbcs) plays through EME with the ClearKey CDM: hls.js asks the licence server, with
  // the viewer's bearer token, for the KID the playlist names.
  const cmaf = document.getElementById('packaging').value === 'cmaf' && playback.cmaf_manifest_url;
  const config = {
    fragLoadPolicy: policy(10000, 120000), keyLoadPolicy: policy(8000, 20000), playlistLoadPolicy: policy(10000, 20000),
    xhrSetup: (xhr, url) => {
      if (new URL(url, location.href).pathname.startsWith('/v1/keys/')) {
        xhr.open('GET', url, true);
        xhr.setRequestHeader('Authorization', `Bearer ${Session.token}`);
      }
    },
  };
  if (cmaf) {
    config.emeEnabled = true;
    config.drmSystems = { 'org.w3.clearkey': {
      licenseUrl: playback.drm.clearkey.license_url,
      generateRequest: (type, data, context) => {
        const kid = btoa(String.fromCharCode(...context.decryptdata.keyId)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
        return { initDataType: 'keyids', initData: new TextEncoder().encode(JSON.stringify({ kids: [kid] })).buffer };
      },
    } };
    config.licenseXhrSetup = (xhr, url) => {
      xhr.open('POST', url, true);
      xhr.setRequestHeader('Authorization', `Bearer ${Session.token}`);
    };
  }
  state.packaging = cmaf ? 'cmaf' : 'hls';
  const hls = new Hls(config);
  state.hls = hls;
  hls.on(Hls.Events.KEY_LOADED, (_, data) => state.keysFetched.add((data.frag && data.frag.level) ?? -1));
  hls.on(Hls.Events.ERROR, (_, data) => {
    state.errors.push({ fatal: data.fatal, type: data.type, details: data.details, status: data.response && data.response.code });
    if (data.fatal) errorBox.textContent = `Playback failed: ${data.details}${data.response && data.response.code ? ` (HTTP ${data.response.code})` : ''}`;
  });
  hls.on(Hls.Events.MANIFEST_PARSED, (_, data) => {
    const select = document.getElementById('quality');
    select.replaceChildren(el('option', { value: '-1' }, 'Auto'));
    data.levels.forEach((level, i) => select.append(el('option', { value: String(i) }, `${level.height}p · ${Math.round(level.bitrate / 1000)} kbit/s`)));
    select.onchange = () => { hls.currentLevel = Number(select.value); };
    video.muted = true;
    video.play().catch(() => {});
  });
  // Caption tracks: hls.js picks the title's default one; the menu switches or turns them off.
  hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, (_, data) => {
    const select = document.getElementById('captions');
    select.replaceChildren(el('option', { value: '-1' }, 'Off'));
    data.subtitleTracks.forEach((track, i) => select.append(el('option', { value: String(i) }, `${track.name} (${track.lang})`)));
    select.value = String(hls.subtitleTrack);
    select.onchange = () => {
      hls.subtitleTrack = Number(select.value);
      hls.subtitleDisplay = hls.subtitleTrack >= 0;
    };
  });
  hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, (_, data) => { document.getElementById('captions').value = String(data.id); });
  hls.on(Hls.Events.LEVEL_SWITCHED, (_, data) => {
    const level = hls.levels[data.level];
    document.getElementById('level-info').textContent = level ? `playing ${level.height}p` : '';
  });
  hls.loadSource(cmaf ? playback.cmaf_manifest_url : playback.manifest_url);
  hls.attachMedia(video);
}

// Switching the packaging replays the title from the start in the other one.
document.getElementById('packaging').onchange = () => { if (state.playing) play({ content_id: state.playing, title: document.getElementById('now-playing').textContent }); };

if (showWho()) listTitles();
else document.getElementById('list-error').textContent = 'Sign in to see your titles.';
setInterval(() => { if (Session.claims && !document.hidden && !state.playing) listTitles(); }, 5000);
