// The operators' view, built from infra/contract.json's `observability` section: one dashboard
// (per-function RED, key-delivery latency, grants and denials, queues and dead letters, Batch
// jobs, the transcode realtime factor, output and cost) and the alarms, whose actions go to the
// SNS topic given as an input. Terraform builds the same from the same section.
import { Aws, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import { Construct } from 'constructs';
import { AlarmContract, MetricLine, ObservabilityContract } from './contract';

export interface ObservabilityProps {
  prefix: string;
  functions: string[];
  contract: ObservabilityContract;
  alarmTopicArn: string;
}

/** `{prefix}` and `{function}` filled in. */
function fill(text: string, prefix: string, fn = ''): string {
  return text.split('{prefix}').join(prefix).split('{function}').join(fn);
}

function lines(metrics: MetricLine[], forEachFunction: boolean | undefined, prefix: string, functions: string[]): MetricLine[] {
  const fns = forEachFunction ? functions : [''];
  return fns.flatMap((fn) =>
    metrics.map(([namespace, name, dims, stat]): MetricLine => [
      namespace,
      name,
      Object.fromEntries(Object.entries(dims).map(([k, v]) => [k, fill(v, prefix, fn)])),
      stat,
    ]));
}

/** A dashboard line: namespace, name, then each dimension's name and value, then the rendering. */
function dashboardLine([namespace, name, dims, stat]: MetricLine): unknown[] {
  const label = Object.values(dims).join(' ') || name;
  return [namespace, name, ...Object.entries(dims).flat(), { stat, label: `${label} ${stat}` }];
}

export class Observability extends Construct {
  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    const { prefix, functions, contract } = props;
    const dashboard = contract.dashboard;
    const widgets = dashboard.widgets.map((w, i) => ({
      type: 'metric',
      x: (i % 2) * 12,
      y: Math.floor(i / 2) * 6,
      width: 12,
      height: 6,
      properties: {
        title: w.title,
        region: Aws.REGION,
        view: 'timeSeries',
        stacked: false,
        period: dashboard.period_s,
        metrics: lines(w.metrics, w.for_each_function, prefix, functions).map(dashboardLine),
      },
    }));
    new cloudwatch.CfnDashboard(this, 'Dashboard', {
      dashboardName: fill(dashboard.name, prefix),
      dashboardBody: Stack.of(this).toJsonString({ widgets }),
    });

    const alarms: [AlarmContract, string][] = contract.alarms.flatMap((a) => (a.for_each_function ? functions : ['']).map((fn): [AlarmContract, string] => [a, fn]));
    for (const [alarm, fn] of alarms) {
      const name = fill(alarm.name, prefix, fn);
      const queries: cloudwatch.CfnAlarm.MetricDataQueryProperty[] = Object.entries(alarm.metrics).map(([queryId, [namespace, metricName, dims, stat]]) => ({
        id: queryId,
        returnData: alarm.expression === undefined,
        metricStat: {
          metric: { namespace, metricName, dimensions: Object.entries(dims).map(([n, v]) => ({ name: n, value: fill(v, prefix, fn) })) },
          period: alarm.period_s,
          stat,
        },
      }));
      if (alarm.expression !== undefined) {
        queries.push({ id: 'alarm', expression: alarm.expression, label: name, returnData: true });
      }
      new cloudwatch.CfnAlarm(this, `Alarm${name.replace(/[^A-Za-z0-9]/g, '')}`, {
        alarmName: name,
        alarmDescription: fill(alarm.description, prefix, fn),
        metrics: queries,
        evaluationPeriods: alarm.evaluation_periods,
        datapointsToAlarm: alarm.evaluation_periods,
        comparisonOperator: alarm.comparison,
        threshold: alarm.threshold,
        treatMissingData: 'notBreaching',
        alarmActions: [props.alarmTopicArn],
        okActions: [props.alarmTopicArn],
      });
    }
  }
}

