# CloudFront: segments from the origin bucket through Origin Access Control behind a trusted key
# group (signed cookies); manifest and key routes to the API, never cached; a CloudFront Function
# that checks a tenant's subdomain against its path prefix; `*.cdn.<domain>`; WAF; security headers.

locals {
  # AWS managed cache and origin request policies (fixed ids, documented by CloudFront).
  caching_optimized      = "658327ea-f89d-4fab-a63d-7e88639e58f6"
  caching_disabled       = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
  all_viewer_except_host = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
  api_domain             = aws_apigatewayv2_domain_name.origin.domain_name
  # Every API route is behind one of these: the API has no other way in.
  api_behaviours = {
    "/v1/manifests/*" = ["GET", "HEAD", "OPTIONS"]
    "/v1/keys/*"      = ["GET", "HEAD", "OPTIONS"]
    "/v1/licenses/*"  = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
    "/v1/content*"    = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
    "/v1/feeds*"      = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
    "/v1/monitors*"   = ["GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE"]
  }
}

resource "aws_cloudfront_public_key" "signing" {
  name        = "${var.prefix}-signing"
  comment     = "KMS-held CloudFront signing key"
  encoded_key = data.aws_kms_public_key.signing.public_key_pem
}

resource "aws_cloudfront_key_group" "viewers" {
  name  = "${var.prefix}-viewers"
  items = [aws_cloudfront_public_key.signing.id]
}

resource "aws_cloudfront_origin_access_control" "origin" {
  name                              = "${var.prefix}-origin"
  origin_access_control_origin_type = "s3"
  signing_behavior                  = "always"
  signing_protocol                  = "sigv4"
}

resource "aws_cloudfront_key_value_store" "tenant_hosts" {
  name    = "${var.prefix}-tenant-hosts"
  comment = "tenant host label -> tenant id"
}

resource "aws_cloudfront_function" "tenant_host" {
  name                         = "${var.prefix}-tenant-host"
  runtime                      = "cloudfront-js-2.0"
  comment                      = "refuse a tenant path on another tenant host"
  publish                      = true
  code                         = file("${path.module}/../shared/tenant-host.js")
  key_value_store_associations = [aws_cloudfront_key_value_store.tenant_hosts.arn]
}

resource "aws_cloudfront_response_headers_policy" "security" {
  name = "${var.prefix}-security-headers"
  security_headers_config {
    strict_transport_security {
      access_control_max_age_sec = 63072000
      include_subdomains         = true
      preload                    = true
      override                   = true
    }
    content_type_options {
      override = true
    }
    frame_options {
      frame_option = "DENY"
      override     = true
    }
    referrer_policy {
      referrer_policy = "no-referrer"
      override        = true
    }
    content_security_policy {
      content_security_policy = "default-src 'none'; frame-ancestors 'none'"
      override                = true
    }
  }
  cors_config {
    access_control_allow_credentials = true
    access_control_allow_headers {
      items = ["Authorization", "Range", "Content-Type", "Idempotency-Key"]
    }
    access_control_allow_methods {
      items = ["GET", "HEAD", "OPTIONS", "POST"]
    }
    access_control_allow_origins {
      items = [var.player_origin]
    }
    access_control_max_age_sec = 600
    origin_override            = true
  }
}

resource "aws_wafv2_web_acl" "cdn" {
  name  = "${var.prefix}-cdn"
  scope = "CLOUDFRONT"
  default_action {
    allow {}
  }
  dynamic "rule" {
    for_each = ["AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet", "AWSManagedRulesAmazonIpReputationList"]
    content {
      name     = rule.value
      priority = rule.key
      override_action {
        none {}
      }
      statement {
        managed_rule_group_statement {
          vendor_name = "AWS"
          name        = rule.value
        }
      }
      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = rule.value
        sampled_requests_enabled   = true
      }
    }
  }
  rule {
    name     = "RatePerIp"
    priority = 10
    action {
      block {}
    }
    statement {
      rate_based_statement {
        limit              = var.cdn_rate_limit
        aggregate_key_type = "IP"
      }
    }
    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "RatePerIp"
      sampled_requests_enabled   = true
    }
  }
  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.prefix}-cdn"
    sampled_requests_enabled   = true
  }
  # checkov:skip=CKV_AWS_192:AWSManagedRulesKnownBadInputsRuleSet is attached above (it covers Log4j); checkov does not see it through the dynamic block.
  # checkov:skip=CKV2_AWS_31:WAF logging goes to the account's central security logging, configured outside this stack.
}

