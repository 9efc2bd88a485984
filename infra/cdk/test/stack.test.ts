// Assertions on the synthesized template: the properties the security model depends on.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { App, Aspects } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { loadContract } from '../lib/contract';
import { justifyFindings } from '../lib/nag';
import { DEFAULT_LAMBDA_DIR, VaultStreamStack } from '../lib/vaultstream-stack';

const contract = loadContract();

/** The real cargo lambda output when it exists; otherwise stand-in zips (the template is the same). */
function lambdaDir(): string {
  if (Object.keys(contract.functions).every((f) => fs.existsSync(path.join(DEFAULT_LAMBDA_DIR, f, 'bootstrap.zip')))) return DEFAULT_LAMBDA_DIR;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vaultstream-lambda-'));
  for (const f of Object.keys(contract.functions)) {
    fs.mkdirSync(path.join(dir, f));
    fs.writeFileSync(path.join(dir, f, 'bootstrap.zip'), 'stand-in');
  }
  return dir;
}

const app = new App();
const stack = new VaultStreamStack(app, 'VaultStream', { prefix: 'vaultstream', lambdaDir: lambdaDir(), env: { region: 'us-east-1' } });
justifyFindings(stack);
Aspects.of(app).add(new AwsSolutionsChecks());
const template = Template.fromStack(stack);
const resources = template.toJSON().Resources as Record<string, { Type: string; Properties: any }>;
const ofType = (type: string) => Object.entries(resources).filter(([, r]) => r.Type === type);
const statementsOf = (doc: any): any[] => doc.Statement;
const actionsOf = (s: any): string[] => [].concat(s.Action);
const ledgerId = ofType('AWS::DynamoDB::Table').find(([, r]) => JSON.stringify(r.Properties.TableName).includes('-audit'))![0];

test('cdk-nag AwsSolutions: no unsuppressed errors or warnings', () => {
  const errors = Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'));
  const warnings = Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'));
  assert.deepEqual([...errors, ...warnings].map((e) => `${e.id}: ${e.entry.data}`), []);
});

test('the ledger table: deletion protection, PITR, stream to the archive, rewrites denied to everyone', () => {
  const table = resources[ledgerId].Properties;
  assert.equal(table.DeletionProtectionEnabled, true);
  assert.equal(table.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled, true);
  assert.ok(table.KinesisStreamSpecification.StreamArn);
  const deny = statementsOf(table.ResourcePolicy.PolicyDocument).find((s) => s.Effect === 'Deny');
  assert.deepEqual(deny.Principal, { AWS: '*' });
  assert.deepEqual([...actionsOf(deny)].sort(), [...contract.ledger_denied_actions].sort());
  template.hasResourceProperties('AWS::KinesisFirehose::DeliveryStream', { DeliveryStreamType: 'KinesisStreamAsSource' });
});

test('no identity policy grants a ledger rewrite or a wildcard action on the ledger or a key', () => {
  const keyIds = ofType('AWS::KMS::Key').map(([id]) => id);
  for (const [id, policy] of ofType('AWS::IAM::Policy')) {
    for (const s of statementsOf(policy.Properties.PolicyDocument)) {
      const resources = JSON.stringify(s.Resource);
      for (const action of actionsOf(s)) {
        assert.ok(!action.includes('*'), `${id} grants ${action}`);
        if (resources.includes(ledgerId)) assert.ok(!contract.ledger_denied_actions.includes(action), `${id} grants ${action} on the ledger`);
      }
      if (keyIds.some((k) => resources.includes(k))) assert.ok(actionsOf(s).every((a) => a.startsWith('kms:')), `${id}`);
    }
  }
  for (const [id, key] of ofType('AWS::KMS::Key')) {
    for (const s of statementsOf(key.Properties.KeyPolicy)) {
      for (const action of actionsOf(s)) assert.ok(!action.includes('*'), `key ${id} policy grants ${action}`);
    }
  }
});

