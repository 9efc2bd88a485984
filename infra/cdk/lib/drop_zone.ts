// The FTP drop zone: an AWS Transfer Family server (SFTP and FTPS) in the workers' VPC whose
// logins the ftp_auth function decides (a tenant's id and a write token), each session confined
// by that answer to drop/{tenant}/ of the source bucket; a finished upload's event goes to the
// drop_zone function, which makes it a title through the import queue.
import { Aws, Duration } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as transfer from 'aws-cdk-lib/aws-transfer';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { ResourceName } from './contract';
import { Grantable, contractStatements } from './functions';

export interface DropZoneContract {
  protocols: string[];
  identity_provider: string;
  folder: string;
  passive_ports: [number, number];
  security_policy: string;
  role_permissions: Partial<Record<ResourceName, string[]>>;
}

export interface DropZoneProps {
  prefix: string;
  contract: DropZoneContract;
  vpcId: string;
  subnetIds: string[];
  /** Who may connect (the studios' networks, a VPN's range). */
  clientCidr: string;
  /** A regional ACM certificate for the FTPS endpoint's name. */
  certificateArn: string;
  resources: Record<ResourceName, Grantable>;
}

export class DropZone extends Construct {
  /** What every Transfer session acts as, narrowed per login by ftp_auth's session policy. */
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: DropZoneProps) {
    super(scope, id);
    this.role = new iam.Role(this, 'SessionRole', {
      roleName: `${props.prefix}-drop-zone`,
      assumedBy: new iam.ServicePrincipal('transfer.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
      description: 'VaultStream drop zone sessions: drop/ of the source bucket, narrowed to one tenant per login',
    });
    new iam.Policy(this, 'SessionContract', { roles: [this.role], statements: contractStatements(props.contract.role_permissions, props.resources) });
  }

  /** The server, once ftp_auth exists; finished uploads go to `dropZone`. */
  serve(
    props: DropZoneProps,
    ftpAuth: lambda.Function,
    dropZone: lambda.Function,
    deadLetters: sqs.IQueue,
    pattern: { source: string[]; 'detail-type': string[]; 'status-code': string[] },
  ): transfer.CfnServer {
    const [low, high] = props.contract.passive_ports;
    const securityGroup = new ec2.CfnSecurityGroup(this, 'Endpoint', {
      groupDescription: 'VaultStream drop zone: SFTP, FTPS control and passive ports from the client network',
      vpcId: props.vpcId,
      securityGroupIngress: [
        { ipProtocol: 'tcp', fromPort: 22, toPort: 22, cidrIp: props.clientCidr, description: 'SFTP' },
        { ipProtocol: 'tcp', fromPort: 21, toPort: 21, cidrIp: props.clientCidr, description: 'FTPS control' },
        { ipProtocol: 'tcp', fromPort: low, toPort: high, cidrIp: props.clientCidr, description: 'FTPS passive data' },
      ],
      securityGroupEgress: [{ ipProtocol: 'tcp', fromPort: 443, toPort: 443, cidrIp: '0.0.0.0/0', description: 'HTTPS to AWS APIs' }],
    });
    NagSuppressions.addResourceSuppressions(securityGroup, [{
      id: 'CdkNagValidationFailure',
      reason: 'AwsSolutions-EC23 (no open ingress) cannot read a parameter: the client network is DropZoneClientCidr, a private range by default, and the endpoint is a VPC endpoint, not a public one.',
    }]);
    const logGroup = new logs.LogGroup(this, 'Logs', { logGroupName: `/aws/transfer/${props.prefix}-drop-zone`, retention: logs.RetentionDays.ONE_YEAR });
    const loggingRole = new iam.Role(this, 'LoggingRole', {
      assumedBy: new iam.ServicePrincipal('transfer.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID } } }),
      description: 'VaultStream drop zone: writes its session logs',
    });
    logGroup.grantWrite(loggingRole);
    const server = new transfer.CfnServer(this, 'Server', {
      protocols: props.contract.protocols,
      domain: 'S3',
      endpointType: 'VPC',
      endpointDetails: { vpcId: props.vpcId, subnetIds: props.subnetIds, securityGroupIds: [securityGroup.attrGroupId] },
      certificate: props.certificateArn,
      identityProviderType: 'AWS_LAMBDA',
      identityProviderDetails: { function: ftpAuth.functionArn },
      securityPolicyName: props.contract.security_policy,
      protocolDetails: { passiveIp: 'AUTO', tlsSessionResumptionMode: 'ENFORCED' },
      loggingRole: loggingRole.roleArn,
      structuredLogDestinations: [logGroup.logGroupArn],
      tags: [{ key: 'Name', value: `${props.prefix}-drop-zone` }],
    });
    ftpAuth.addPermission('TransferAsks', { principal: new iam.ServicePrincipal('transfer.amazonaws.com'), sourceArn: server.attrArn, sourceAccount: Aws.ACCOUNT_ID });
    new events.Rule(this, 'Finished', {
      ruleName: `${props.prefix}-drop-zone-uploads`,
      description: 'VaultStream: a finished drop-zone upload becomes a title',
      eventPattern: { source: pattern.source, detailType: pattern['detail-type'], detail: { 'status-code': pattern['status-code'], 'server-id': [server.attrServerId] } },
      targets: [new targets.LambdaFunction(dropZone, { deadLetterQueue: deadLetters, retryAttempts: 8, maxEventAge: Duration.hours(24) })],
    });
    return server;
  }
}
