// The audit ledger: append-only DynamoDB table (deletion protection, point-in-time recovery, a
// resource policy denying every rewrite to every principal) whose changes stream through Kinesis
// and Firehose into the Object Lock archive bucket.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as firehose from 'aws-cdk-lib/aws-kinesisfirehose';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface LedgerProps {
  prefix: string;
  archive: s3.IBucket;
  deniedActions: string[];
}

/** Every table keys on `pk` + `sk` strings, on demand, with point-in-time recovery. */
export function vaultTable(scope: Construct, id: string, tableName: string, extra: Partial<dynamodb.TableProps> = {}): dynamodb.Table {
  return new dynamodb.Table(scope, id, {
    tableName,
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: dynamodb.TableEncryption.AWS_MANAGED,
    removalPolicy: RemovalPolicy.RETAIN,
    ...extra,
  });
}

export class Ledger extends Construct {
  readonly table: dynamodb.Table;
  readonly stream: kinesis.Stream;

  constructor(scope: Construct, id: string, props: LedgerProps) {
    super(scope, id);
    this.stream = new kinesis.Stream(this, 'Changes', {
      streamName: `${props.prefix}-audit-changes`,
      streamMode: kinesis.StreamMode.ON_DEMAND,
      encryption: kinesis.StreamEncryption.MANAGED,
    });
    const appendOnly = new iam.PolicyDocument({
      statements: [
        new iam.PolicyStatement({
          sid: 'LedgerIsAppendOnly',
          effect: iam.Effect.DENY,
          principals: [new iam.AnyPrincipal()],
          actions: props.deniedActions,
          // The table's own ARN, written out: a resource policy cannot reference its table.
          resources: ['*'],
        }),
      ],
    });
    this.table = vaultTable(this, 'Table', `${props.prefix}-audit`, {
      deletionProtection: true,
      kinesisStream: this.stream,
      resourcePolicy: appendOnly,
    });
    // Sparse: only chain heads carry head_slot, so the digest writer reads a day's heads without
    // scanning records (vaultstream::audit::ledger::HEAD_INDEX).
    this.table.addGlobalSecondaryIndex({
      indexName: 'heads',
      partitionKey: { name: 'head_slot', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const deliveryRole = new iam.Role(this, 'ArchiveDeliveryRole', { assumedBy: new iam.ServicePrincipal('firehose.amazonaws.com') });
    deliveryRole.addToPolicy(new iam.PolicyStatement({
      sid: 'ReadLedgerChanges',
      actions: ['kinesis:DescribeStream', 'kinesis:DescribeStreamSummary', 'kinesis:GetShardIterator', 'kinesis:GetRecords', 'kinesis:ListShards'],
      resources: [this.stream.streamArn],
    }));
    deliveryRole.addToPolicy(new iam.PolicyStatement({
      sid: 'WriteArchive',
      actions: ['s3:PutObject', 's3:GetBucketLocation', 's3:ListBucket', 's3:AbortMultipartUpload', 's3:ListBucketMultipartUploads'],
      resources: [props.archive.bucketArn, props.archive.arnForObjects('ledger/*')],
    }));
    const delivery = new firehose.CfnDeliveryStream(this, 'Archive', {
      deliveryStreamName: `${props.prefix}-audit-archive`,
      deliveryStreamType: 'KinesisStreamAsSource',
      kinesisStreamSourceConfiguration: { kinesisStreamArn: this.stream.streamArn, roleArn: deliveryRole.roleArn },
      extendedS3DestinationConfiguration: {
        bucketArn: props.archive.bucketArn,
        roleArn: deliveryRole.roleArn,
        prefix: 'ledger/!{timestamp:yyyy/MM/dd}/',
        errorOutputPrefix: 'ledger-errors/!{firehose:error-output-type}/!{timestamp:yyyy/MM/dd}/',
        bufferingHints: { intervalInSeconds: 300, sizeInMBs: 64 },
        compressionFormat: 'GZIP',
      },
    });
    delivery.node.addDependency(deliveryRole);
  }
}