test('content keys: only the transcoder generates (and reuses), only key delivery and the transcoder decrypt, bound to the encryption context', () => {
  const content = ofType('AWS::KMS::Key').find(([, k]) => k.Properties.Description.startsWith('VaultStream content keys'))![1];
  const usage = statementsOf(content.Properties.KeyPolicy).filter((s) => s.Sid !== 'KeyAdministration');
  assert.deepEqual(usage.map((s) => [s.Sid, actionsOf(s)]), [
    ['TranscoderGeneratesAndReusesContentKeys', ['kms:Decrypt', 'kms:GenerateDataKey']],
    ['KeyDeliveryDecryptsContentKeys', ['kms:Decrypt']],
  ]);
  for (const s of usage) {
    assert.deepEqual(s.Condition['ForAllValues:StringEquals']['kms:EncryptionContextKeys'], contract.kms_encryption_context_keys);
    assert.deepEqual(Object.keys(s.Condition.Null).sort(), ['kms:EncryptionContext:content_id', 'kms:EncryptionContext:tenant']);
  }
  const admin = statementsOf(content.Properties.KeyPolicy).find((s) => s.Sid === 'KeyAdministration');
  assert.ok(!actionsOf(admin).some((a) => ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:Encrypt'].includes(a)), 'administrators must not use the key');
});

test('transcode jobs act for one tenant: the job role only assumes the tenant role with a tenant tag, and every tenant-role grant is bounded by it', () => {
  const tag = `\${aws:PrincipalTag/${contract.transcoder.tenant_session_tag}}`;
  const [tenantRoleId, tenantRole] = ofType('AWS::IAM::Role').find(([id]) => id.startsWith('TranscoderTenantRole'))!;
  const jobRoleId = ofType('AWS::IAM::Role').find(([id]) => id.startsWith('TranscoderRole'))![0];
  const [trust] = statementsOf(tenantRole.Properties.AssumeRolePolicyDocument);
  assert.deepEqual(trust.Principal, { AWS: { 'Fn::GetAtt': [jobRoleId, 'Arn'] } });
  assert.deepEqual(actionsOf(trust).sort(), ['sts:AssumeRole', 'sts:TagSession']);
  assert.equal(trust.Condition.StringLike[`aws:RequestTag/${contract.transcoder.tenant_session_tag}`], '?*', 'a session without the tag is refused');
  assert.deepEqual(trust.Condition['ForAllValues:StringEquals']['aws:TagKeys'], [contract.transcoder.tenant_session_tag]);
  assert.equal(tenantRole.Properties.MaxSessionDuration, 3600);

  const policyOf = (roleId: string) => ofType('AWS::IAM::Policy').filter(([, p]) => JSON.stringify(p.Properties.Roles).includes(roleId)).flatMap(([, p]) => statementsOf(p.Properties.PolicyDocument));
  const job = policyOf(jobRoleId);
  // Besides the tenant role, only the DRM vendor's SPEKE API the deployment names (a parameter).
  assert.deepEqual(job.map((s) => [actionsOf(s).sort(), s.Resource]), [
    [['sts:AssumeRole', 'sts:TagSession'], { 'Fn::GetAtt': [tenantRoleId, 'Arn'] }],
    [['execute-api:Invoke'], { Ref: contract.drm.key_provider.api_arn.cdk_parameter }],
  ], 'the job role reaches no data itself');
  // The attacker: a job for tenant "a" asks for tenant "b"'s source, origin, records, chains and keys.
  // Each grant must name the session's tag in what it reaches (the origin key only works through
  // S3, on objects the tenant-bounded s3:PutObject allows).
  for (const s of policyOf(tenantRoleId)) {
    const bounded = JSON.stringify(s.Resource).includes(tag) || JSON.stringify(s.Condition ?? {}).includes(tag);
    const throughS3 = s.Condition?.StringEquals?.['kms:ViaService'] !== undefined;
    assert.ok(bounded || throughS3, `${s.Sid} is not bounded by the tenant tag: ${JSON.stringify(s)}`);
  }
  const content = ofType('AWS::KMS::Key').find(([, k]) => k.Properties.Description.startsWith('VaultStream content keys'))![1];
  const generate = statementsOf(content.Properties.KeyPolicy).find((s) => s.Sid === 'TranscoderGeneratesAndReusesContentKeys');
  assert.deepEqual(generate.Principal, { AWS: { 'Fn::GetAtt': [tenantRoleId, 'Arn'] } });
  assert.equal(generate.Condition.StringEquals[`kms:EncryptionContext:${contract.transcoder.tenant_session_tag}`], tag, "only the session's own tenant's keys");
});

test('buckets: private, versioned, TLS-only; source events are ObjectCreated:*; the archive is Object Lock compliance and never expires', () => {
  for (const [id, b] of ofType('AWS::S3::Bucket')) {
    assert.deepEqual(b.Properties.PublicAccessBlockConfiguration, { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true }, id);
    assert.equal(b.Properties.VersioningConfiguration.Status, 'Enabled', id);
  }
  for (const [id, p] of ofType('AWS::S3::BucketPolicy')) {
    assert.ok(JSON.stringify(p.Properties.PolicyDocument).includes('aws:SecureTransport'), id);
  }
  template.hasResourceProperties('AWS::S3::Bucket', { NotificationConfiguration: { QueueConfigurations: [Match.objectLike({ Event: 's3:ObjectCreated:*' })] } });
  const archive = ofType('AWS::S3::Bucket').find(([, b]) => b.Properties.ObjectLockEnabled)![1].Properties;
  assert.equal(archive.ObjectLockConfiguration.Rule.DefaultRetention.Mode, 'COMPLIANCE');
  const rules = archive.LifecycleConfiguration.Rules;
  assert.equal(rules[0].Transitions[0].TransitionInDays, 90);
  assert.ok(rules.every((r: any) => !r.ExpirationInDays && !r.NoncurrentVersionExpiration), 'archived records must never expire');
  template.hasResourceProperties('AWS::S3::Bucket', { BucketEncryption: { ServerSideEncryptionConfiguration: [Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }) })] } });
});

