// The viewer-request CloudFront Function itself (infra/shared/tenant-host.js), run on the case
// table the local edge's Rust rule is tested with, so the two cannot drift apart.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';

const SHARED = path.resolve(__dirname, '..', '..', '..', 'shared');

interface Case { uri: string; answer: string }

/** The function with CloudFront's `cloudfront` module stood in by a key value store of one label. */
function loadHandler(store: Record<string, string>): (event: unknown) => Promise<any> {
  const source = fs.readFileSync(path.join(SHARED, 'tenant-host.js'), 'utf8');
  const body = source.replace(/^import cf from 'cloudfront';$/m, '');
  assert.notEqual(body, source, 'the function imports the cloudfront module');
  const cf = {
    kvs: () => ({
      get: async (key: string) => {
        if (!(key in store)) throw new Error(`${key} not found`);
        return store[key];
      },
    }),
  };
  return new Function('cf', `${body}\nreturn handler;`)(cf);
}

test('the tenant-host function answers every case of the shared table', async () => {
  const table: { cases: Case[] } = JSON.parse(fs.readFileSync(path.join(SHARED, 'tenant-host-cases.json'), 'utf8'));
  const handler = loadHandler({ labelofacme: 'acme' });
  assert.ok(table.cases.length > 10);
  for (const { uri, answer } of table.cases) {
    const request = { uri, headers: { host: { value: 'labelofacme.cdn.example.com' } } };
    const result = await handler({ request });
    const got = result === request ? 'pass' : JSON.parse(result.body.data).error.code;
    assert.equal(got, answer, uri);
    if (got === 'bad_path') assert.equal(result.statusCode, 400, uri);
    if (got === 'wrong_tenant_host') assert.equal(result.statusCode, 403, uri);
  }
  // An unknown label is refused too.
  const stranger = await handler({ request: { uri: '/acme/m/v1/master.m3u8', headers: { host: { value: 'nobody.cdn.example.com' } } } });
  assert.equal(stranger.statusCode, 403);
});
