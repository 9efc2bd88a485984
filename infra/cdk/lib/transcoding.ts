// AWS Batch for `vaultstream-transcode run`: GPU (g4dn/g5 on the NVIDIA ECS AMI, Spot first with
// on-demand fallback), CPU Spot (x86 and Graviton) and audio environments; a job queue each for
// video-GPU, video-CPU and audio; job definitions running the contract's command, and for the
// video kinds a chunked title's chunk and stitch definitions. A run or stitch job is one attempt:
// job_events retries exit 75 and Spot reclaims with backoff (never exit 65), counting attempts
// across resubmissions, which Batch's own retry strategy could not; a chunk child is retried by
// Batch alone, so a reclaim costs one chunk.
import { Aws } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TranscoderContract } from './contract';

export interface TranscodingProps {
  prefix: string;
  vpcId: string;
  subnetIds: string[];
  image: string;
  minWarmVcpus: number;
  maxVcpus: number;
  jobRole: iam.IRole;
  environment: Record<string, string>;
  contract: TranscoderContract;
}

/** The job queues' and job definitions' names, known before they exist (functions name them). */
export const JOB_KINDS = ['video-gpu', 'video-cpu', 'audio'] as const;
export type JobKind = (typeof JOB_KINDS)[number];
export const jobQueueName = (prefix: string, kind: JobKind) => `${prefix}-${kind}`;
export const jobDefinitionName = (prefix: string, kind: JobKind) => `${prefix}-${kind}`;
/** A video kind's chunked-title job definitions: `{prefix}-{kind}-chunk` and `-stitch`. */
export const chunkedJobDefinitionName = (prefix: string, kind: string, job: 'chunk' | 'stitch') => `${prefix}-${kind}-${job}`;

interface Environment {
  id: string;
  type: 'SPOT' | 'EC2';
  instanceTypes: string[];
  image: 'ECS_AL2023' | 'ECS_AL2023_NVIDIA';
  minvCpus: number;
}

export class Transcoding extends Construct {
  readonly queues: Record<'videoGpu' | 'videoCpu' | 'audio', batch.CfnJobQueue>;
  readonly jobDefinitions: batch.CfnJobDefinition[] = [];

