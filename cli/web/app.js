// Shared by the viewer and creator pages: the session token and calls to the API.
// The token arrives in the URL fragment from the dev sign-in (never sent to a server in a URL)
// and is kept for this tab only.
'use strict';
const Session = (() => {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.get('token')) {
    sessionStorage.setItem('vaultstream.token', fragment.get('token'));
    history.replaceState(null, '', location.pathname);
  }
  const token = sessionStorage.getItem('vaultstream.token');
  let claims = null;
  try { claims = token && JSON.parse(atob(token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))); } catch (_) { claims = null; }
  return { token, claims };
})();

function signInUrl() {
  return `${location.protocol}//localhost${location.port ? ':' + location.port : ''}/`;
}

function showWho() {
  const who = document.getElementById('who');
  if (!Session.claims) {
    who.innerHTML = `<a href="${signInUrl()}">Sign in</a>`;
    return false;
  }
  const expired = Session.claims.exp * 1000 < Date.now();
  who.textContent = `${Session.claims.sub} @ ${Session.claims.tenant} (${Session.claims.scope})${expired ? ' — session expired' : ''} `;
  const out = document.createElement('a');
  out.href = signInUrl(); out.textContent = expired ? 'sign in again' : 'sign out';
  out.onclick = () => sessionStorage.removeItem('vaultstream.token');
  who.append(out);
  return !expired;
}

// Calls the API through this host (a CloudFront behavior routes /v1/* to the API).
async function api(method, path, body, extraHeaders) {
  const headers = Object.assign({ authorization: `Bearer ${Session.token}` }, extraHeaders || {});
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!response.ok) {
    const message = (json && json.error && json.error.message) || (json && json.message) || text || response.statusText;
    const error = new Error(`${response.status}: ${message}`);
    error.status = response.status;
    error.code = json && json.error && json.error.code;
    throw error;
  }
  return json;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') node.className = v; else if (k.startsWith('on')) node[k] = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}