resource "aws_cloudfront_distribution" "cdn" {
  enabled         = true
  comment         = "VaultStream encrypted HLS"
  aliases         = ["*.${local.cdn}"]
  http_version    = "http2and3"
  price_class     = "PriceClass_All"
  is_ipv6_enabled = true
  web_acl_id      = aws_wafv2_web_acl.cdn.arn

  viewer_certificate {
    acm_certificate_arn      = var.cdn_certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }

  # checkov:skip=CKV_AWS_86:Access logs go through standard logging v2 (aws_cloudwatch_log_delivery below) with chosen fields, so tokens in query strings and signed cookies are never logged; legacy logging_config cannot leave them out.

  origin {
    origin_id                = "origin"
    domain_name              = aws_s3_bucket.origin.bucket_regional_domain_name
    origin_access_control_id = aws_cloudfront_origin_access_control.origin.id
  }

  origin {
    origin_id   = "api"
    domain_name = local.api_domain
    custom_header {
      name  = "X-VaultStream-Origin-Verify"
      value = random_password.origin_verify.result
    }
    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
    }
  }

  default_cache_behavior {
    target_origin_id           = "origin"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["GET", "HEAD", "OPTIONS"]
    cached_methods             = ["GET", "HEAD"]
    cache_policy_id            = local.caching_optimized
    trusted_key_groups         = [aws_cloudfront_key_group.viewers.id]
    response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
    compress                   = false
    function_association {
      event_type   = "viewer-request"
      function_arn = aws_cloudfront_function.tenant_host.arn
    }
  }

  # Keys, licences and personalised playlists are per viewer: never cached.
  dynamic "ordered_cache_behavior" {
    for_each = ["/v1/manifests/*", "/v1/keys/*", "/v1/licenses/*", "/v1/content*"]
    content {
      path_pattern               = ordered_cache_behavior.value
      target_origin_id           = "api"
      viewer_protocol_policy     = "https-only"
      allowed_methods            = local.api_behaviours[ordered_cache_behavior.value]
      cached_methods             = ["GET", "HEAD"]
      cache_policy_id            = local.caching_disabled
      origin_request_policy_id   = local.all_viewer_except_host
      response_headers_policy_id = aws_cloudfront_response_headers_policy.security.id
      compress                   = true
    }
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }
  # checkov:skip=CKV_AWS_305:The CDN serves segments under tenant paths; there is no index page to default to.
  # checkov:skip=CKV2_AWS_47:The web ACL has AWSManagedRulesKnownBadInputsRuleSet (Log4j); checkov does not follow the dynamic rule block.
  # checkov:skip=CKV_AWS_374:Geo restrictions are a per-tenant licensing decision, not a platform default.
  # checkov:skip=CKV_AWS_310:A single S3 origin serves segments; failover would need a replicated origin bucket (not part of this deployment).
}

# Access logs through standard logging v2 with chosen fields: manifest and key URLs carry their
# tokens in the query string and the signed cookies are credentials, so neither the query string,
# the cookies nor the referer (a page URL with its query) is ever written.
resource "aws_cloudwatch_log_delivery_source" "cdn" {
  name         = "${var.prefix}-cdn-access"
  log_type     = "ACCESS_LOGS"
  resource_arn = aws_cloudfront_distribution.cdn.arn
}

resource "aws_cloudwatch_log_delivery_destination" "cdn" {
  name          = "${var.prefix}-cdn-access-s3"
  output_format = "w3c"
  delivery_destination_configuration {
    destination_resource_arn = "${aws_s3_bucket.access_logs.arn}/cloudfront"
  }
}

resource "aws_cloudwatch_log_delivery" "cdn" {
  delivery_source_name     = aws_cloudwatch_log_delivery_source.cdn.name
  delivery_destination_arn = aws_cloudwatch_log_delivery_destination.cdn.arn
  record_fields            = local.contract.cdn_access_log_fields
}
