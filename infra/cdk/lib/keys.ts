// KMS keys and the token secret. Key policies name every principal that may use a key: only the
// transcoder generates content keys and only key delivery decrypts them, both bound to the
// {tenant, content_id} encryption context. No statement grants `kms:*`.
import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';

/** What the account's administrators may do to a key: manage it, never use it. */
export const KEY_ADMIN_ACTIONS = [
  'kms:DescribeKey', 'kms:GetKeyPolicy', 'kms:PutKeyPolicy', 'kms:GetKeyRotationStatus', 'kms:EnableKeyRotation',
  'kms:ListResourceTags', 'kms:TagResource', 'kms:UntagResource', 'kms:UpdateKeyDescription',
  'kms:EnableKey', 'kms:DisableKey', 'kms:ScheduleKeyDeletion', 'kms:CancelKeyDeletion', 'kms:CreateAlias', 'kms:UpdateAlias', 'kms:DeleteAlias',
];

/** Conditions that bind a content-key operation to one content item of one tenant. */
export function encryptionContextConditions(keys: string[]): Record<string, Record<string, unknown>> {
  const present: Record<string, string> = {};
  for (const k of keys) present[`kms:EncryptionContext:${k}`] = 'false';
  return { 'ForAllValues:StringEquals': { 'kms:EncryptionContextKeys': keys }, Null: present };
}

/** Conditions that allow a storage-key operation only through S3 in this region. */
export function viaS3Conditions(): Record<string, Record<string, unknown>> {
  return { StringEquals: { 'kms:ViaService': `s3.${Aws.REGION}.amazonaws.com` } };
}

function keyPolicy(): iam.PolicyDocument {
  return new iam.PolicyDocument({
    statements: [new iam.PolicyStatement({ sid: 'KeyAdministration', principals: [new iam.AccountRootPrincipal()], actions: KEY_ADMIN_ACTIONS, resources: ['*'] })],
  });
}

export interface KeysProps { prefix: string }

export class Keys extends Construct {
  readonly content: kms.Key;
  readonly origin: kms.Key;
  readonly signing: kms.Key;
  readonly auditDigest: kms.Key;
  readonly serviceSecret: secretsmanager.Secret;
  readonly originVerify: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: KeysProps) {
    super(scope, id);
    this.content = new kms.Key(this, 'Content', {
      alias: `${props.prefix}-content-keys`,
      description: 'VaultStream content keys: GenerateDataKey by the transcoder, Decrypt by key delivery, per {tenant, content_id}',
      enableKeyRotation: true,
      policy: keyPolicy(),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.origin = new kms.Key(this, 'Origin', {
      alias: `${props.prefix}-origin-storage`,
      description: 'VaultStream origin bucket encryption (SSE-KMS); CloudFront decrypts through OAC',
      enableKeyRotation: true,
      policy: keyPolicy(),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.signing = new kms.Key(this, 'CloudFrontSigning', {
      alias: `${props.prefix}-cloudfront-signing`,
      description: 'VaultStream CloudFront signed-cookie key; the private half never leaves KMS',
      keySpec: kms.KeySpec.RSA_2048,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      policy: keyPolicy(),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // Anyone in the account may read the public half to verify digests; only the digest writer
    // signs (granted where the stack wires the functions).
    this.auditDigest = new kms.Key(this, 'AuditDigest', {
      alias: `${props.prefix}-audit-digest`,
      description: 'VaultStream audit digest signatures; only the audit_digest function signs',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      policy: keyPolicy(),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Keys.allow(this.auditDigest, 'AccountVerifiesDigests', new iam.AccountRootPrincipal(), ['kms:GetPublicKey', 'kms:Verify']);
    this.serviceSecret = new secretsmanager.Secret(this, 'ServiceSecret', {
      secretName: `${props.prefix}-service-secret`,
      description: 'VaultStream service secret: root of the playback and key token MACs (64 hex characters)',
      generateSecretString: { passwordLength: 64, excludeUppercase: true, excludePunctuation: true, includeSpace: false, excludeCharacters: 'ghijklmnopqrstuvwxyz' },
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudFront sends it to the API on every request; the functions refuse requests without it.
    this.originVerify = new secretsmanager.Secret(this, 'OriginVerify', {
      secretName: `${props.prefix}-origin-verify`,
      description: 'VaultStream origin-verify header value: requests without it did not come through CloudFront',
      generateSecretString: { passwordLength: 48, excludePunctuation: true, includeSpace: false },
    });
  }

  /** Lets `principal` use `key` for `actions`, under `conditions`, in the key's own policy. */
  static allow(key: kms.Key, sid: string, principal: iam.IPrincipal, actions: string[], conditions?: Record<string, Record<string, unknown>>): void {
    key.addToResourcePolicy(new iam.PolicyStatement({ sid, principals: [principal], actions, resources: ['*'], conditions }));
  }
}