test('CloudFront: OAC origin, trusted key group on segments, uncached API routes, tenant-host function, WAF, TLS 1.2', () => {
  const config = ofType('AWS::CloudFront::Distribution')[0][1].Properties.DistributionConfig;
  const origin = config.Origins.find((o: any) => o.Id === 'origin');
  assert.ok(origin.OriginAccessControlId);
  assert.ok(config.DefaultCacheBehavior.TrustedKeyGroups.length === 1);
  assert.equal(config.DefaultCacheBehavior.FunctionAssociations[0].EventType, 'viewer-request');
  const patterns: string[] = config.CacheBehaviors.map((b: any) => b.PathPattern);
  assert.deepEqual(patterns, ['/v1/manifests/*', '/v1/keys/*', '/v1/licenses/*', '/v1/content*', '/v1/feeds*', '/v1/monitors*']);
  // Every route of the contract is reachable through one of them, with its method.
  for (const r of contract.routes) {
    const [method, path] = r.route.split(' ');
    const sample = path.replace(/\{[^}]+\}/g, 'x');
    const behaviour = config.CacheBehaviors.find((b: any) => new RegExp(`^${b.PathPattern.replace(/\*/g, '.*')}$`).test(sample));
    assert.ok(behaviour && behaviour.AllowedMethods.includes(method), `no CloudFront behaviour serves ${r.route}`);
  }
  for (const b of config.CacheBehaviors) assert.equal(b.CachePolicyId, '4135ea2d-6df8-44a3-9df3-4b5a84be39ad', 'API routes must not be cached');
  assert.equal(config.ViewerCertificate.MinimumProtocolVersion, 'TLSv1.2_2021');
  assert.ok(config.WebACLId);
  const waf = ofType('AWS::WAFv2::WebACL')[0][1].Properties;
  assert.ok(waf.Rules.some((r: any) => r.Statement.RateBasedStatement));
  assert.ok(waf.Rules.some((r: any) => r.Statement.ManagedRuleGroupStatement?.Name === 'AWSManagedRulesCommonRuleSet'));
  template.hasResourceProperties('AWS::CloudFront::OriginAccessControl', { OriginAccessControlConfig: Match.objectLike({ SigningBehavior: 'always' }) });
  template.hasResourceProperties('AWS::CloudFront::ResponseHeadersPolicy', Match.objectLike({}));
});

