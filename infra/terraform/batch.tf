# AWS Batch for `vaultstream-transcode run`: GPU (g4dn/g5 on the NVIDIA ECS AMI, Spot first with
# on-demand fallback), CPU Spot (x86 and Graviton) and audio environments; a job queue each for
# video-GPU, video-CPU and audio; job definitions running the contract's command. Each job is one
# attempt: job_events retries exit 75 and Spot reclaims with backoff (never exit 65), counting
# attempts across resubmissions, which Batch's own retry strategy could not.

data "aws_iam_policy_document" "ec2_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "batch_instance" {
  name_prefix        = "${var.prefix}-batch-instance-"
  assume_role_policy = data.aws_iam_policy_document.ec2_assume.json
}

resource "aws_iam_role_policy_attachment" "batch_instance" {
  role       = aws_iam_role.batch_instance.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
}

resource "aws_iam_instance_profile" "batch_instance" {
  name_prefix = "${var.prefix}-batch-"
  role        = aws_iam_role.batch_instance.name
}

resource "aws_security_group" "workers" {
  name_prefix = "${var.prefix}-workers-"
  vpc_id      = var.vpc_id
  description = "VaultStream transcode workers: no inbound, HTTPS out to S3, KMS, DynamoDB and ECR"
  egress {
    description = "HTTPS to AWS APIs"
    protocol    = "tcp"
    from_port   = 443
    to_port     = 443
    cidr_blocks = ["0.0.0.0/0"]
  }
  # checkov:skip=CKV_AWS_382:Workers reach S3, KMS, DynamoDB and ECR over HTTPS only; the subnets' routing limits where.
}

locals {
  compute_environments = {
    gpu_spot      = { type = "SPOT", instance_types = ["g4dn", "g5"], image = "ECS_AL2023_NVIDIA", min_vcpus = 0 }
    gpu_on_demand = { type = "EC2", instance_types = ["g4dn", "g5"], image = "ECS_AL2023_NVIDIA", min_vcpus = 0 }
    # The warm workers live here: most sources are not 2160p, so the CPU queue takes them.
    cpu_spot_x86      = { type = "SPOT", instance_types = ["c6i", "c7i"], image = "ECS_AL2023", min_vcpus = var.min_warm_vcpus }
    cpu_spot_graviton = { type = "SPOT", instance_types = ["c7g", "c6g"], image = "ECS_AL2023", min_vcpus = 0 }
    audio_spot        = { type = "SPOT", instance_types = ["c7g.large", "c6g.large"], image = "ECS_AL2023", min_vcpus = 0 }
  }
  job_queues = {
    video-gpu = ["gpu_spot", "gpu_on_demand"]
    video-cpu = ["cpu_spot_x86", "cpu_spot_graviton"]
    audio     = ["audio_spot"]
  }
  job_definitions = {
    video-gpu = { vcpus = 4, memory = 15000, gpus = 1, timeout = 4 * 3600 }
    video-cpu = { vcpus = 4, memory = 7500, gpus = 0, timeout = 8 * 3600 }
    audio     = { vcpus = 1, memory = 1900, gpus = 0, timeout = 3600 }
  }
}

# IMDSv2 only, one hop: the instance's own agents reach the metadata service, a job's container
# (one hop further, behind the bridge) cannot, so it cannot borrow the instance role; jobs get
# their own role's credentials from the ECS agent.
resource "aws_launch_template" "workers" {
  name = "${var.prefix}-workers"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
}

resource "aws_batch_compute_environment" "all" {
  for_each = local.compute_environments
  name     = "${var.prefix}-${replace(each.key, "_", "-")}"
  type     = "MANAGED"
  state    = "ENABLED"
  compute_resources {
    type                = each.value.type
    allocation_strategy = each.value.type == "SPOT" ? "SPOT_PRICE_CAPACITY_OPTIMIZED" : "BEST_FIT_PROGRESSIVE"
    min_vcpus           = each.value.min_vcpus
    max_vcpus           = var.max_vcpus
    instance_type       = each.value.instance_types
    subnets             = var.subnet_ids
    security_group_ids  = [aws_security_group.workers.id]
    instance_role       = aws_iam_instance_profile.batch_instance.arn
    ec2_configuration {
      image_type = each.value.image
    }
    launch_template {
      launch_template_id = aws_launch_template.workers.id
      version            = aws_launch_template.workers.latest_version
    }
    tags = { Name = "${var.prefix}-${each.key}" }
  }
}

resource "aws_batch_job_queue" "all" {
  for_each = local.job_queues
  name     = "${var.prefix}-${each.key}"
  state    = "ENABLED"
  priority = 1
  dynamic "compute_environment_order" {
    for_each = each.value
    content {
      order               = compute_environment_order.key + 1
      compute_environment = aws_batch_compute_environment.all[compute_environment_order.value].arn
    }
  }
}

# Every job definition: a kind's run job, and for the video kinds a chunked title's chunk (an
# array child, retried alone by Batch as the contract's rules say) and stitch. Run and stitch
# jobs are one attempt each: job_events retries them with backoff.
locals {
  chunking = local.contract.transcoder.chunking
  all_job_definitions = merge(
    { for kind, spec in local.job_definitions : kind => merge(spec, { kind = kind, job = "run" }) },
    { for pair in setproduct(local.chunking.kinds, keys(local.chunking.jobs)) :
      "${pair[0]}-${pair[1]}" => merge(local.job_definitions[pair[0]], { kind = pair[0], job = pair[1] })
    },
  )
}

