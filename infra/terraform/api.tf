# The HTTP API: the contract's routes, the Lambda authorizer on the routes that need a session,
# stage-wide throttling and access logs.

# Only through CloudFront (and its WAF): no execute-api endpoint, and the functions refuse
# requests without CloudFront's origin-verify header.
resource "aws_apigatewayv2_api" "http" {
  name                         = "${var.prefix}-api"
  protocol_type                = "HTTP"
  description                  = "VaultStream viewer and creator API"
  disable_execute_api_endpoint = true
}

# The custom domain CloudFront reaches the API at; its DNS record (a CNAME to the
# api_origin_dns_target output) is the operator's.
resource "aws_apigatewayv2_domain_name" "origin" {
  domain_name = "api-origin.${local.cdn}"
  domain_name_configuration {
    certificate_arn = var.cdn_certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "origin" {
  api_id      = aws_apigatewayv2_api.http.id
  domain_name = aws_apigatewayv2_domain_name.origin.id
  stage       = aws_apigatewayv2_stage.default.id
}

resource "aws_cloudwatch_log_group" "api_access" {
  name_prefix       = "/aws/apigateway/${var.prefix}-"
  retention_in_days = 365
  # checkov:skip=CKV_AWS_158:Access logs carry request ids, routes and statuses, no tokens; the AWS managed key encrypts them.
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true
  default_route_settings {
    throttling_rate_limit    = 200
    throttling_burst_limit   = 400
    detailed_metrics_enabled = true
  }
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api_access.arn
    format = jsonencode({
      requestId       = "$context.requestId"
      ip              = "$context.identity.sourceIp"
      method          = "$context.httpMethod"
      route           = "$context.routeKey"
      status          = "$context.status"
      latency         = "$context.responseLatency"
      authorizerError = "$context.authorizer.error"
    })
  }
}

resource "aws_apigatewayv2_authorizer" "session" {
  api_id                            = aws_apigatewayv2_api.http.id
  name                              = "session"
  authorizer_type                   = "REQUEST"
  authorizer_payload_format_version = "2.0"
  enable_simple_responses           = true
  identity_sources                  = ["$request.header.Authorization"]
  # No caching: a revoked session must stop working on its next request.
  authorizer_result_ttl_in_seconds = 0
  authorizer_uri                   = aws_lambda_function.function["authorizer"].invoke_arn
}

resource "aws_lambda_permission" "authorizer" {
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function["authorizer"].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/authorizers/${aws_apigatewayv2_authorizer.session.id}"
}

locals {
  routed_functions = toset([for r in local.contract.routes : r.function])
  routes           = { for r in local.contract.routes : r.route => r }
}

resource "aws_apigatewayv2_integration" "function" {
  for_each               = local.routed_functions
  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.function[each.key].invoke_arn
  payload_format_version = "2.0"
  timeout_milliseconds   = 10000
}

resource "aws_lambda_permission" "route" {
  for_each      = local.routed_functions
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.function[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

resource "aws_apigatewayv2_route" "route" {
  for_each           = local.routes
  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.function[each.value.function].id}"
  authorization_type = each.value.authorizer ? "CUSTOM" : "NONE"
  authorizer_id      = each.value.authorizer ? aws_apigatewayv2_authorizer.session.id : null
  # checkov:skip=CKV_AWS_309:Manifest and key routes authorise with a signed, session-bound token in the URL (checked by the function, audited); the playback route uses the Lambda authorizer.
}
