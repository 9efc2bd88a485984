// CloudFront Function (viewer request): `{label}.cdn.<domain>/{tenant}/...` passes only when the
// key value store maps `label` to `tenant`. Labels are HMACs of tenant ids, so they cannot be
// enumerated. Shared by infra/cdk and infra/terraform.
import cf from 'cloudfront';
const kvs = cf.kvs();
function refuse() {
  return { statusCode: 403, statusDescription: 'Forbidden',
    headers: { 'content-type': { value: 'application/json' }, 'cache-control': { value: 'no-store' } },
    body: { encoding: 'text', data: '{"error":{"code":"wrong_tenant_host","message":"this host does not serve that path"}}' } };
}
async function handler(event) {
  const request = event.request;
  const host = request.headers.host ? request.headers.host.value : '';
  const label = host.split('.')[0];
  const tenant = request.uri.split('/')[1] || '';
  if (!label || !tenant) return refuse();
  let expected = null;
  try { expected = await kvs.get(label); } catch (e) { expected = null; }
  return expected === tenant ? request : refuse();
}
