// The whole deployment. infra/terraform describes the same resources; infra/tests/parity.py
// keeps them in step with each other and with infra/contract.json.
import * as path from 'path';
import { Aws, CfnOutput, CfnParameter, Duration, Fn, Stack, StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { Api } from './api';
import { loadContract, ResourceName } from './contract';
import { Delivery } from './delivery';
import { DropZone } from './drop_zone';
import { Functions, Grantable, contractStatements } from './functions';
import { encryptionContextConditions, Keys, viaS3Conditions } from './keys';
import { Ledger, vaultTable } from './ledger';
import { Observability } from './observability';
import { Queues } from './queues';
import { bucketName, Storage } from './storage';
import { chunkedJobDefinitionName, JOB_KINDS, jobDefinitionName, jobQueueName, Transcoding } from './transcoding';

export interface VaultStreamProps extends StackProps {
  /** Prefix of every resource name. */
  prefix: string;
  /** Where `cargo lambda build` left `<function>/bootstrap.zip`. */
  lambdaDir: string;
}

export class VaultStreamStack extends Stack {
  constructor(scope: Construct, id: string, props: VaultStreamProps) {
    super(scope, id, props);
    const contract = loadContract();
    const prefix = props.prefix;
    const param = (name: string, description: string, extra: Partial<{ type: string; default: string | number; minValue: number }> = {}) =>
      new CfnParameter(this, name, { type: 'String', description, ...extra });
    const domainName = param('DomainName', 'Tenants are served at <label>.cdn.<DomainName>').valueAsString;
    const certificateArn = param('CdnCertificateArn', 'ACM certificate (us-east-1) for *.cdn.<DomainName>').valueAsString;
    const jwtIssuer = param('JwtIssuer', "Identity provider's issuer (iss)").valueAsString;
    const jwtAudience = param('JwtAudience', 'Audience (aud) of VaultStream tokens', { default: 'vaultstream-api' }).valueAsString;
    const jwksUrl = param('JwksUrl', "Identity provider's JWKS URL").valueAsString;
    const vpcId = param('VpcId', 'VPC of the transcode workers', { type: 'AWS::EC2::VPC::Id' }).valueAsString;
    const subnetIds = param('SubnetIds', 'Private subnets (with egress) of the transcode workers', { type: 'List<AWS::EC2::Subnet::Id>' }).valueAsList;
    const image = param('TranscoderImage', 'ECR image URI of batch-transcoder/Dockerfile').valueAsString;
    const minWarmVcpus = param('MinWarmVcpus', 'vCPUs kept warm in the CPU environment (2 workers x 4 vCPUs)', { type: 'Number', default: 8, minValue: 0 }).valueAsNumber;
    const maxVcpus = param('MaxVcpus', 'Upper bound of every compute environment', { type: 'Number', default: 256, minValue: 1 }).valueAsNumber;
    const rateLimit = param('CdnRateLimit', 'Requests per IP per 5 minutes before WAF blocks', { type: 'Number', default: 3000, minValue: 100 }).valueAsNumber;
    const maxUploadBytes = param('MaxUploadBytes', 'Largest source a creator may upload, in bytes', { default: '53687091200' }).valueAsString;
    const dropZoneCidr = param('DropZoneClientCidr', 'Network (CIDR) that may reach the SFTP/FTPS drop zone', { default: '10.0.0.0/8' }).valueAsString;
    const dropZoneCertificateArn = param('DropZoneCertificateArn', 'Regional ACM certificate for the FTPS drop zone endpoint').valueAsString;
    const pricePerVcpuSecond = param('PricePerVcpuSecond', 'US dollars per vCPU-second, for the transcode cost estimate', { default: '0.0000118' }).valueAsString;
    // A DRM vendor is configuration: its SPEKE endpoint and licence servers (empty: VaultStream
    // holds the CMAF key and serves ClearKey itself).
    const drmSettings: Record<string, string> = Object.fromEntries(contract.drm.settings.map((s) => [
      s.env, param(s.cdk_parameter, `DRM: ${s.env} for ${s.read_by.join(', ')} (infra/contract.json drm.settings; empty: off)`, { default: s.default }).valueAsString,
    ]));
    const spekeApiArn = param(contract.drm.key_provider.api_arn.cdk_parameter, "The DRM vendor's SPEKE API the transcode jobs may invoke (arn:aws:execute-api:region:account:api-id/stage/POST/path); the default matches no API", { default: 'arn:aws:execute-api:us-east-1:000000000000:none/*/POST/*' }).valueAsString;

    const keys = new Keys(this, 'Keys', { prefix });
    const storage = new Storage(this, 'Storage', {
      prefix, originKey: keys.origin, playerOrigin: param('PlayerOrigin', 'Origin of the web player allowed by CORS, e.g. https://watch.example.com').valueAsString,
      chunksExpireAfterDays: contract.transcoder.chunking.expire_after_days,
    });
    // Idempotency keys expire through the TTL; content records carry no expires_at.
    const content = vaultTable(this, 'Catalog', `${prefix}-content`, { timeToLiveAttribute: 'expires_at' });
    const tokens = vaultTable(this, 'Tokens', `${prefix}-tokens`);
    // Feed subscriptions and the items seen in them; only subscriptions carry `subscription`,
    // the key of the sparse index the poller scans.
    const feeds = vaultTable(this, 'Feeds', `${prefix}-feeds`);
    feeds.addGlobalSecondaryIndex({ indexName: 'subscriptions', partitionKey: { name: 'subscription', type: dynamodb.AttributeType.STRING } });
    const ledger = new Ledger(this, 'Ledger', { prefix, archive: storage.auditArchive, deniedActions: contract.ledger_denied_actions });
    const queues = new Queues(this, 'Queues', { prefix, source: storage.source, sourceBucketName: bucketName(prefix, 'source') });

    const contextConditions = encryptionContextConditions(contract.kms_encryption_context_keys);
    // A transcode job's own role may only assume the tenant role, tagging the session with the
    // job's tenant (and call the DRM vendor's SPEKE API, where the deployment names one); every permission of the tenant role is bounded by that tag, so a job reaches
    // only its tenant's sources, origin folder, records, ledger chains and content keys.
    const transcoderRole = new iam.Role(this, 'TranscoderRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: 'VaultStream transcode jobs: only assuming the tenant role and calling the DRM key provider (infra/contract.json)',
    });
    const tag = contract.transcoder.tenant_session_tag;
    const tenant = `\${aws:PrincipalTag/${tag}}`;
    const tenantRole = new iam.Role(this, 'TranscoderTenantRole', {
      assumedBy: new iam.ArnPrincipal(transcoderRole.roleArn),
      description: 'VaultStream transcode jobs acting for one tenant: every permission bounded by the session tag',
      maxSessionDuration: Duration.hours(1),
    });
    (tenantRole.node.defaultChild as iam.CfnRole).assumeRolePolicyDocument = {
      Version: '2012-10-17',
      Statement: [{
        Sid: 'TranscodeJobsActForOneTenant',
        Effect: 'Allow',
        Principal: { AWS: transcoderRole.roleArn },
        Action: ['sts:AssumeRole', 'sts:TagSession'],
        Condition: { StringLike: { [`aws:RequestTag/${tag}`]: '?*' }, 'ForAllValues:StringEquals': { 'aws:TagKeys': [tag] } },
      }],
    };
    const tenantKeyConditions = { ...contextConditions, StringEquals: { [`kms:EncryptionContext:${tag}`]: tenant } };
    const resources: Record<ResourceName, Grantable> = {
      source_bucket: { arns: [storage.source.arnForObjects('source/*')] },
      origin_bucket: { arns: [storage.origin.arnForObjects('*')] },
      // Caption files sit beside a title's versions: {tenant}/{content_id}/captions/{file}.
      origin_captions: { arns: [storage.origin.arnForObjects('*/*/captions/*')] },
      content_table: { arns: [content.tableArn] },
      tokens_table: { arns: [tokens.tableArn] },
      feeds_table: { arns: [feeds.tableArn] },
      feeds_subscriptions: { arns: [`${feeds.tableArn}/index/subscriptions`] },
      audit_table: { arns: [ledger.table.tableArn] },
      content_key: { arns: [keys.content.keyArn], conditions: contextConditions },
      origin_key: { arns: [keys.origin.keyArn], conditions: viaS3Conditions() },
      signing_key: { arns: [keys.signing.keyArn] },
      service_secret: { arns: [keys.serviceSecret.secretArn] },
      ingest_queue: { arns: [queues.ingest.queueArn] },
      retry_queue: { arns: [queues.retry.queueArn] },
      import_queue: { arns: [queues.import.queueArn] },
      failures_dlq: { arns: [queues.failuresDlq.queueArn] },
      content_failed_bus: { arns: [queues.failedBus.eventBusArn] },
      // Named before they exist: the job queues and definitions are created with the transcoder.
      job_queues: { arns: JOB_KINDS.map((k) => `arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job-queue/${jobQueueName(prefix, k)}`) },
      audit_heads: { arns: [`${ledger.table.tableArn}/index/heads`] },
      audit_digests: { arns: [storage.auditArchive.arnForObjects('audit-digests/*')] },
      audit_archive: { arns: [storage.auditArchive.bucketArn], conditions: { StringLike: { 's3:prefix': ['audit-digests/*'] } } },
      audit_digest_key: { arns: [keys.auditDigest.keyArn] },
      origin_verify_secret: { arns: [keys.originVerify.secretArn] },
      // GCS monitors' service account keys, each named {prefix}/monitors/{tenant}/{monitor}.
      monitor_secrets: { arns: [`arn:${Aws.PARTITION}:secretsmanager:${Aws.REGION}:${Aws.ACCOUNT_ID}:secret:${prefix}/monitors/*`] },
      // S3 monitors read through roles in customers' accounts (each with its external id); never
      // a role of this account.
      customer_roles: { arns: [`arn:${Aws.PARTITION}:iam::*:role/*`], conditions: { StringNotEquals: { 'aws:ResourceAccount': Aws.ACCOUNT_ID } } },
      platform_buckets: { arns: [storage.source, storage.origin, storage.auditArchive, storage.accessLogs].flatMap((b) => [b.bucketArn, b.arnForObjects('*')]) },
      served_buckets: { arns: [storage.origin, storage.auditArchive, storage.accessLogs].flatMap((b) => [b.bucketArn, b.arnForObjects('*')]) },
      source_drop: { arns: [storage.source.arnForObjects('drop/*')] },
      source_quarantine: { arns: [storage.source.arnForObjects('quarantine/*')] },
      source_drop_listing: { arns: [storage.source.bucketArn], conditions: { StringLike: { 's3:prefix': ['drop/*'] } } },
      tenant_role: { arns: [tenantRole.roleArn] },
      tenant_sources: { arns: [storage.source.arnForObjects(`source/${tenant}/*`)] },
      tenant_origin: { arns: [storage.origin.arnForObjects(`${tenant}/*`)] },
      tenant_content: { arns: [content.tableArn], conditions: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [`TENANT#${tenant}`] } } },
      tenant_ledger: { arns: [ledger.table.tableArn], conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${tenant}#*`] } } },
      tenant_content_key: { arns: [keys.content.keyArn], conditions: tenantKeyConditions },
      tenant_chunks: { arns: [storage.source.arnForObjects(`chunks/${tenant}/*`)] },
      // Listing its own chunks: a missing chunk.json is then a 404, not an AccessDenied.
      tenant_chunks_listing: { arns: [storage.source.bucketArn], conditions: { StringLike: { 's3:prefix': [`chunks/${tenant}/*`] } } },
      // A tenant session submits a chunked title's jobs only tagged with its own tenant.
      tenant_chunk_jobs: {
        arns: contract.transcoder.chunking.kinds.flatMap((k) => [
          `arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job-queue/${prefix}-${k}`,
          ...(['chunk', 'stitch'] as const).map((j) => `arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job-definition/${chunkedJobDefinitionName(prefix, k, j)}:*`),
        ]),
        conditions: { StringEquals: { 'aws:RequestTag/vaultstream:tenant': tenant } },
      },
      speke_api: { arns: [spekeApiArn] },
      job_definitions: { arns: JOB_KINDS.map((k) => `arn:${Aws.PARTITION}:batch:${Aws.REGION}:${Aws.ACCOUNT_ID}:job-definition/${jobDefinitionName(prefix, k)}:*`) },
    };

    const dropZoneProps = {
      prefix, contract: contract.drop_zone, vpcId, subnetIds, clientCidr: dropZoneCidr, certificateArn: dropZoneCertificateArn, resources,
    };
    const dropZone = new DropZone(this, 'DropZone', dropZoneProps);

    const cdnDomain = `cdn.${domainName}`;
    const functions = new Functions(this, 'Functions', {
      prefix,
      lambdaDir: props.lambdaDir,
      contracts: contract.functions,
      resources,
      environment: {
        VAULTSTREAM_CONTENT_TABLE: content.tableName,
        VAULTSTREAM_TOKENS_TABLE: tokens.tableName,
        VAULTSTREAM_FEEDS_TABLE: feeds.tableName,
        VAULTSTREAM_MONITOR_SECRET_PREFIX: `${prefix}/monitors/`,
        VAULTSTREAM_DROP_ROLE_ARN: dropZone.role.roleArn,
        VAULTSTREAM_AUDIT_TABLE: ledger.table.tableName,
        VAULTSTREAM_AUDIT_SHARDS: '4',
        VAULTSTREAM_AUDIT_ARCHIVE_BUCKET: storage.auditArchive.bucketName,
        VAULTSTREAM_AUDIT_DIGEST_KEY_ID: keys.auditDigest.keyArn,
        VAULTSTREAM_ORIGIN_BUCKET: storage.origin.bucketName,
        VAULTSTREAM_SERVICE_SECRET_ARN: keys.serviceSecret.secretArn,
        VAULTSTREAM_ORIGIN_VERIFY_SECRET_ARN: keys.originVerify.secretArn,
        // Manifest and key URLs go through CloudFront (api.cdn.<domain>), never cached there.
        VAULTSTREAM_API_BASE_URL: `https://api.${cdnDomain}`,
        VAULTSTREAM_CDN_DOMAIN: domainName,
        VAULTSTREAM_PLAYBACK_TTL_SECONDS: '1800',
        VAULTSTREAM_JWT_ISSUER: jwtIssuer,
        VAULTSTREAM_JWT_AUDIENCE: jwtAudience,
        VAULTSTREAM_JWT_ALGORITHMS: 'RS256,ES256',
        VAULTSTREAM_JWKS_URL: jwksUrl,
        VAULTSTREAM_CLOUDFRONT_KMS_KEY_ID: keys.signing.keyArn,
        VAULTSTREAM_CLOUDFRONT_HASH_ALGORITHM: 'SHA256',
        VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID: '', // set below, once the public key exists
        VAULTSTREAM_SOURCE_BUCKET: storage.source.bucketName,
        // What no tenant's bucket monitor may read (the rule, the session policy and the expected
        // bucket owner all use them).
        VAULTSTREAM_PLATFORM_BUCKETS: Fn.join(',', [storage.source, storage.origin, storage.auditArchive, storage.accessLogs].map((b) => b.bucketName)),
        VAULTSTREAM_PLATFORM_ACCOUNT: Aws.ACCOUNT_ID,
        VAULTSTREAM_MAX_UPLOAD_BYTES: maxUploadBytes,
        VAULTSTREAM_MULTIPART_THRESHOLD_BYTES: '104857600',
        VAULTSTREAM_RETRY_QUEUE_URL: queues.retry.queueUrl,
        VAULTSTREAM_IMPORT_QUEUE_URL: queues.import.queueUrl,
        // import_fetch's timeout is 900 s: the transfer stops in time to record why.
        VAULTSTREAM_IMPORT_TIME_LIMIT_SECONDS: '840',
        VAULTSTREAM_FAILURES_DLQ_URL: queues.failuresDlq.queueUrl,
        VAULTSTREAM_CONTENT_FAILED_BUS: queues.failedBus.eventBusName,
        VAULTSTREAM_JOB_QUEUE_VIDEO_GPU: jobQueueName(prefix, 'video-gpu'),
        VAULTSTREAM_JOB_QUEUE_VIDEO_CPU: jobQueueName(prefix, 'video-cpu'),
        VAULTSTREAM_JOB_QUEUE_AUDIO: jobQueueName(prefix, 'audio'),
        VAULTSTREAM_JOB_DEFINITION_VIDEO_GPU: jobDefinitionName(prefix, 'video-gpu'),
        VAULTSTREAM_JOB_DEFINITION_VIDEO_CPU: jobDefinitionName(prefix, 'video-cpu'),
        VAULTSTREAM_JOB_DEFINITION_AUDIO: jobDefinitionName(prefix, 'audio'),
        ...drmSettings,
      },
    });
    // dispatch consumes the ingest and retry queues, reporting partial batch failures. The role's
    // contract policy already holds the consume actions (no CDK auto-grants beside it).
    const dispatchSource = contract.event_sources.dispatch;
    for (const name of dispatchSource.sqs) {
      const queue = name === 'ingest_queue' ? queues.ingest : queues.retry;
      new lambda.CfnEventSourceMapping(this, `Dispatch${name === 'ingest_queue' ? 'Ingest' : 'Retry'}`, {
        functionName: functions.byName['dispatch'].functionName,
        eventSourceArn: queue.queueArn,
        batchSize: dispatchSource.batch_size,
        functionResponseTypes: dispatchSource.report_batch_item_failures ? ['ReportBatchItemFailures'] : [],
      }).node.addDependency(functions.policies['dispatch']);
    }
    // import_fetch consumes the import queue one URL per invocation, at most `maximum_concurrency`
    // downloads at once.
    const importSource = contract.event_sources.import_fetch;
    new lambda.CfnEventSourceMapping(this, 'ImportFetchImport', {
      functionName: functions.byName['import_fetch'].functionName,
      eventSourceArn: queues.import.queueArn,
      batchSize: importSource.batch_size,
      functionResponseTypes: importSource.report_batch_item_failures ? ['ReportBatchItemFailures'] : [],
      scalingConfig: { maximumConcurrency: importSource.maximum_concurrency },
    }).node.addDependency(functions.policies['import_fetch']);
    const api = new Api(this, 'Api', {
      prefix, originDomain: `api-origin.${cdnDomain}`, certificateArn, functions: functions.byName, routes: contract.routes, throttleRate: 200, throttleBurst: 400,
    });
    const delivery = new Delivery(this, 'Delivery', {
      prefix, domainName, certificateArn, playerOrigin: storage.playerOrigin,
      origin: storage.origin, originKey: keys.origin, signingKey: keys.signing,
      apiDomainName: api.domainName, originVerify: keys.originVerify.secretValue.unsafeUnwrap(), accessLogs: storage.accessLogs, accessLogFields: contract.cdn_access_log_fields, rateLimitPer5Min: rateLimit,
    });
    functions.byName['playback'].addEnvironment('VAULTSTREAM_CLOUDFRONT_KEY_PAIR_ID', delivery.publicKey.ref);

    new iam.Policy(this, 'TranscoderContract', { roles: [transcoderRole], statements: contractStatements(contract.transcoder.permissions, resources) });
    new iam.Policy(this, 'TranscoderTenantContract', { roles: [tenantRole], statements: contractStatements(contract.transcoder.tenant_permissions, resources) });
    const transcoderEnv: Record<string, string> = {
      VAULTSTREAM_SOURCE_BUCKET: storage.source.bucketName,
      VAULTSTREAM_ORIGIN_BUCKET: storage.origin.bucketName,
      VAULTSTREAM_CONTENT_TABLE: content.tableName,
      VAULTSTREAM_AUDIT_TABLE: ledger.table.tableName,
      VAULTSTREAM_AUDIT_SHARDS: '4',
      VAULTSTREAM_CONTENT_KEY_ID: keys.content.keyArn,
      VAULTSTREAM_PRICE_PER_VCPU_SECOND: pricePerVcpuSecond,
      VAULTSTREAM_TENANT_ROLE_ARN: tenantRole.roleArn,
      ...Object.fromEntries(contract.drm.settings.filter((s) => s.read_by.includes('transcoder')).map((s) => [s.env, drmSettings[s.env]])),
    };
    // Each kind's chunked-title settings are its own (Transcoding sets them per definition).
    const perKind = ['VAULTSTREAM_CHUNK_SECONDS', 'VAULTSTREAM_CHUNK_JOB_DEFINITION', 'VAULTSTREAM_STITCH_JOB_DEFINITION'];
    for (const variable of contract.transcoder.env.filter((v) => !perKind.includes(v))) {
      if (transcoderEnv[variable] === undefined) throw new Error(`the contract's transcoder reads ${variable}, which the job definitions do not set`);
    }
    const transcoding = new Transcoding(this, 'Transcoding', {
      prefix, vpcId, subnetIds, image, minWarmVcpus, maxVcpus, jobRole: transcoderRole, environment: transcoderEnv, contract: contract.transcoder,
    });
    queues.watchJobs(Object.values(transcoding.queues).map((q) => q.attrJobQueueArn), functions.byName['job_events'], contract.event_sources.job_events.eventbridge);
    new Observability(this, 'Observability', {
      prefix,
      functions: Object.keys(contract.functions),
      contract: contract.observability,
      alarmTopicArn: param('AlarmTopicArn', 'SNS topic the alarms notify, when they fire and when they clear').valueAsString,
    });

    // Key policies: the only principals that may use each key, and how. The transcoder decrypts
    // too: a rerun reuses the content's stored key instead of minting a second one.
    // Only the roles the contract lets append may put a ledger item at all: no administrator and
    // no other role writes a record (the deny-all statement already forbids every rewrite).
    const ledgerWriters = Object.entries(contract.functions)
      .filter(([, fn]) => (fn.permissions.audit_table ?? []).includes('dynamodb:PutItem'))
      .map(([name]) => functions.roles[name].roleArn);
    if ((contract.transcoder.tenant_permissions.tenant_ledger ?? []).includes('dynamodb:PutItem')) ledgerWriters.push(tenantRole.roleArn);
    ledger.table.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'OnlyLedgerWritersAppend',
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['dynamodb:PutItem'],
      resources: ['*'],
      conditions: { ArnNotEquals: { 'aws:PrincipalArn': ledgerWriters } },
    }));

    Keys.allow(keys.content, 'TranscoderGeneratesAndReusesContentKeys', tenantRole, ['kms:Decrypt', 'kms:GenerateDataKey'], tenantKeyConditions);
    Keys.allow(keys.content, 'KeyDeliveryDecryptsContentKeys', functions.roles['key_delivery'], ['kms:Decrypt'], contextConditions);
    Keys.allow(keys.origin, 'TranscoderWritesOrigin', tenantRole, ['kms:GenerateDataKey'], viaS3Conditions());
    Keys.allow(keys.origin, 'ManifestReadsOrigin', functions.roles['manifest'], ['kms:Decrypt'], viaS3Conditions());
    Keys.allow(keys.origin, 'CaptionsWriteOrigin', functions.roles['captions'], ['kms:GenerateDataKey'], viaS3Conditions());
    Keys.allow(keys.signing, 'PlaybackSignsCookies', functions.roles['playback'], ['kms:GetPublicKey', 'kms:Sign']);
    Keys.allow(keys.auditDigest, 'DigestWriterSigns', functions.roles['audit_digest'], ['kms:GetPublicKey', 'kms:Sign']);
    // The digest writer runs on a schedule (hourly, as CloudTrail digests do).
    new events.Rule(this, 'AuditDigestSchedule', {
      ruleName: `${prefix}-audit-digest`,
      description: 'VaultStream: sign a digest of every audit chain head',
      schedule: events.Schedule.expression(contract.event_sources.audit_digest.schedule),
      targets: [new targets.LambdaFunction(functions.byName['audit_digest'], { retryAttempts: 2 })],
    });
    // Feeds are read on a schedule; each new media item is imported once.
    new events.Rule(this, 'FeedPollSchedule', {
      ruleName: `${prefix}-feed-poll`,
      description: 'VaultStream: read every subscribed feed, import new media items',
      schedule: events.Schedule.expression(contract.event_sources.feed_poll.schedule),
      targets: [new targets.LambdaFunction(functions.byName['feed_poll'], { retryAttempts: 0 })],
    });
    const dropServer = dropZone.serve(
      dropZoneProps, functions.byName['ftp_auth'], functions.byName['drop_zone'], queues.failuresDlq, contract.event_sources.drop_zone.eventbridge,
    );
    // Monitored buckets are listed on a schedule; each new object version is imported once.
    new events.Rule(this, 'MonitorPollSchedule', {
      ruleName: `${prefix}-monitor-poll`,
      description: 'VaultStream: list every monitored bucket prefix, import new objects',
      schedule: events.Schedule.expression(contract.event_sources.monitor_poll.schedule),
      targets: [new targets.LambdaFunction(functions.byName['monitor_poll'], { retryAttempts: 0 })],
    });

    const outputs: Record<string, string> = {
      ApiUrl: `https://api.${cdnDomain}`,
      ApiOriginDnsTarget: api.dnsTarget,
      CdnDomain: delivery.distribution.attrDomainName,
      SourceBucket: storage.source.bucketName,
      OriginBucket: storage.origin.bucketName,
      AuditArchiveBucket: storage.auditArchive.bucketName,
      ContentTable: content.tableName,
      TokensTable: tokens.tableName,
      FeedsTable: feeds.tableName,
      DropZoneServerId: dropServer.attrServerId,
      AuditTable: ledger.table.tableName,
      AuditDigestKeyId: keys.auditDigest.keyId,
      ContentKeyId: keys.content.keyId,
      CloudFrontSigningKeyId: keys.signing.keyId,
      ServiceSecretArn: keys.serviceSecret.secretArn,
      IngestQueueUrl: queues.ingest.queueUrl,
      IngestDlqUrl: queues.ingestDlq.queueUrl,
      RetryQueueUrl: queues.retry.queueUrl,
      FailuresDlqUrl: queues.failuresDlq.queueUrl,
      ImportQueueUrl: queues.import.queueUrl,
      ImportDlqUrl: queues.importDlq.queueUrl,
      VideoGpuJobQueue: jobQueueName(prefix, 'video-gpu'),
      VideoCpuJobQueue: jobQueueName(prefix, 'video-cpu'),
      AudioJobQueue: jobQueueName(prefix, 'audio'),
      VideoGpuJobDefinition: jobDefinitionName(prefix, 'video-gpu'),
      VideoCpuJobDefinition: jobDefinitionName(prefix, 'video-cpu'),
      AudioJobDefinition: jobDefinitionName(prefix, 'audio'),
      ContentFailedBus: queues.failedBus.eventBusName,
    };
    for (const name of contract.outputs) {
      if (outputs[name] === undefined) throw new Error(`contract output ${name} is not defined`);
      new CfnOutput(this, name, { value: outputs[name] });
    }
    new CfnOutput(this, 'TenantHostStoreArn', { value: delivery.tenantHosts.attrArn, description: 'Key value store: tenant host label -> tenant id' });
  }
}

export const DEFAULT_LAMBDA_DIR = path.resolve(__dirname, '..', '..', '..', '..', 'target', 'lambda');