test('the API answers only through CloudFront: no execute-api endpoint, every route behind a CloudFront behaviour, the origin-verify header from the secret', () => {
  const api = ofType('AWS::ApiGatewayV2::Api')[0][1].Properties;
  assert.equal(api.DisableExecuteApiEndpoint, true);
  const domain = ofType('AWS::ApiGatewayV2::DomainName')[0][1].Properties;
  assert.equal(domain.DomainNameConfigurations[0].SecurityPolicy, 'TLS_1_2');
  assert.equal(ofType('AWS::ApiGatewayV2::ApiMapping').length, 1);
  const config = ofType('AWS::CloudFront::Distribution')[0][1].Properties.DistributionConfig;
  const apiOrigin = config.Origins.find((o: any) => o.Id === 'api');
  assert.deepEqual(JSON.stringify(apiOrigin.DomainName), JSON.stringify(domain.DomainName), 'CloudFront reaches the API at its custom domain');
  const [header] = apiOrigin.OriginCustomHeaders;
  assert.equal(header.HeaderName, 'X-VaultStream-Origin-Verify');
  const secretId = ofType('AWS::SecretsManager::Secret').find(([, sec]) => JSON.stringify(sec.Properties.Name).includes('origin-verify'))![0];
  assert.ok(JSON.stringify(header.HeaderValue).includes(`{{resolve:secretsmanager:`) && JSON.stringify(header.HeaderValue).includes(secretId), 'the value is the secret, resolved at deploy time');
  const glob = (pattern: string) => new RegExp('^' + pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*') + '$');
  for (const { route } of contract.routes) {
    const [method, pathTemplate] = route.split(' ');
    const sample = pathTemplate.replace(/\{[^}]+\}/g, 'x');
    const behaviour = config.CacheBehaviors.find((b: any) => glob(b.PathPattern).test(sample));
    assert.ok(behaviour && behaviour.TargetOriginId === 'api' && behaviour.AllowedMethods.includes(method), `${route} cannot pass CloudFront`);
  }
  for (const name of Object.keys(contract.functions).filter((f) => contract.routes.some((r) => r.function === f))) {
    assert.ok(contract.functions[name].env.includes('VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN'), `${name} does not check the origin-verify header`);
  }
});

test('Batch: three queues; one attempt per run and stitch job (job_events retries), a chunk retried alone by the contract\'s rules; the contract commands and environment; GPU on the NVIDIA AMI with on-demand fallback; IMDSv2 with one hop', () => {
  assert.equal(ofType('AWS::Batch::JobQueue').length, 3);
  const definitions = ofType('AWS::Batch::JobDefinition');
  assert.equal(definitions.length, 3 + 2 * contract.transcoder.chunking.kinds.length);
  const chunking = contract.transcoder.chunking;
  for (const [id, def] of definitions) {
    const name: string = def.Properties.JobDefinitionName;
    const job = name.endsWith('-chunk') ? 'chunk' : name.endsWith('-stitch') ? 'stitch' : undefined;
    const command = job ? chunking.jobs[job].command : contract.transcoder.command;
    assert.deepEqual(def.Properties.ContainerProperties.Command, command, id);
    if (job === 'chunk') {
      assert.equal(def.Properties.RetryStrategy.Attempts, chunking.jobs.chunk.retry.attempts, id);
      assert.deepEqual(def.Properties.RetryStrategy.EvaluateOnExit.map((r: any) => r.Action), chunking.jobs.chunk.retry.evaluate_on_exit.map((r) => r.action), id);
    } else {
      assert.deepEqual(def.Properties.RetryStrategy, { Attempts: 1 }, id);
    }
    assert.ok(def.Properties.Timeout.AttemptDurationSeconds > 0, id);
    assert.deepEqual(def.Properties.Parameters, contract.transcoder.parameters, id);
    const env = def.Properties.ContainerProperties.Environment.map((e: any) => e.Name).sort();
    assert.deepEqual(env, [...contract.transcoder.env, 'AWS_REGION'].sort(), id);
    const value = (n: string) => def.Properties.ContainerProperties.Environment.find((e: any) => e.Name === n).Value;
    const kind = name.replace(/^.*?-(video-gpu|video-cpu|audio)(-chunk|-stitch)?$/, '$1');
    const splits = chunking.kinds.includes(kind);
    assert.equal(value('VAULTSTREAM_CHUNK_JOB_DEFINITION') !== '', splits, id);
    if (splits) assert.ok(value('VAULTSTREAM_CHUNK_JOB_DEFINITION').endsWith(`${kind}-chunk`), id);
  }
  // IMDSv2 only and one hop, on every compute environment: a job's container cannot borrow the instance role.
  const [[templateId, launchTemplate]] = ofType('AWS::EC2::LaunchTemplate');
  assert.deepEqual(launchTemplate.Properties.LaunchTemplateData.MetadataOptions, { HttpEndpoint: 'enabled', HttpTokens: 'required', HttpPutResponseHopLimit: 1 });
  for (const [id, ce] of ofType('AWS::Batch::ComputeEnvironment')) assert.deepEqual(ce.Properties.ComputeResources.LaunchTemplate.LaunchTemplateId, { Ref: templateId }, id);
  const gpu = ofType('AWS::Batch::ComputeEnvironment').filter(([, c]) => c.Properties.ComputeResources.Ec2Configuration[0].ImageType === 'ECS_AL2023_NVIDIA');
  assert.deepEqual(gpu.map(([, c]) => c.Properties.ComputeResources.Type).sort(), ['EC2', 'SPOT']);
});