resource "aws_batch_job_definition" "all" {
  for_each              = local.all_job_definitions
  name                  = "${var.prefix}-${each.key}"
  type                  = "container"
  platform_capabilities = ["EC2"]
  propagate_tags        = true
  parameters            = local.contract.transcoder.parameters
  timeout {
    attempt_duration_seconds = each.value.timeout
  }
  retry_strategy {
    attempts = each.value.job == "run" ? 1 : local.chunking.jobs[each.value.job].retry.attempts
    dynamic "evaluate_on_exit" {
      for_each = each.value.job == "run" ? [] : local.chunking.jobs[each.value.job].retry.evaluate_on_exit
      content {
        action           = evaluate_on_exit.value.action
        on_exit_code     = lookup(evaluate_on_exit.value, "on_exit_code", null)
        on_status_reason = lookup(evaluate_on_exit.value, "on_status_reason", null)
        on_reason        = lookup(evaluate_on_exit.value, "on_reason", null)
      }
    }
  }
  container_properties = jsonencode({
    image      = var.transcoder_image
    jobRoleArn = aws_iam_role.transcoder.arn
    command    = each.value.job == "run" ? local.contract.transcoder.command : local.chunking.jobs[each.value.job].command
    resourceRequirements = concat(
      [{ type = "VCPU", value = tostring(each.value.vcpus) }, { type = "MEMORY", value = tostring(each.value.memory) }],
      each.value.gpus > 0 ? [{ type = "GPU", value = tostring(each.value.gpus) }] : []
    )
    environment            = [for k, v in merge(local.transcoder_env, local.chunked_env[each.value.kind], { AWS_REGION = local.region }) : { name = k, value = v }]
    readonlyRootFilesystem = false
    privileged             = false
    user                   = "10001"
    logConfiguration       = { logDriver = "awslogs" }
  })
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "transcoder" {
  name_prefix        = "${var.prefix}-transcoder-"
  description        = "VaultStream transcode jobs: only assuming the tenant role and calling the DRM key provider (infra/contract.json)"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

# A transcode job acts for one tenant: its own role may only assume this one, tagging the session
# with the job's tenant, and every permission here is bounded by that tag.
data "aws_iam_policy_document" "transcoder_tenant_assume" {
  statement {
    sid     = "TranscodeJobsActForOneTenant"
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.transcoder.arn]
    }
    condition {
      test     = "StringLike"
      variable = "aws:RequestTag/${local.tenant_tag}"
      values   = ["?*"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = [local.tenant_tag]
    }
  }
}

resource "aws_iam_role" "transcoder_tenant" {
  name_prefix          = "${var.prefix}-transcoder-tenant-"
  description          = "VaultStream transcode jobs acting for one tenant: every permission bounded by the session tag"
  assume_role_policy   = data.aws_iam_policy_document.transcoder_tenant_assume.json
  max_session_duration = 3600
}

# The job role's grants (assuming the tenant role, calling the DRM vendor's SPEKE API) and the
# tenant role's, from the contract.
data "aws_iam_policy_document" "transcoder" {
  for_each = {
    job    = local.contract.transcoder.permissions
    tenant = local.contract.transcoder.tenant_permissions
  }
  dynamic "statement" {
    for_each = each.value
    content {
      sid       = join("", [for part in split("_", statement.key) : title(part)])
      actions   = statement.value
      resources = local.grantable[statement.key].arns
      dynamic "condition" {
        for_each = local.grantable[statement.key].conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_iam_role_policy" "transcoder" {
  role   = aws_iam_role.transcoder.id
  policy = data.aws_iam_policy_document.transcoder["job"].json
}

resource "aws_iam_role_policy" "transcoder_tenant" {
  role   = aws_iam_role.transcoder_tenant.id
  policy = data.aws_iam_policy_document.transcoder["tenant"].json
}

locals {
  transcoder_env = {
    VAULTSTREAM_SOURCE_BUCKET         = aws_s3_bucket.source.bucket
    VAULTSTREAM_ORIGIN_BUCKET         = aws_s3_bucket.origin.bucket
    VAULTSTREAM_CONTENT_TABLE         = aws_dynamodb_table.content.name
    VAULTSTREAM_AUDIT_TABLE           = aws_dynamodb_table.audit.name
    VAULTSTREAM_AUDIT_SHARDS          = "4"
    VAULTSTREAM_CONTENT_KEY_ID        = aws_kms_key.content.arn
    VAULTSTREAM_PRICE_PER_VCPU_SECOND = var.price_per_vcpu_second
    VAULTSTREAM_TENANT_ROLE_ARN       = aws_iam_role.transcoder_tenant.arn
    VAULTSTREAM_SPEKE_URL             = var.speke_url
    VAULTSTREAM_SPEKE_AUTH            = var.speke_auth
    VAULTSTREAM_DRM_SYSTEMS           = var.drm_systems
  }
  # A kind's chunked-title settings (empty definitions for kinds that never split).
  chunked_env = { for kind in keys(local.job_definitions) : kind => {
    VAULTSTREAM_CHUNK_SECONDS         = local.chunking.chunk_seconds
    VAULTSTREAM_CHUNK_JOB_DEFINITION  = contains(local.chunking.kinds, kind) ? "${var.prefix}-${kind}-chunk" : ""
    VAULTSTREAM_STITCH_JOB_DEFINITION = contains(local.chunking.kinds, kind) ? "${var.prefix}-${kind}-stitch" : ""
  } }
}
