// CloudFront: segments from the origin bucket through Origin Access Control behind a trusted key
// group (signed cookies); manifest and key routes to the API, never cached; a CloudFront Function
// that checks a tenant's subdomain against its path prefix; `*.cdn.<domain>`; WAF; security headers.
import * as fs from 'fs';
import * as path from 'path';
import { Aws, CustomResource, Duration } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';

// AWS managed cache and origin request policies (fixed ids, documented by CloudFront).
const CACHING_OPTIMIZED = '658327ea-f89d-4fab-a63d-7e88639e58f6';
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';
/** functions/src/origin_verify.rs reads the same header. */
export const ORIGIN_VERIFY_HEADER = 'X-VaultStream-Origin-Verify';

/** The viewer-request function (infra/shared/tenant-host.js, shared with Terraform). */
export const TENANT_HOST_FUNCTION = fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'shared', 'tenant-host.js'), 'utf8');

/** Reads the KMS signing key's public half as PEM, for CloudFront's key group. */
const PUBLIC_KEY_PROVIDER = `const { KMSClient, GetPublicKeyCommand } = require('@aws-sdk/client-kms');
const response = require('cfn-response');
exports.handler = async (event, context) => {
  try {
    if (event.RequestType === 'Delete') { await response.send(event, context, response.SUCCESS, {}, event.PhysicalResourceId); return; }
    const out = await new KMSClient({}).send(new GetPublicKeyCommand({ KeyId: event.ResourceProperties.KeyId }));
    const body = Buffer.from(out.PublicKey).toString('base64').match(/.{1,64}/g).join('\\n');
    const pem = '-----BEGIN PUBLIC KEY-----\\n' + body + '\\n-----END PUBLIC KEY-----\\n';
    await response.send(event, context, response.SUCCESS, { Pem: pem }, event.ResourceProperties.KeyId);
  } catch (e) {
    await response.send(event, context, response.FAILED, { Reason: String(e) });
  }
};
`;

export interface DeliveryProps {
  prefix: string;
  domainName: string;
  certificateArn: string;
  playerOrigin: string;
  origin: s3.Bucket;
  originKey: kms.Key;
  signingKey: kms.Key;
  apiDomainName: string;
  /** The origin-verify header's value (the secret's dynamic reference). */
  originVerify: string;
  accessLogs: s3.IBucket;
  /** The access-log fields to keep (the contract's `cdn_access_log_fields`). */
  accessLogFields: string[];
  rateLimitPer5Min: number;
}

export class Delivery extends Construct {
  readonly distribution: cloudfront.CfnDistribution;
  readonly publicKey: cloudfront.CfnPublicKey;
  readonly tenantHosts: cloudfront.CfnKeyValueStore;