test('functions: every binary, arm64 provided.al2023, JSON logs, X-Ray, exactly the contract variables', () => {
  const fns = ofType('AWS::Lambda::Function').filter(([, f]) => f.Properties.Runtime === 'provided.al2023');
  assert.equal(fns.length, Object.keys(contract.functions).length);
  for (const [id, f] of fns) {
    assert.deepEqual(f.Properties.Architectures, ['arm64'], id);
    assert.equal(f.Properties.TracingConfig.Mode, 'Active', id);
    assert.equal(f.Properties.LoggingConfig.LogFormat, 'JSON', id);
    const name = Object.keys(contract.functions).find((n) => id.startsWith(`Functions${n.replace(/_/g, '')}`))!;
    assert.deepEqual(Object.keys(f.Properties.Environment.Variables).sort(), [...contract.functions[name].env].sort(), id);
  }
  const routes = ofType('AWS::ApiGatewayV2::Route').map(([, r]) => [r.Properties.RouteKey, r.Properties.AuthorizationType]);
  assert.deepEqual(routes.sort(), contract.routes.map((r) => [r.route, r.authorizer ? 'CUSTOM' : 'NONE']).sort());
  template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: Match.objectLike({ ThrottlingRateLimit: Match.anyValue() }) });
});

test('ingest: dispatch consumes ingest and retry, import_fetch the import queue, with partial batch failures; ended jobs reach job_events, undeliverable ones the failures DLQ', () => {
  const dispatch = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('Functionsdispatch'))![0];
  const importFetch = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('Functionsimportfetch'))![0];
  const jobEvents = ofType('AWS::Lambda::Function').find(([id]) => id.startsWith('Functionsjobevents'))![0];
  const mappings = ofType('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
  assert.equal(mappings.length, 3);
  for (const m of mappings) assert.deepEqual(m.FunctionResponseTypes, ['ReportBatchItemFailures']);
  const consumed = (fn: string) => mappings.filter((m) => JSON.stringify(m.FunctionName).includes(fn)).map((m) => JSON.stringify(m.EventSourceArn)).sort();
  const queuesConsumed = consumed(dispatch);
  assert.ok(queuesConsumed.length === 2 && queuesConsumed[0].includes('QueuesIngest') && queuesConsumed[1].includes('QueuesRetry'), queuesConsumed.join(' '));
  const imports = consumed(importFetch);
  assert.ok(imports.length === 1 && imports[0].includes('QueuesImport') && !imports[0].includes('QueuesImportDlq'), imports.join(' '));
  const importMapping = mappings.find((m) => JSON.stringify(m.FunctionName).includes(importFetch))!;
  assert.equal(importMapping.BatchSize, 1);
  assert.equal(importMapping.ScalingConfig.MaximumConcurrency, contract.event_sources.import_fetch.maximum_concurrency);
  // A fetch may take the function's whole timeout; the queue hides a message six times as long.
  const importQueue = ofType('AWS::SQS::Queue').find(([id]) => id.startsWith('QueuesImport') && !id.startsWith('QueuesImportDlq'))![1].Properties;
  assert.ok(importQueue.VisibilityTimeout >= 6 * contract.functions.import_fetch.timeout_s, String(importQueue.VisibilityTimeout));
  assert.ok(JSON.stringify(importQueue.RedrivePolicy).includes('QueuesImportDlq'));
  // One message group per tenant: at most one import of a tenant runs at a time.
  assert.equal(importQueue.FifoQueue, contract.event_sources.import_fetch.fifo_group_per_tenant);
  assert.equal(importQueue.ContentBasedDeduplication, true);
  const rule = ofType('AWS::Events::Rule')[0][1].Properties;
  assert.deepEqual(rule.EventPattern.detail.status, contract.event_sources.job_events.eventbridge.status);
  assert.equal(rule.Targets.length, 1);
  assert.ok(JSON.stringify(rule.Targets[0].Arn).includes(jobEvents));
  assert.ok(JSON.stringify(rule.Targets[0].DeadLetterConfig.Arn).includes('QueuesFailuresDlq'));
  template.hasResourceProperties('AWS::DynamoDB::Table', { TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true } });
});

test('outputs: everything the README and the local stack name', () => {
  const outputs = Object.keys(template.toJSON().Outputs);
  for (const name of contract.outputs) assert.ok(outputs.includes(name), name);
});