  constructor(scope: Construct, id: string, props: TranscodingProps) {
    super(scope, id);
    const instanceRole = new iam.Role(this, 'InstanceRole', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonEC2ContainerServiceforEC2Role')],
    });
    const profile = new iam.CfnInstanceProfile(this, 'InstanceProfile', { roles: [instanceRole.roleName] });
    const securityGroup = new ec2.CfnSecurityGroup(this, 'Workers', {
      vpcId: props.vpcId,
      groupDescription: 'VaultStream transcode workers: no inbound, HTTPS out to S3, KMS, DynamoDB and ECR',
      securityGroupEgress: [{ ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0', description: 'HTTPS to AWS APIs' }],
    });

    // IMDSv2 only, one hop: the instance's own agents reach the metadata service, a job's
    // container (one hop further, behind the bridge) cannot, so it cannot borrow the instance
    // role; jobs get their own role's credentials from the ECS agent.
    const launchTemplate = new ec2.CfnLaunchTemplate(this, 'WorkerLaunchTemplate', {
      launchTemplateName: `${props.prefix}-workers`,
      launchTemplateData: { metadataOptions: { httpEndpoint: 'enabled', httpTokens: 'required', httpPutResponseHopLimit: 1 } },
    });
    const environment = (e: Environment) => new batch.CfnComputeEnvironment(this, e.id, {
      type: 'MANAGED',
      state: 'ENABLED',
      computeResources: {
        type: e.type,
        allocationStrategy: e.type === 'SPOT' ? 'SPOT_PRICE_CAPACITY_OPTIMIZED' : 'BEST_FIT_PROGRESSIVE',
        minvCpus: e.minvCpus,
        maxvCpus: props.maxVcpus,
        instanceTypes: e.instanceTypes,
        subnets: props.subnetIds,
        securityGroupIds: [securityGroup.attrGroupId],
        instanceRole: profile.attrArn,
        ec2Configuration: [{ imageType: e.image }],
        launchTemplate: { launchTemplateId: launchTemplate.ref, version: launchTemplate.attrLatestVersionNumber },
        tags: { Name: `${props.prefix}-${e.id}` },
      },
      replaceComputeEnvironment: false,
    });
    const gpuSpot = environment({ id: 'GpuSpot', type: 'SPOT', instanceTypes: ['g4dn', 'g5'], image: 'ECS_AL2023_NVIDIA', minvCpus: 0 });
    const gpuOnDemand = environment({ id: 'GpuOnDemand', type: 'EC2', instanceTypes: ['g4dn', 'g5'], image: 'ECS_AL2023_NVIDIA', minvCpus: 0 });
    // The warm workers live here: most sources are not 2160p, so the CPU queue takes them.
    const cpuX86 = environment({ id: 'CpuSpotX86', type: 'SPOT', instanceTypes: ['c6i', 'c7i'], image: 'ECS_AL2023', minvCpus: props.minWarmVcpus });
    const cpuArm = environment({ id: 'CpuSpotGraviton', type: 'SPOT', instanceTypes: ['c7g', 'c6g'], image: 'ECS_AL2023', minvCpus: 0 });
    const audio = environment({ id: 'AudioSpot', type: 'SPOT', instanceTypes: ['c7g.large', 'c6g.large'], image: 'ECS_AL2023', minvCpus: 0 });

    const queue = (qid: string, name: string, order: batch.CfnComputeEnvironment[]) => new batch.CfnJobQueue(this, qid, {
      jobQueueName: `${props.prefix}-${name}`,
      priority: 1,
      state: 'ENABLED',
      computeEnvironmentOrder: order.map((ce, i) => ({ order: i + 1, computeEnvironment: ce.attrComputeEnvironmentArn })),
    });
    this.queues = {
      videoGpu: queue('VideoGpuQueue', 'video-gpu', [gpuSpot, gpuOnDemand]),
      videoCpu: queue('VideoCpuQueue', 'video-cpu', [cpuX86, cpuArm]),
      audio: queue('AudioQueue', 'audio', [audio]),
    };

    // One attempt for run and stitch: job_events retries them. A chunk child is retried alone by
    // Batch, as the contract's rules say (exit 75, a lost Spot host).
    const chunking = props.contract.chunking;
    const retryOf = (job?: 'chunk' | 'stitch'): batch.CfnJobDefinition.RetryStrategyProperty => {
      if (!job || chunking.jobs[job].retry.evaluate_on_exit.length === 0) return { attempts: job ? chunking.jobs[job].retry.attempts : 1 };
      return {
        attempts: chunking.jobs[job].retry.attempts,
        evaluateOnExit: chunking.jobs[job].retry.evaluate_on_exit.map((rule) => ({
          action: rule.action, onExitCode: rule.on_exit_code, onStatusReason: rule.on_status_reason, onReason: rule.on_reason,
        })),
      };
    };
    const definition = (did: string, name: string, vcpus: number, memoryMiB: number, gpus: number, timeoutSeconds: number, job?: 'chunk' | 'stitch') => {
      const resourceRequirements = [{ type: 'VCPU', value: String(vcpus) }, { type: 'MEMORY', value: String(memoryMiB) }];
      if (gpus > 0) resourceRequirements.push({ type: 'GPU', value: String(gpus) });
      const def = new batch.CfnJobDefinition(this, did, {
        jobDefinitionName: `${props.prefix}-${name}`,
        type: 'container',
        platformCapabilities: ['EC2'],
        propagateTags: true,
        timeout: { attemptDurationSeconds: timeoutSeconds },
        retryStrategy: retryOf(job),
        parameters: props.contract.parameters,
        containerProperties: {
          image: props.image,
          jobRoleArn: props.jobRole.roleArn,
          command: job ? chunking.jobs[job].command : props.contract.command,
          resourceRequirements,
          environment: Object.entries({ ...props.environment, ...chunkedEnvironment(name), AWS_REGION: Aws.REGION }).sort().map(([name, value]) => ({ name, value })),
          readonlyRootFilesystem: false,
          privileged: false,
          user: '10001',
          logConfiguration: { logDriver: 'awslogs' },
        },
      });
      this.jobDefinitions.push(def);
      return def;
    };
    // A kind's jobs know its chunked-title definitions (empty for kinds that never split).
    const chunkedEnvironment = (name: string) => {
      const kind = name.replace(/-(chunk|stitch)$/, '');
      const splits = chunking.kinds.includes(kind);
      return {
        VAULTSTREAM_CHUNK_SECONDS: chunking.chunk_seconds,
        VAULTSTREAM_CHUNK_JOB_DEFINITION: splits ? chunkedJobDefinitionName(props.prefix, kind, 'chunk') : '',
        VAULTSTREAM_STITCH_JOB_DEFINITION: splits ? chunkedJobDefinitionName(props.prefix, kind, 'stitch') : '',
      };
    };
    const kinds: [string, string, number, number, number, number][] = [
      ['VideoGpu', 'video-gpu', 4, 15000, 1, 4 * 3600],
      ['VideoCpu', 'video-cpu', 4, 7500, 0, 8 * 3600],
      ['Audio', 'audio', 1, 1900, 0, 3600],
    ];
    for (const [id, name, vcpus, memory, gpus, timeout] of kinds) {
      definition(`${id}Job`, name, vcpus, memory, gpus, timeout);
      if (!chunking.kinds.includes(name)) continue;
      definition(`${id}ChunkJob`, `${name}-chunk`, vcpus, memory, gpus, timeout, 'chunk');
      definition(`${id}StitchJob`, `${name}-stitch`, vcpus, memory, gpus, timeout, 'stitch');
    }
  }
}
