// The creator: declare an upload, send the file straight to storage through the presigned URL
// (or its parts, above the multipart threshold) with a progress bar, then follow transcoding.
'use strict';
const uploadsBox = document.getElementById('uploads');
const rows = new Map();
const progressSeen = {};
window.vaultstream = { uploads: rows, progress: progressSeen, listings: 0 }; // what tests read

function row(contentId, title) {
  if (rows.has(contentId)) return rows.get(contentId);
  const bar = el('div');
  const status = el('span', { class: 'status' }, '…');
  const detail = el('span', { class: 'muted' });
  const failure = el('div', { class: 'error' });
  const node = el('div', { class: 'upload', 'data-content-id': contentId },
    el('div', {}, el('strong', {}, title), ' ', status, ' ', detail), el('div', { class: 'bar' }, bar), failure);
  uploadsBox.prepend(node);
  const r = { node, bar, status, detail, failure, contentId, last: null };
  rows.set(contentId, r);
  return r;
}

function show(r, item) {
  if (r.uploading && item.status === 'AWAITING_UPLOAD') return;
  r.last = item;
  r.status.textContent = item.status;
  r.status.className = `status ${item.status}`;
  const progress = item.status === 'READY' || item.status === 'PARTIAL' ? 1 : (item.progress || 0);
  if (item.status !== 'AWAITING_UPLOAD') r.bar.style.width = `${Math.round(progress * 100)}%`;
  r.detail.textContent = item.status === 'PROCESSING' ? `transcoding ${Math.round(progress * 100)} %`
    : item.renditions && item.renditions.length ? item.renditions.map(x => x.name).join(' · ') : '';
  r.failure.textContent = item.failure ? `${item.failure.code}: ${item.failure.message}` : '';
}

function put(url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    for (const [k, v] of Object.entries(headers || {})) if (k.toLowerCase() !== 'content-length') xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = e => e.lengthComputable && onProgress(e.loaded);
    xhr.onload = () => xhr.status >= 200 && xhr.status < 300 ? resolve(xhr) : reject(new Error(`storage answered HTTP ${xhr.status}: ${xhr.responseText.slice(0, 300)}`));
    xhr.onerror = () => reject(new Error('the upload connection failed'));
    xhr.send(body);
  });
}

async function upload(event) {
  event.preventDefault();
  const errorBox = document.getElementById('form-error');
  const button = document.getElementById('upload-button');
  errorBox.textContent = '';
  const file = document.getElementById('file').files[0];
  const title = document.getElementById('title').value.trim();
  if (!file) return;
  button.disabled = true;
  try {
    const grant = await api('POST', '/v1/content/upload', {
      title, filename: file.name, content_type: file.type || 'application/octet-stream', size_bytes: file.size,
    }, { 'idempotency-key': crypto.randomUUID() });
    const r = row(grant.content_id, title);
    r.uploading = true;
    r.status.textContent = 'UPLOADING';
    progressSeen[grant.content_id] = [];
    const progress = sent => {
      const percent = Math.round(sent / file.size * 100);
      progressSeen[grant.content_id].push(percent);
      r.bar.style.width = `${percent}%`;
      r.detail.textContent = `uploading ${percent} %`;
    };
    const u = grant.upload;
    if (u.method === 'PUT') {
      await put(u.url, file, u.headers, progress);
    } else {
      const done = [];
      let sent = 0;
      for (const part of u.parts) {
        const start = (part.part_number - 1) * u.part_size;
        const chunk = file.slice(start, Math.min(start + u.part_size, file.size));
        const xhr = await put(part.url, chunk, {}, loaded => progress(sent + loaded));
        sent += chunk.size;
        done.push({ part_number: part.part_number, etag: xhr.getResponseHeader('ETag') });
      }
      await api('POST', `/v1/content/${grant.content_id}/upload/complete`, { upload_id: u.upload_id, parts: done });
    }
    r.uploading = false;
    r.bar.style.width = '0%';
    r.detail.textContent = 'uploaded; waiting for the transcoder';
    document.getElementById('upload-form').reset();
  } catch (e) {
    errorBox.textContent = `Upload refused: ${e.message}`;
  } finally {
    button.disabled = false;
  }
}

async function refresh() {
  try {
    const page = await api('GET', '/v1/content?limit=48');
    for (const item of page.items.slice().reverse()) show(row(item.content_id, item.title), item);
    window.vaultstream.listings += 1;
  } catch (e) {
    document.getElementById('form-error').textContent = `Cannot list uploads: ${e.message}`;
  }
}

document.getElementById('upload-form').onsubmit = upload;
if (showWho()) { refresh(); setInterval(refresh, 1500); }
else document.getElementById('form-error').textContent = 'Sign in as a creator to upload.';
