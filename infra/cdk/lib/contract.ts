// The deployment contract (infra/contract.json): function names, the variables each reads, what
// each may do, and the API routes. The parity test holds Terraform and the Rust code to it too.
import * as fs from 'fs';
import * as path from 'path';

export type ResourceName =
  | 'source_bucket' | 'origin_bucket' | 'origin_captions' | 'content_table' | 'tokens_table' | 'audit_table'
  | 'content_key' | 'origin_key' | 'signing_key' | 'service_secret'
  | 'ingest_queue' | 'retry_queue' | 'import_queue' | 'failures_dlq' | 'feeds_table' | 'feeds_subscriptions' | 'content_failed_bus' | 'job_queues' | 'job_definitions'
  | 'audit_heads' | 'audit_digests' | 'audit_archive' | 'audit_digest_key' | 'origin_verify_secret'
  // Bucket monitors: the GCS keys VaultStream stores, and customers' roles in other accounts.
  | 'monitor_secrets' | 'customer_roles'
  // Drop zones: the files under drop/ of the source bucket, and listing them.
  | 'source_drop' | 'source_drop_listing'
  // Uploads of a session that had ended: copied here, never imported.
  | 'source_quarantine'
  // What no monitor session or import may read: every bucket of the deployment, and those it
  // serves or keeps (origin, audit archive, access logs) rather than takes in.
  | 'platform_buckets' | 'served_buckets'
  // The transcode job's tenant session: each bounded by the session's `tenant` tag.
  | 'tenant_role' | 'tenant_sources' | 'tenant_origin' | 'tenant_content' | 'tenant_ledger' | 'tenant_content_key'
  // A chunked title's files under chunks/{tenant}/ of the source bucket, and its array and
  // stitch jobs (submitted tagged with the session's tenant).
  | 'tenant_chunks' | 'tenant_chunks_listing' | 'tenant_chunk_jobs'
  // A DRM vendor's SPEKE API (API Gateway), which the job's own role calls with SigV4.
  | 'speke_api';

export interface FunctionContract {
  memory_mb: number;
  timeout_s: number;
  env: string[];
  permissions: Partial<Record<ResourceName, string[]>>;
  /** Explicit denials, which no grant (present or future) can override. */
  denied?: Partial<Record<ResourceName, string[]>>;
}

export interface TranscoderContract {
  /** The job definitions' command; `Ref::name` takes the submitted job's parameter. */
  command: string[];
  /** Default job parameters. */
  parameters: Record<string, string>;
  env: string[];
  /** The job role's own: only assuming the tenant role. */
  permissions: Partial<Record<ResourceName, string[]>>;
  /** The session tag the tenant role's policies read. */
  tenant_session_tag: string;
  /** The tenant role's, every one bounded by the session's tag. */
  tenant_permissions: Partial<Record<ResourceName, string[]>>;
  exit_codes: { invalid_input: number; temporary_failure: number };
  retry: { max_attempts: number; backoff_base_seconds: number; backoff_cap_seconds: number };
  chunking: ChunkingContract;
}

/** Split-and-stitch: per video kind, a chunk (array child) and a stitch job definition. */
export interface ChunkingContract {
  kinds: string[];
  chunk_seconds: string;
  expire_after_days: number;
  jobs: Record<'chunk' | 'stitch', { command: string[]; retry: { attempts: number; evaluate_on_exit: Record<string, string>[] } }>;
}

/** [namespace, metric name, dimensions, statistic]; `{prefix}` and `{function}` are placeholders. */
export type MetricLine = [string, string, Record<string, string>, string];

export interface AlarmContract {
  name: string;
  description: string;
  for_each_function?: boolean;
  /** Metric math over `metrics` by id; without it, the one metric is the alarm's. */
  expression?: string;
  metrics: Record<string, MetricLine>;
  period_s: number;
  evaluation_periods: number;
  comparison: string;
  threshold: number;
}

export interface ObservabilityContract {
  namespace: string;
  metrics: Record<string, { unit: string; dimensions: string[][]; from: string }>;
  dashboard: { name: string; period_s: number; widgets: { title: string; for_each_function?: boolean; metrics: MetricLine[] }[] };
  alarms: AlarmContract[];
}

/** DRM vendors by configuration: each setting a CDK parameter, a Terraform variable, variables of the readers. */
export interface DrmContract {
  key_provider: { protocol: string; cpix_version: string; auth: string[]; permission: ResourceName; api_arn: { cdk_parameter: string; terraform_variable: string } };
  settings: { env: string; cdk_parameter: string; terraform_variable: string; default: string; read_by: string[] }[];
  systems: Record<string, { system_id: string; hls_keyformat: string; license_url_env: string }>;
}

export interface Contract {
  functions: Record<string, FunctionContract>;
  transcoder: TranscoderContract;
  routes: { route: string; function: string; authorizer: boolean }[];
  event_sources: {
    dispatch: { sqs: ResourceName[]; batch_size: number; report_batch_item_failures: boolean };
    /** `fifo_group_per_tenant`: the import queue is FIFO, each tenant one message group. */
    import_fetch: { sqs: ResourceName[]; batch_size: number; report_batch_item_failures: boolean; maximum_concurrency: number; fifo_group_per_tenant: boolean };
    job_events: { eventbridge: { source: string[]; 'detail-type': string[]; status: string[] } };
    audit_digest: { schedule: string };
    feed_poll: { schedule: string };
    monitor_poll: { schedule: string };
    drop_zone: { eventbridge: { source: string[]; 'detail-type': string[]; 'status-code': string[] } };
  };
  drop_zone: import('./drop_zone').DropZoneContract;
  /** CloudFront access-log fields (standard logging v2): never the query string or cookies. */
  cdn_access_log_fields: string[];
  kms_encryption_context_keys: string[];
  ledger_denied_actions: string[];
  outputs: string[];
  observability: ObservabilityContract;
  drm: DrmContract;
}

export const CONTRACT_PATH = path.resolve(__dirname, '..', '..', '..', 'contract.json');

export function loadContract(): Contract {
  return JSON.parse(fs.readFileSync(CONTRACT_PATH, 'utf8')) as Contract;
}