  constructor(scope: Construct, id: string, props: DeliveryProps) {
    super(scope, id);
    const providerLogs = new logs.LogGroup(this, 'PublicKeyReaderLogs', { retention: logs.RetentionDays.ONE_YEAR });
    const providerRole = new iam.Role(this, 'PublicKeyReaderRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      inlinePolicies: {
        read: new iam.PolicyDocument({ statements: [
          new iam.PolicyStatement({ sid: 'SigningKey', actions: ['kms:GetPublicKey'], resources: [props.signingKey.keyArn] }),
          new iam.PolicyStatement({ sid: 'OwnLogGroup', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [providerLogs.logGroupArn] }),
        ] }),
      },
    });
    const provider = new lambda.Function(this, 'PublicKeyReader', {
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: lambda.Code.fromInline(PUBLIC_KEY_PROVIDER),
      timeout: Duration.seconds(30),
      role: providerRole,
      logGroup: providerLogs,
      loggingFormat: lambda.LoggingFormat.JSON,
      tracing: lambda.Tracing.ACTIVE,
    });
    const publicPem = new CustomResource(this, 'SigningPublicKey', { serviceToken: provider.functionArn, properties: { KeyId: props.signingKey.keyArn } });

    this.publicKey = new cloudfront.CfnPublicKey(this, 'PublicKey', {
      publicKeyConfig: { callerReference: `${props.prefix}-signing`, name: `${props.prefix}-signing`, encodedKey: publicPem.getAttString('Pem'), comment: 'KMS-held CloudFront signing key' },
    });
    const keyGroup = new cloudfront.CfnKeyGroup(this, 'KeyGroup', { keyGroupConfig: { name: `${props.prefix}-viewers`, items: [this.publicKey.ref] } });
    const oac = new cloudfront.CfnOriginAccessControl(this, 'OriginAccess', {
      originAccessControlConfig: { name: `${props.prefix}-origin`, originAccessControlOriginType: 's3', signingBehavior: 'always', signingProtocol: 'sigv4' },
    });
    this.tenantHosts = new cloudfront.CfnKeyValueStore(this, 'TenantHosts', { name: `${props.prefix}-tenant-hosts`, comment: 'tenant host label -> tenant id' });
    const tenantFunction = new cloudfront.CfnFunction(this, 'TenantHost', {
      name: `${props.prefix}-tenant-host`,
      autoPublish: true,
      functionCode: TENANT_HOST_FUNCTION,
      functionConfig: { comment: 'refuse a tenant path on another tenant host', runtime: 'cloudfront-js-2.0', keyValueStoreAssociations: [{ keyValueStoreArn: this.tenantHosts.attrArn }] },
    });
    const headers = new cloudfront.CfnResponseHeadersPolicy(this, 'SecurityHeaders', {
      responseHeadersPolicyConfig: {
        name: `${props.prefix}-security-headers`,
        securityHeadersConfig: {
          strictTransportSecurity: { accessControlMaxAgeSec: 63072000, includeSubdomains: true, preload: true, override: true },
          contentTypeOptions: { override: true },
          frameOptions: { frameOption: 'DENY', override: true },
          referrerPolicy: { referrerPolicy: 'no-referrer', override: true },
          contentSecurityPolicy: { contentSecurityPolicy: "default-src 'none'; frame-ancestors 'none'", override: true },
        },
        corsConfig: {
          accessControlAllowCredentials: true,
          accessControlAllowHeaders: { items: ['Authorization', 'Range', 'Content-Type', 'Idempotency-Key'] },
          accessControlAllowMethods: { items: ['GET', 'HEAD', 'OPTIONS', 'POST'] },
          accessControlAllowOrigins: { items: [props.playerOrigin] },
          accessControlMaxAgeSec: 600,
          originOverride: true,
        },
      },
    });
    const waf = new wafv2.CfnWebACL(this, 'Firewall', {
      name: `${props.prefix}-cdn`,
      scope: 'CLOUDFRONT',
      defaultAction: { allow: {} },
      visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: `${props.prefix}-cdn`, sampledRequestsEnabled: true },
      rules: [
        ...['AWSManagedRulesCommonRuleSet', 'AWSManagedRulesKnownBadInputsRuleSet', 'AWSManagedRulesAmazonIpReputationList'].map((name, i) => ({
          name, priority: i, overrideAction: { none: {} },
          statement: { managedRuleGroupStatement: { vendorName: 'AWS', name } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: name, sampledRequestsEnabled: true },
        })),
        {
          name: 'RatePerIp', priority: 10, action: { block: {} },
          statement: { rateBasedStatement: { limit: props.rateLimitPer5Min, aggregateKeyType: 'IP' } },
          visibilityConfig: { cloudWatchMetricsEnabled: true, metricName: 'RatePerIp', sampledRequestsEnabled: true },
        },
      ],
    });

    const apiBehaviour = (pathPattern: string, allowedMethods = ['GET', 'HEAD', 'OPTIONS']) => ({
      pathPattern,
      targetOriginId: 'api',
      viewerProtocolPolicy: 'https-only',
      allowedMethods,
      // Keys and personalised playlists are per viewer: never cached.
      cachePolicyId: CACHING_DISABLED,
      originRequestPolicyId: ALL_VIEWER_EXCEPT_HOST,
      responseHeadersPolicyId: headers.ref,
      compress: true,
    });
    this.distribution = new cloudfront.CfnDistribution(this, 'Cdn', {
      distributionConfig: {
        enabled: true,
        comment: 'VaultStream encrypted HLS',
        aliases: [`*.cdn.${props.domainName}`],
        viewerCertificate: { acmCertificateArn: props.certificateArn, sslSupportMethod: 'sni-only', minimumProtocolVersion: 'TLSv1.2_2021' },
        httpVersion: 'http2and3',
        priceClass: 'PriceClass_All',
        webAclId: waf.attrArn,
        origins: [
          { id: 'origin', domainName: props.origin.bucketRegionalDomainName, originAccessControlId: oac.attrId, s3OriginConfig: { originAccessIdentity: '' } },
          {
            id: 'api', domainName: props.apiDomainName, customOriginConfig: { originProtocolPolicy: 'https-only', originSslProtocols: ['TLSv1.2'] },
            originCustomHeaders: [{ headerName: ORIGIN_VERIFY_HEADER, headerValue: props.originVerify }],
          },
        ],
        defaultCacheBehavior: {
          targetOriginId: 'origin',
          viewerProtocolPolicy: 'https-only',
          allowedMethods: ['GET', 'HEAD', 'OPTIONS'],
          cachePolicyId: CACHING_OPTIMIZED,
          trustedKeyGroups: [keyGroup.ref],
          responseHeadersPolicyId: headers.ref,
          functionAssociations: [{ eventType: 'viewer-request', functionArn: tenantFunction.attrFunctionArn }],
          compress: false,
        },
        // Every API route is here: the API has no other way in.
        cacheBehaviors: [
          apiBehaviour('/v1/manifests/*'), apiBehaviour('/v1/keys/*'),
          // ClearKey licences are POSTs (CloudFront allows POST only with every method).
          apiBehaviour('/v1/licenses/*', ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE']),
          apiBehaviour('/v1/content*', ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE']),
          apiBehaviour('/v1/feeds*', ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE']),
          apiBehaviour('/v1/monitors*', ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE']),
        ],
      },
    });
    const distributionArn = `arn:${Aws.PARTITION}:cloudfront::${Aws.ACCOUNT_ID}:distribution/${this.distribution.ref}`;

    // Access logs through standard logging v2 with chosen fields: manifest and key URLs carry
    // their tokens in the query string and the signed cookies are credentials, so neither the
    // query string, the cookies nor the referer (a page URL with its query) is ever written.
    const logSourceName = `${props.prefix}-cdn-access`;
    const logSource = new logs.CfnDeliverySource(this, 'AccessLogSource', { name: logSourceName, logType: 'ACCESS_LOGS', resourceArn: distributionArn });
    const logDestination = new logs.CfnDeliveryDestination(this, 'AccessLogDestination', {
      name: `${props.prefix}-cdn-access-s3`,
      destinationResourceArn: `${props.accessLogs.bucketArn}/cloudfront`,
      outputFormat: 'w3c',
    });
    const logDelivery = new logs.CfnDelivery(this, 'AccessLogDelivery', {
      deliverySourceName: logSourceName,
      deliveryDestinationArn: logDestination.attrArn,
      recordFields: props.accessLogFields,
    });
    logDelivery.addDependency(logSource);
    props.accessLogs.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudFrontAccessLogDelivery',
      principals: [new iam.ServicePrincipal('delivery.logs.amazonaws.com')],
      actions: ['s3:PutObject'],
      resources: [props.accessLogs.arnForObjects('cloudfront/*')],
      conditions: {
        StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID, 's3:x-amz-acl': 'bucket-owner-full-control' },
        ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:delivery-source:${logSourceName}` },
      },
    }));
    const fromThisDistribution = { StringEquals: { 'AWS:SourceArn': distributionArn } };
    props.origin.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudFrontReadsSegments',
      principals: [new iam.ServicePrincipal('cloudfront.amazonaws.com')],
      actions: ['s3:GetObject'],
      resources: [props.origin.arnForObjects('*')],
      conditions: fromThisDistribution,
    }));
    // The bucket is encrypted with this key and the distribution reads the bucket, so the key
    // policy cannot name the distribution without a cycle: it admits this account's distributions,
    // and the bucket policy above admits only this one.
    props.originKey.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'CloudFrontDecryptsSegments',
      principals: [new iam.ServicePrincipal('cloudfront.amazonaws.com')],
      actions: ['kms:Decrypt'],
      resources: ['*'],
      conditions: { StringLike: { 'AWS:SourceArn': `arn:${Aws.PARTITION}:cloudfront::${Aws.ACCOUNT_ID}:distribution/*` } },
    }));
  }
}
