// cdk-nag's AWS Solutions checks, with every suppression justified where it applies.
import { Stack } from 'aws-cdk-lib';
import { NagSuppressions } from 'cdk-nag';

export function justifyFindings(stack: Stack): void {
  NagSuppressions.addStackSuppressions(stack, [
    {
      id: 'AwsSolutions-IAM5',
      reason: 'Wildcards only where IAM has no narrower resource: X-Ray trace segments (no resource-level permissions), ' +
        'objects under a bucket or prefix (segments and uploads are many keys; the tenant prefix of a transcode job, and of its chunked titles\' chunks; the captions folder of every title), key policies (Resource "*" means this key), ' +
        'the ledger resource policy (a table policy cannot name its own ARN; "*" is the table), and every revision of our own ' +
        'job definitions (SubmitJob names the definition by name; its revision number changes with each deploy), ' +
        'the drop zones (drop/ of the source bucket: every tenant\'s folder, narrowed to one per login by ftp_auth\'s session policy), ' +
        'the quarantine (quarantine/ of the source bucket: where drop_zone copies the uploads of sessions that had ended), ' +
        'the GCS monitors\' service account keys (one secret per monitor, named {prefix}/monitors/{tenant}/{monitor} when a tenant connects a bucket), ' +
        'and customers\' roles for S3 monitors (in accounts VaultStream learns when a tenant connects a bucket; never this account, by condition; each role demands its monitor\'s external id).',
      appliesTo: [
        'Resource::*',
        { regex: '/^Resource::<StorageOrigin[A-Za-z0-9]+\\.Arn>\\/\\*$/' },
        { regex: '/^Resource::<StorageOrigin[A-Za-z0-9]+\\.Arn>\\/\\*\\/\\*\\/captions\\/\\*$/' },
        { regex: '/^Resource::<StorageSource[A-Za-z0-9]+\\.Arn>\\/source\\/\\*$/' },
        { regex: '/^Resource::<StorageSource[A-Za-z0-9]+\\.Arn>\\/drop\\/\\*$/' },
        { regex: '/^Resource::<StorageSource[A-Za-z0-9]+\\.Arn>\\/quarantine\\/\\*$/' },
        { regex: '/^Resource::<StorageSource[A-Za-z0-9]+\\.Arn>\\/source\\/<aws:PrincipalTag\\/tenant>\\/\\*$/' },
        { regex: '/^Resource::<StorageSource[A-Za-z0-9]+\\.Arn>\\/chunks\\/<aws:PrincipalTag\\/tenant>\\/\\*$/' },
        { regex: '/^Resource::<StorageOrigin[A-Za-z0-9]+\\.Arn>\\/<aws:PrincipalTag\\/tenant>\\/\\*$/' },
        { regex: '/^Resource::<StorageAuditArchive[A-Za-z0-9]+\\.Arn>\\/(ledger|audit-digests)\\/\\*$/' },
        { regex: '/^Resource::arn:<AWS::Partition>:batch:<AWS::Region>:<AWS::AccountId>:job-definition\\/[a-z0-9-]+:\\*$/' },
        { regex: '/^Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:[a-z0-9-]+\\/monitors\\/\\*$/' },
        'Resource::arn:<AWS::Partition>:iam::*:role/*',
      ],
    },
    {
      id: 'AwsSolutions-IAM4',
      reason: 'Batch container instances need the ECS agent policy AWS maintains for them (AmazonEC2ContainerServiceforEC2Role); it grants no data access.',
      appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role'],
    },
    { id: 'AwsSolutions-SMG4', reason: 'The service secret roots every outstanding playback and key token; it is rotated by a planned re-key (README: Operations), not on a schedule that would cut viewers off. The origin-verify value must change in CloudFront and the functions together, so it is replaced by a deploy (README: Deploying), not by a rotation Lambda.' },
    { id: 'AwsSolutions-APIG4', reason: 'Manifest and key routes authorise with a signed, session-bound token in the URL (checked by the function, audited); the playback route uses the Lambda authorizer.' },
    { id: 'AwsSolutions-KDF1', reason: 'Firehose server-side encryption exists only for Direct PUT sources; this stream reads the KMS-encrypted ledger change stream and writes to the encrypted archive bucket.' },
    { id: 'AwsSolutions-CFR3', reason: 'Access logs go through CloudFront standard logging v2 (AWS::Logs::Delivery) with chosen fields, so tokens in query strings and signed cookies are never logged; the legacy logging this rule looks for cannot leave them out.' },
    { id: 'AwsSolutions-CFR1', reason: 'Geo restrictions are a per-tenant licensing decision, not a platform default.' },
    { id: 'AwsSolutions-L1', reason: 'The functions run provided.al2023 (the current OS-only runtime); the public-key reader runs the newest Node.js runtime this CDK version knows.' },
  ]);
}
