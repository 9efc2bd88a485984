// The HTTP API: the contract's routes, the Lambda authorizer on the routes that need a session,
// stage-wide throttling and access logs.
import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { Contract } from './contract';

export interface ApiProps {
  prefix: string;
  functions: Record<string, lambda.IFunction>;
  routes: Contract['routes'];
  throttleRate: number;
  throttleBurst: number;
}

export class Api extends Construct {
  readonly api: apigw.CfnApi;
  readonly url: string;
  readonly domainName: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    this.api = new apigw.CfnApi(this, 'Http', { name: `${props.prefix}-api`, protocolType: 'HTTP', description: 'VaultStream viewer and creator API' });
    const executeArn = (route: string) => `arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:${this.api.ref}/${route}`;

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    new apigw.CfnStage(this, 'Default', {
      apiId: this.api.ref,
      stageName: '$default',
      autoDeploy: true,
      defaultRouteSettings: { throttlingRateLimit: props.throttleRate, throttlingBurstLimit: props.throttleBurst, detailedMetricsEnabled: true },
      accessLogSettings: {
        destinationArn: accessLogs.logGroupArn,
        format: JSON.stringify({
          requestId: '$context.requestId', ip: '$context.identity.sourceIp', method: '$context.httpMethod', route: '$context.routeKey',
          status: '$context.status', latency: '$context.responseLatency', authorizerError: '$context.authorizer.error',
        }),
      },
    });

    const authorizerFn = props.functions['authorizer'];
    const authorizer = new apigw.CfnAuthorizer(this, 'Authorizer', {
      apiId: this.api.ref,
      name: 'session',
      authorizerType: 'REQUEST',
      authorizerPayloadFormatVersion: '2.0',
      enableSimpleResponses: true,
      identitySource: ['$request.header.Authorization'],
      // No caching: a revoked session must stop working on its next request.
      authorizerResultTtlInSeconds: 0,
      authorizerUri: `arn:${Aws.PARTITION}:apigateway:${Aws.REGION}:lambda:path/2015-03-31/functions/${authorizerFn.functionArn}/invocations`,
    });
    new lambda.CfnPermission(this, 'InvokeAuthorizer', {
      action: 'lambda:InvokeFunction', functionName: authorizerFn.functionName, principal: 'apigateway.amazonaws.com', sourceArn: executeArn('authorizers/' + authorizer.ref),
    });

    const integrations: Record<string, apigw.CfnIntegration> = {};
    for (const route of props.routes) {
      const fn = props.functions[route.function];
      if (!integrations[route.function]) {
        integrations[route.function] = new apigw.CfnIntegration(this, `${route.function}Integration`, {
          apiId: this.api.ref, integrationType: 'AWS_PROXY', integrationUri: fn.functionArn, payloadFormatVersion: '2.0', timeoutInMillis: 10000,
        });
        new lambda.CfnPermission(this, `Invoke${route.function}`, {
          action: 'lambda:InvokeFunction', functionName: fn.functionName, principal: 'apigateway.amazonaws.com', sourceArn: executeArn('*/*'),
        });
      }
      const routeId = route.route.replace(/[^A-Za-z0-9]/g, '');
      new apigw.CfnRoute(this, routeId, {
        apiId: this.api.ref,
        routeKey: route.route,
        target: `integrations/${integrations[route.function].ref}`,
        authorizationType: route.authorizer ? 'CUSTOM' : 'NONE',
        authorizerId: route.authorizer ? authorizer.ref : undefined,
      });
    }
    this.domainName = `${this.api.ref}.execute-api.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    this.url = `https://${this.domainName}`;
  }
}
