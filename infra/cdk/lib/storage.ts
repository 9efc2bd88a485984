// Buckets: source (uploads), origin (encrypted HLS, CloudFront only), audit archive (Object Lock),
// and the access-log bucket the others log to. All private, versioned and TLS-only.
import { Aws, Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

/** Archived audit records are locked this long (compliance mode: nobody can shorten it). */
export const AUDIT_RETENTION_YEARS = 7;
/** ... and move to cold storage after this many days. They never expire. */
export const AUDIT_COLD_AFTER_DAYS = 90;

/** Bucket names are global: prefix, role, account and region make them unique and predictable. */
export function bucketName(prefix: string, role: string): string {
  return `${prefix}-${role}-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
}

export interface StorageProps {
  prefix: string;
  originKey: kms.IKey;
  /** The web player's origin: browsers upload from there straight to the source bucket. */
  playerOrigin: string;
  /** How long a chunked title's chunks are kept (the contract's). */
  chunksExpireAfterDays: number;
}

export class Storage extends Construct {
  readonly source: s3.Bucket;
  readonly origin: s3.Bucket;
  readonly auditArchive: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly playerOrigin: string;

  constructor(scope: Construct, id: string, props: StorageProps) {
    super(scope, id);
    this.playerOrigin = props.playerOrigin;
    const common = {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      removalPolicy: RemovalPolicy.RETAIN,
    };
    // CloudFront standard logs are delivered with ACLs, so this one bucket keeps object writers.
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      ...common,
      bucketName: bucketName(props.prefix, 'access-logs'),
      objectOwnership: s3.ObjectOwnership.OBJECT_WRITER,
      encryption: s3.BucketEncryption.S3_MANAGED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(365), noncurrentVersionExpiration: Duration.days(30) }],
    });
    const logged = (name: string) => ({ serverAccessLogsBucket: this.accessLogs, serverAccessLogsPrefix: `s3/${name}/` });

    this.source = new s3.Bucket(this, 'Source', {
      ...common,
      bucketName: bucketName(props.prefix, 'source'),
      ...logged('source'),
      encryption: s3.BucketEncryption.S3_MANAGED,
      // Abandoned multipart uploads cost money and hold nothing playable; a chunked title's
      // chunks are worth keeping only until its stitch has published (or its retries are over).
      lifecycleRules: [
        { id: 'abort-incomplete-uploads', abortIncompleteMultipartUploadAfter: Duration.days(2) },
        { id: 'expire-chunks', prefix: 'chunks/', expiration: Duration.days(props.chunksExpireAfterDays) },
      ],
      // Browsers PUT uploads (and their parts) to presigned URLs, or POST signed forms from a
      // script; the ETag of each part is read.
      cors: [{ allowedOrigins: [props.playerOrigin], allowedMethods: [s3.HttpMethods.PUT, s3.HttpMethods.POST], allowedHeaders: ['content-type', 'content-length'], exposedHeaders: ['ETag'], maxAge: 3600 }],
    });
    this.origin = new s3.Bucket(this, 'Origin', {
      ...common,
      bucketName: bucketName(props.prefix, 'origin'),
      ...logged('origin'),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.originKey,
      bucketKeyEnabled: true,
    });
    this.auditArchive = new s3.Bucket(this, 'AuditArchive', {
      ...common,
      bucketName: bucketName(props.prefix, 'audit-archive'),
      ...logged('audit-archive'),
      encryption: s3.BucketEncryption.S3_MANAGED,
      objectLockEnabled: true,
      objectLockDefaultRetention: s3.ObjectLockRetention.compliance(Duration.days(365 * AUDIT_RETENTION_YEARS)),
      // Only the archived change records go cold; digests stay readable for `audit verify`.
      lifecycleRules: [{ id: 'cold-after-90-days', prefix: 'ledger/', transitions: [{ storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(AUDIT_COLD_AFTER_DAYS) }] }],
    });
  }
}
