# The operators' view, built from infra/contract.json's `observability` section as CDK builds it:
# one dashboard (per-function RED, key-delivery latency, grants and denials, queues and dead
# letters, Batch jobs, the transcode realtime factor, output and cost) and the alarms, whose
# actions go to var.alarm_topic_arn. In the contract's names and dimension values, {prefix} is
# var.prefix and {function} each function where `for_each_function` is true.

locals {
  observability  = local.contract.observability
  function_names = keys(local.contract.functions)

  dashboard_widgets = [
    for i, w in local.observability.dashboard.widgets : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title   = w.title
        region  = local.region
        view    = "timeSeries"
        stacked = false
        period  = local.observability.dashboard.period_s
        metrics = concat([
          for fn in(try(w.for_each_function, false) ? local.function_names : [""]) : [
            for line in w.metrics : concat(
              [line[0], line[1]],
              flatten([for k, v in line[2] : [k, replace(replace(v, "{prefix}", var.prefix), "{function}", fn)]]),
              [{ stat = line[3], label = "${trimspace(join(" ", [for k, v in line[2] : replace(replace(v, "{prefix}", var.prefix), "{function}", fn)]))} ${line[3]}" }],
            )
          ]
        ]...)
      }
    }
  ]

  alarms = merge([
    for a in local.observability.alarms : {
      for fn in(try(a.for_each_function, false) ? local.function_names : [""]) :
      replace(replace(a.name, "{prefix}", var.prefix), "{function}", fn) => { alarm = a, function = fn }
    }
  ]...)
}

resource "aws_cloudwatch_dashboard" "contract" {
  dashboard_name = replace(local.observability.dashboard.name, "{prefix}", var.prefix)
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}

resource "aws_cloudwatch_metric_alarm" "contract" {
  for_each            = local.alarms
  alarm_name          = each.key
  alarm_description   = replace(replace(each.value.alarm.description, "{prefix}", var.prefix), "{function}", each.value.function)
  comparison_operator = each.value.alarm.comparison
  evaluation_periods  = each.value.alarm.evaluation_periods
  datapoints_to_alarm = each.value.alarm.evaluation_periods
  threshold           = each.value.alarm.threshold
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]

  dynamic "metric_query" {
    for_each = each.value.alarm.metrics
    content {
      id          = metric_query.key
      return_data = try(each.value.alarm.expression, null) == null
      metric {
        namespace   = metric_query.value[0]
        metric_name = metric_query.value[1]
        dimensions  = { for k, v in metric_query.value[2] : k => replace(replace(v, "{prefix}", var.prefix), "{function}", each.value.function) }
        period      = each.value.alarm.period_s
        stat        = metric_query.value[3]
      }
    }
  }

  # A metric-math alarm: the expression over the queries above is what is compared.
  dynamic "metric_query" {
    for_each = try(each.value.alarm.expression, null) == null ? [] : [each.value.alarm.expression]
    content {
      id          = "alarm"
      expression  = metric_query.value
      label       = each.key
      return_data = true
    }
  }
}
