// Ingest (S3 ObjectCreated:* events, with its DLQ), retry (delayed redelivery), import (URL
// imports for import_fetch, with its DLQ) and the failures DLQ; the rule that hands Batch job state changes to job_events; the content-failed bus.
import { Aws, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** Receives before a message moves to its dead-letter queue (the dispatch retries at most 5 times). */
export const MAX_RECEIVES = 5;
/** The retry queue's delay: the first backoff step. */
export const RETRY_DELAY_SECONDS = 60;
/** Six times import_fetch's timeout (900 s). */
export const IMPORT_VISIBILITY_SECONDS = 5400;

export interface QueuesProps {
  prefix: string;
  source: s3.Bucket;
  /** The source bucket's name, known before the bucket exists (the queue policy names it). */
  sourceBucketName: string;
}

export class Queues extends Construct {
  readonly ingest: sqs.Queue;
  readonly ingestDlq: sqs.Queue;
  readonly retry: sqs.Queue;
  readonly import: sqs.Queue;
  readonly importDlq: sqs.Queue;
  readonly failuresDlq: sqs.Queue;
  readonly failedBus: events.EventBus;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    const common = { encryption: sqs.QueueEncryption.SQS_MANAGED, enforceSSL: true, retentionPeriod: Duration.days(14) };
    this.ingestDlq = new sqs.Queue(this, 'IngestDlq', { ...common, queueName: `${props.prefix}-ingest-dlq` });
    this.ingest = new sqs.Queue(this, 'Ingest', {
      ...common,
      queueName: `${props.prefix}-ingest`,
      visibilityTimeout: Duration.minutes(5),
      deadLetterQueue: { queue: this.ingestDlq, maxReceiveCount: MAX_RECEIVES },
    });
    this.failuresDlq = new sqs.Queue(this, 'FailuresDlq', { ...common, queueName: `${props.prefix}-failures-dlq` });
    this.retry = new sqs.Queue(this, 'Retry', {
      ...common,
      queueName: `${props.prefix}-retry`,
      deliveryDelay: Duration.seconds(RETRY_DELAY_SECONDS),
      visibilityTimeout: Duration.minutes(5),
      deadLetterQueue: { queue: this.failuresDlq, maxReceiveCount: MAX_RECEIVES },
    });
    // A fetch may run for the function's whole 15 minutes: a message stays hidden for six times
    // that, as Lambda advises for SQS sources, so a running import is never handed out twice.
    // FIFO, one message group per tenant (the tenant is each message's group id): Lambda runs at
    // most one import of a tenant at a time, so one tenant's slow downloads never hold another's.
    this.importDlq = new sqs.Queue(this, 'ImportDlq', { ...common, queueName: `${props.prefix}-import-dlq.fifo`, fifo: true });
    this.import = new sqs.Queue(this, 'Import', {
      ...common,
      queueName: `${props.prefix}-import.fifo`,
      fifo: true,
      contentBasedDeduplication: true,
      visibilityTimeout: Duration.seconds(IMPORT_VISIBILITY_SECONDS),
      deadLetterQueue: { queue: this.importDlq, maxReceiveCount: MAX_RECEIVES },
    });

    // ObjectCreated:*, not only Put: a multipart upload completes as CompleteMultipartUpload.
    // Declared on the bucket itself (no notification custom resource); S3 checks the queue policy
    // when the configuration is set, so the bucket waits for it.
    this.ingest.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'SourceBucketEvents',
      principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [this.ingest.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': `arn:${Aws.PARTITION}:s3:::${props.sourceBucketName}` }, StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } },
    }));
    const bucket = props.source.node.defaultChild as s3.CfnBucket;
    bucket.notificationConfiguration = {
      queueConfigurations: [{ event: 's3:ObjectCreated:*', queue: this.ingest.queueArn, filter: { s3Key: { rules: [{ name: 'prefix', value: 'source/' }] } } }],
    };
    bucket.node.addDependency(this.ingest);

    // Consumers (the creator notifier, operators' alarms) subscribe to this bus.
    this.failedBus = new events.EventBus(this, 'ContentFailed', { eventBusName: `${props.prefix}.content.failed` });
  }

  /**
   * Finished transcode jobs of these job queues go to job_events, which retries, fails or confirms
   * their content. Deliveries that keep failing land in the failures DLQ, never lost.
   */
  watchJobs(jobQueueArns: string[], jobEvents: lambda.IFunction, pattern: { source: string[]; 'detail-type': string[]; status: string[] }): void {
    new events.Rule(this, 'BatchJobEnded', {
      description: 'VaultStream transcode jobs that ended: to job_events',
      eventPattern: { source: pattern.source, detailType: pattern['detail-type'], detail: { status: pattern.status, jobQueue: jobQueueArns } },
      targets: [new targets.LambdaFunction(jobEvents, { deadLetterQueue: this.failuresDlq, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
    });
  }
}
