# KMS keys and the token secret. Key policies name every principal that may use a key: only the
# transcoder (its tenant session, for that tenant's content only) generates content keys and only key delivery decrypts them, both bound to the
# {tenant, content_id} encryption context. No statement grants kms:*.

locals {
  key_admin_actions = [
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
    "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
    "kms:EnableKey", "kms:DisableKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias",
  ]
  context_keys = local.contract.kms_encryption_context_keys
}

data "aws_iam_policy_document" "content_key" {
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key; each statement names its principal (and conditions).
  # checkov:skip=CKV_AWS_356:As above: in a key policy "*" cannot mean any other resource.
  statement {
    sid       = "KeyAdministration"
    actions   = local.key_admin_actions
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  # Only the transcoder generates (and, for a rerun, reuses) and only key delivery decrypts, each
  # bound to one content item.
  dynamic "statement" {
    for_each = {
      TranscoderGeneratesAndReusesContentKeys = { actions = ["kms:Decrypt", "kms:GenerateDataKey"], role = aws_iam_role.transcoder_tenant.arn, conditions = local.tenant_key_conditions }
      KeyDeliveryDecryptsContentKeys          = { actions = ["kms:Decrypt"], role = aws_iam_role.function["key_delivery"].arn, conditions = local.context_conditions }
    }
    content {
      sid       = statement.key
      actions   = statement.value.actions
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value.role]
      }
      dynamic "condition" {
        for_each = statement.value.conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }
}

resource "aws_kms_key" "content" {
  description         = "VaultStream content keys: GenerateDataKey by the transcoder, Decrypt by key delivery, per {tenant, content_id}"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.content_key.json
}

resource "aws_kms_alias" "content" {
  name          = "alias/${var.prefix}-content-keys"
  target_key_id = aws_kms_key.content.key_id
}

data "aws_iam_policy_document" "origin_key" {
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key; each statement names its principal (and conditions).
  # checkov:skip=CKV_AWS_356:As above: in a key policy "*" cannot mean any other resource.
  statement {
    sid       = "KeyAdministration"
    actions   = local.key_admin_actions
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "TranscoderWritesOrigin"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.transcoder_tenant.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "ManifestReadsOrigin"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["manifest"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "CaptionsWriteOrigin"
    actions   = ["kms:GenerateDataKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["captions"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
  # Same scope as the CDK stack: this account's distributions; the bucket policy admits only ours.
  statement {
    sid       = "CloudFrontDecryptsSegments"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudfront.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "AWS:SourceArn"
      values   = ["arn:${local.partition}:cloudfront::${local.account}:distribution/*"]
    }
  }
}

resource "aws_kms_key" "origin" {
  description         = "VaultStream origin bucket encryption (SSE-KMS); CloudFront decrypts through OAC"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.origin_key.json
}

resource "aws_kms_alias" "origin" {
  name          = "alias/${var.prefix}-origin-storage"
  target_key_id = aws_kms_key.origin.key_id
}

data "aws_iam_policy_document" "signing_key" {
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key; each statement names its principal (and conditions).
  # checkov:skip=CKV_AWS_356:As above: in a key policy "*" cannot mean any other resource.
  statement {
    sid       = "KeyAdministration"
    actions   = local.key_admin_actions
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "PlaybackSignsCookies"
    actions   = ["kms:GetPublicKey", "kms:Sign"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["playback"].arn]
    }
  }
}

resource "aws_kms_key" "signing" {
  description              = "VaultStream CloudFront signed-cookie key; the private half never leaves KMS"
  customer_master_key_spec = "RSA_2048"
  key_usage                = "SIGN_VERIFY"
  policy                   = data.aws_iam_policy_document.signing_key.json
}

resource "aws_kms_alias" "signing" {
  name          = "alias/${var.prefix}-cloudfront-signing"
  target_key_id = aws_kms_key.signing.key_id
}

# Terraform reads the public half directly (CDK uses a small custom resource for the same).
data "aws_kms_public_key" "signing" {
  key_id = aws_kms_key.signing.arn
}

# Audit digests: only the audit_digest function signs; anyone in the account may read the public
# half and verify.
data "aws_iam_policy_document" "audit_digest_key" {
  # checkov:skip=CKV_AWS_111:A key policy's Resource "*" is this key; each statement names its principal (and conditions).
  # checkov:skip=CKV_AWS_356:As above: in a key policy "*" cannot mean any other resource.
  statement {
    sid       = "KeyAdministration"
    actions   = local.key_admin_actions
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "AccountVerifiesDigests"
    actions   = ["kms:GetPublicKey", "kms:Verify"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  statement {
    sid       = "DigestWriterSigns"
    actions   = ["kms:GetPublicKey", "kms:Sign"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["audit_digest"].arn]
    }
  }
}

resource "aws_kms_key" "audit_digest" {
  description              = "VaultStream audit digest signatures; only the audit_digest function signs"
  customer_master_key_spec = "ECC_NIST_P256"
  key_usage                = "SIGN_VERIFY"
  policy                   = data.aws_iam_policy_document.audit_digest_key.json
}

resource "aws_kms_alias" "audit_digest" {
  name          = "alias/${var.prefix}-audit-digest"
  target_key_id = aws_kms_key.audit_digest.key_id
}

# Generated at apply time and written to Secrets Manager through a write-only argument: the value
# never enters the plan or the state. 64 characters from 0-9a-f: 32 bytes as hex.
ephemeral "random_password" "service_secret" {
  length           = 64
  upper            = false
  lower            = false
  numeric          = true
  special          = true
  override_special = "abcdef"
}

resource "aws_secretsmanager_secret" "service" {
  name        = "${var.prefix}-service-secret"
  description = "VaultStream service secret: root of the playback and key token MACs (64 hex characters)"
  # checkov:skip=CKV2_AWS_57:The secret roots every outstanding playback and key token; it is rotated by a planned re-key (README: Operations), not on a schedule that would cut viewers off.
  # checkov:skip=CKV_AWS_149:Encrypted with the AWS managed Secrets Manager key; only the three HTTP functions may read it.
}

resource "aws_secretsmanager_secret_version" "service" {
  secret_id                = aws_secretsmanager_secret.service.id
  secret_string_wo         = ephemeral.random_password.service_secret.result
  secret_string_wo_version = var.service_secret_version
}

# CloudFront sends it to the API on every request; the functions refuse requests without it.
# Unlike the service secret it must sit in the distribution's configuration, so it is in the state
# either way; it guards the route around the WAF, not any content.
resource "random_password" "origin_verify" {
  length  = 48
  special = false
}

resource "aws_secretsmanager_secret" "origin_verify" {
  name        = "${var.prefix}-origin-verify"
  description = "VaultStream origin-verify header value: requests without it did not come through CloudFront"
  # checkov:skip=CKV2_AWS_57:Rotating it needs CloudFront and the functions to change together; replace it by tainting random_password.origin_verify and applying.
  # checkov:skip=CKV_AWS_149:Encrypted with the AWS managed Secrets Manager key; only the HTTP functions may read it.
}

resource "aws_secretsmanager_secret_version" "origin_verify" {
  secret_id     = aws_secretsmanager_secret.origin_verify.id
  secret_string = random_password.origin_verify.result
}
