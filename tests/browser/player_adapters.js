// Runs in the page: one small interface over each independent player, so a test can ask every
// one of them the same questions (which renditions, which one plays, which caption tracks, what
// went wrong) without the test knowing each player's API.
//
//   const handle = await Players.start('shaka' | 'videojs' | 'hlsjs' | 'dashjs', video, url, options)
//   handle.variants()  [{ id, height, bandwidth, active }]
//   handle.select(id)  play only that rendition from now on (no more ABR)
//   handle.text()      [{ label, language, mode, cues, active: [cue text on screen] }]
//   handle.errors      [{ fatal, code, message }]
//   handle.video       the element that plays (video.js puts its own inside a wrapper)
//
// options: { drm: { 'org.w3.clearkey': licenseUrl } } for encrypted CMAF through EME (Shaka also
//   { clearKeys: { kidHex: keyHex } });
//          { bearer: token, bearerPaths: ['/v1/keys/'] }: requests to those paths carry
//          `Authorization: Bearer token`, the viewer's session proof, as each player allows.
'use strict';
window.Players = (() => {
  function authorization(options, url) {
    if (!options.bearer) return null;
    const path = new URL(url, location.href).pathname;
    return (options.bearerPaths || []).some(p => path.startsWith(p)) ? `Bearer ${options.bearer}` : null;
  }

  function nativeText(video) {
    return [...video.textTracks].filter(t => t.kind === 'subtitles' || t.kind === 'captions').map(t => ({
      label: t.label, language: t.language, mode: t.mode,
      cues: t.cues ? t.cues.length : 0,
      active: t.activeCues ? [...t.activeCues].map(c => c.text) : [],
    }));
  }

  async function shaka(video, url, options) {
    window.shaka.polyfill.installAll();
    const player = new window.shaka.Player();
    await player.attach(video);
    const errors = [];
    player.addEventListener('error', e => errors.push({ fatal: e.detail.severity === 2, code: e.detail.code, message: JSON.stringify(e.detail.data).slice(0, 400) }));
    const config = { streaming: { retryParameters: { maxAttempts: 2 } } };
    if (options.drm) config.drm = { servers: options.drm };
    // Keys given outright (KID hex → key hex): Shaka's ClearKey CDM plays whatever DRM systems
    // the manifest names, as a vendor's CDM would with its licence.
    if (options.clearKeys) config.drm = { ...(config.drm || {}), clearKeys: options.clearKeys };
    player.configure(config);
    player.getNetworkingEngine().registerRequestFilter((type, request) => {
      const value = authorization(options, request.uris[0]);
      if (value) request.headers.Authorization = value;
    });
    try {
      await player.load(url);
    } catch (e) {
      errors.push({ fatal: true, code: e.code, message: JSON.stringify(e.data || e.message || String(e)).slice(0, 400) });
    }
    const textTracks = player.getTextTracks();
    // Shaka 5: selecting a text track shows it (null hides it).
    if (textTracks.length) {
      player.selectTextTrack(textTracks.find(t => t.primary) || textTracks[0]);
    }
    video.play().catch(() => {});
    return {
      version: window.shaka.Player.version, errors,
      variants: () => player.getVariantTracks().map(t => ({ id: t.id, height: t.height, bandwidth: t.bandwidth, active: t.active })),
      select: id => {
        player.configure({ abr: { enabled: false } });
        player.selectVariantTrack(player.getVariantTracks().find(t => t.id === id), true);
      },
      text: () => nativeText(video),
    };
  }

  async function videojs(video, url, options) {
    const errors = [];
    // VHS's global request hook applies to every player it makes from now on.
    window.videojs.Vhs.xhr.onRequest(request => {
      const value = authorization(options, request.uri);
      if (value) request.headers = { ...(request.headers || {}), Authorization: value };
      return request;
    });
    const player = window.videojs(video, { html5: { vhs: { overrideNative: true }, nativeTextTracks: false }, muted: true, autoplay: 'muted' });
    player.on('error', () => {
      const e = player.error();
      errors.push({ fatal: true, code: e && e.code, message: e && e.message });
    });
    const source = { src: url, type: url.includes('.mpd') ? 'application/dash+xml' : 'application/x-mpegURL' };
    // contrib-eme posts each licence request to `url`, with the session proof as a header.
    if (options.drm) {
      source.keySystems = Object.fromEntries(Object.entries(options.drm).map(([k, v]) => {
        const proof = authorization(options, v);
        return [k, proof ? { url: v, licenseHeaders: { Authorization: proof } } : { url: v }];
      }));
    }
    if (options.drm && player.eme) player.eme();
    player.src(source);
    await new Promise(resolve => { player.one('loadedmetadata', resolve); player.one('error', resolve); setTimeout(resolve, 10_000); });
    player.play().catch(() => {});
    const levels = player.qualityLevels();
    const tracks = () => [...Array(player.textTracks().length).keys()].map(i => player.textTracks()[i])
      .filter(t => t.kind === 'subtitles' || t.kind === 'captions');
    const shown = tracks().find(t => t.default) || tracks()[0];
    if (shown) shown.mode = 'showing';
    return {
      version: window.videojs.VERSION, errors, video: player.tech({ IWillNotUseThisInPractice: true }).el(),
      variants: () => [...Array(levels.length).keys()].map(i => levels[i]).map(l => ({
        id: l.id, height: l.height, bandwidth: l.bitrate, active: levels[levels.selectedIndex] === l,
      })),
      // VHS switches (a fast quality change, the buffer ahead dropped) only when a rendition is
      // turned on, to its own pick among those on: turn the others off, then this one off and on.
      select: id => {
        for (let i = 0; i < levels.length; i++) if (levels[i].id !== id) levels[i].enabled = false;
        for (let i = 0; i < levels.length; i++) if (levels[i].id === id) { levels[i].enabled = false; levels[i].enabled = true; }
      },
      text: () => tracks().map(t => ({
        label: t.label, language: t.language, mode: t.mode,
        cues: t.cues ? t.cues.length : 0,
        active: t.activeCues ? [...Array(t.activeCues.length).keys()].map(i => t.activeCues[i].text) : [],
      })),
    };
  }

  async function hlsjs(video, url, options) {
    const errors = [];
    const config = {
      xhrSetup: (xhr, url) => {
        const value = authorization(options, url);
        if (value) { xhr.open('GET', url, true); xhr.setRequestHeader('Authorization', value); }
      },
      licenseXhrSetup: (xhr, url) => {
        const value = authorization(options, url);
        if (value) { xhr.open('POST', url, true); xhr.setRequestHeader('Authorization', value); }
      },
    };
    if (options.drm) {
      config.emeEnabled = true;
      config.drmSystems = Object.fromEntries(Object.entries(options.drm).map(([k, v]) => [k, { licenseUrl: v }]));
      // hls.js starts a ClearKey session from the playlist's key only with init data; the W3C
      // `keyids` form names the KID the playlist's EXT-X-KEY gave.
      if (config.drmSystems['org.w3.clearkey']) {
        config.drmSystems['org.w3.clearkey'].generateRequest = (type, data, context) => {
          const kid = btoa(String.fromCharCode(...context.decryptdata.keyId)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
          return { initDataType: 'keyids', initData: new TextEncoder().encode(JSON.stringify({ kids: [kid] })).buffer };
        };
      }
    }
    if (options.debug) config.debug = true;
    const hls = new window.Hls(config);
    hls.on(window.Hls.Events.ERROR, (_, d) => errors.push({ fatal: d.fatal, code: d.details, message: d.reason || (d.error && String(d.error)) || '' }));
    const parsed = new Promise(resolve => hls.once(window.Hls.Events.MANIFEST_PARSED, resolve));
    hls.loadSource(url);
    hls.attachMedia(video);
    await Promise.race([parsed, new Promise(resolve => setTimeout(resolve, 10_000))]);
    hls.subtitleDisplay = true;
    video.play().catch(() => {});
    return {
      version: window.Hls.version, errors,
      variants: () => hls.levels.map((l, i) => ({ id: i, height: l.height, bandwidth: l.bitrate, active: i === hls.currentLevel })),
      select: id => { hls.currentLevel = id; },
      text: () => nativeText(video),
    };
  }

  async function dashjs(video, url, options) {
    const errors = [];
    const player = window.dashjs.MediaPlayer().create();
    if (options.debug) player.updateSettings({ debug: { logLevel: 5 } });
    player.on(window.dashjs.MediaPlayer.events.ERROR, e => errors.push({ fatal: true, code: e.error && e.error.code, message: e.error && e.error.message }));
    player.addRequestInterceptor(request => {
      const value = authorization(options, request.url);
      if (value) request.headers = { ...(request.headers || {}), Authorization: value };
      return Promise.resolve(request);
    });
    // The MPD names the KID; the init segment's pssh, from the media element's `encrypted`
    // event, is what dash.js would otherwise hand its ClearKey session as `keyids` (and fail).
    if (options.drm) player.updateSettings({ streaming: { protection: { ignoreEmeEncryptedEvent: true } } });
    // Licence requests carry their own headers in dash.js (its request interceptors see media).
    if (options.drm) player.setProtectionData(Object.fromEntries(Object.entries(options.drm).map(([k, v]) => {
      const value = authorization(options, v);
      return [k, value ? { serverURL: v, httpRequestHeaders: { Authorization: value }, withCredentials: false } : { serverURL: v }];
    })));
    const ready = new Promise(resolve => player.on(window.dashjs.MediaPlayer.events.STREAM_INITIALIZED, resolve));
    player.initialize(video, url, true);
    await Promise.race([ready, new Promise(resolve => setTimeout(resolve, 10_000))]);
    const reps = () => player.getRepresentationsByType('video') || [];
    const text = player.getTracksFor('text');
    if (text.length) { player.enableText(true); player.setTextTrack(0); }
    return {
      version: player.getVersion(), errors,
      variants: () => {
        const current = player.getCurrentRepresentationForType('video');
        return reps().map(r => ({ id: r.id, height: r.height, bandwidth: r.bandwidth, active: !!current && current.id === r.id }));
      },
      select: id => {
        player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
        player.setRepresentationForTypeById('video', id, true);
      },
      text: () => nativeText(video),
    };
  }

  const players = { shaka, videojs, hlsjs, dashjs };
  return {
    start(name, video, url, options = {}) {
      video.muted = true;
      return players[name](video, url, options);
    },
  };
})();
