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
  /** The custom domain CloudFront reaches the API at (the `execute-api` endpoint is off). */
  originDomain: string;
  /** A regional ACM certificate covering `originDomain`. */
  certificateArn: string;
  functions: Record<string, lambda.IFunction>;
  routes: Contract['routes'];
  throttleRate: number;
  throttleBurst: number;
}

export class Api extends Construct {
  readonly api: apigw.CfnApi;
  /** The custom domain CloudFront sends API requests to. */
  readonly domainName: string;
  /** Where `domainName`'s DNS record must point (a CNAME the operator adds). */
  readonly dnsTarget: string;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    // Only through CloudFront (and its WAF): no execute-api endpoint, and the functions refuse
    // requests without CloudFront's origin-verify header.
    this.api = new apigw.CfnApi(this, 'Http', {
      name: `${props.prefix}-api`, protocolType: 'HTTP', description: 'VaultStream viewer and creator API', disableExecuteApiEndpoint: true,
    });
    const executeArn = (route: string) => `arn:${Aws.PARTITION}:execute-api:${Aws.REGION}:${Aws.ACCOUNT_ID}:${this.api.ref}/${route}`;

    const accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: logs.RetentionDays.ONE_YEAR, removalPolicy: RemovalPolicy.RETAIN });
    const stage = new apigw.CfnStage(this, 'Default', {
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
    const domain = new apigw.CfnDomainName(this, 'OriginDomain', {
      domainName: props.originDomain,
      domainNameConfigurations: [{ certificateArn: props.certificateArn, endpointType: 'REGIONAL', securityPolicy: 'TLS_1_2' }],
    });
    new apigw.CfnApiMapping(this, 'OriginMapping', { apiId: this.api.ref, domainName: domain.ref, stage: stage.ref });
    this.domainName = props.originDomain;
    this.dnsTarget = domain.attrRegionalDomainName;
  }
}
