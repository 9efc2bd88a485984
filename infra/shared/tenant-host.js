// CloudFront Function (viewer request): `{label}.cdn.<domain>/{tenant}/...` passes only when the
// key value store maps `label` to `tenant`. Labels are HMACs of tenant ids, so they cannot be
// enumerated. A URI that could name something outside the signed prefix once decoded (a `.` or
// `..` segment, `//`, a backslash, a percent-encoded dot, slash or backslash) is refused first.
// Shared by infra/cdk and infra/terraform; the local stack's edge runs the same rules
// (shared/src/cdn/tenant_host.rs), held to this file by infra/shared/tenant-host-cases.json.
import cf from 'cloudfront';
const kvs = cf.kvs();
function refuse(status, code, message) {
  return { statusCode: status, statusDescription: status === 400 ? 'Bad Request' : 'Forbidden',
    headers: { 'content-type': { value: 'application/json' }, 'cache-control': { value: 'no-store' } },
    body: { encoding: 'text', data: JSON.stringify({ error: { code: code, message: message } }) } };
}
function cleanUri(uri) {
  if (uri.charAt(0) !== '/' || uri.indexOf('//') !== -1 || uri.indexOf('\\') !== -1) return false;
  if (/%(2e|2f|5c|00)/i.test(uri)) return false;
  const segments = uri.split('/');
  for (let i = 1; i < segments.length; i++) {
    if (segments[i] === '.' || segments[i] === '..') return false;
  }
  return true;
}
async function handler(event) {
  const request = event.request;
  if (!cleanUri(request.uri)) return refuse(400, 'bad_path', "the path has '.', '..' or empty segments, a backslash or an encoded separator");
  const host = request.headers.host ? request.headers.host.value : '';
  const label = host.split('.')[0];
  const tenant = request.uri.split('/')[1] || '';
  if (!label || !tenant) return refuse(403, 'wrong_tenant_host', 'this host does not serve that path');
  let expected = null;
  try { expected = await kvs.get(label); } catch (e) { expected = null; }
  return expected === tenant ? request : refuse(403, 'wrong_tenant_host', 'this host does not serve that path');
}
