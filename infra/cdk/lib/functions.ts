// One Lambda per binary of functions/: provided.al2023 on arm64 from `cargo lambda build`, JSON
// logs to its own log group, X-Ray active, and a role with exactly the contract's permissions.
import * as path from 'path';
import * as fs from 'fs';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { FunctionContract, ResourceName } from './contract';

/** An ARN a permission applies to, and the conditions it carries. */
export interface Grantable {
  arns: string[];
  conditions?: Record<string, Record<string, unknown>>;
}

/** The IAM statements for a contract permission set, one per resource. */
export function contractStatements(permissions: Partial<Record<ResourceName, string[]>>, resources: Record<ResourceName, Grantable>): iam.PolicyStatement[] {
  return Object.entries(permissions).map(([name, actions]) => {
    const target = resources[name as ResourceName];
    return new iam.PolicyStatement({ sid: name.replace(/(^|_)(\w)/g, (_m, _u, c: string) => c.toUpperCase()), actions: actions!, resources: target.arns, conditions: target.conditions });
  });
}

/** The explicit Deny statements for a contract's `denied` set, one per resource (sid `Deny…`). */
export function deniedStatements(denied: Partial<Record<ResourceName, string[]>> | undefined, resources: Record<ResourceName, Grantable>): iam.PolicyStatement[] {
  return Object.entries(denied ?? {}).map(([name, actions]) => {
    const target = resources[name as ResourceName];
    const sid = 'Deny' + name.replace(/(^|_)(\w)/g, (_m, _u, c: string) => c.toUpperCase());
    return new iam.PolicyStatement({ sid, effect: iam.Effect.DENY, actions: actions!, resources: target.arns });
  });
}

export interface FunctionsProps {
  prefix: string;
  lambdaDir: string;
  contracts: Record<string, FunctionContract>;
  resources: Record<ResourceName, Grantable>;
  /** Every variable a function may read; each function gets the ones its contract lists. */
  environment: Record<string, string>;
}

export class Functions extends Construct {
  readonly byName: Record<string, lambda.Function> = {};
  readonly roles: Record<string, iam.Role> = {};
  readonly policies: Record<string, iam.Policy> = {};

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    for (const [name, contract] of Object.entries(props.contracts)) {
      const zip = path.join(props.lambdaDir, name, 'bootstrap.zip');
      if (!fs.existsSync(zip)) {
        throw new Error(`${zip} is missing: run 'cargo lambda build --release --arm64 --output-format zip' at the repository root first (or set -c lambdaDir=...)`);
      }
      const functionName = `${props.prefix}-${name.replace(/_/g, '-')}`;
      const logGroup = new logs.LogGroup(this, `${name}Logs`, {
        logGroupName: `/aws/lambda/${functionName}`,
        retention: logs.RetentionDays.ONE_YEAR,
        removalPolicy: RemovalPolicy.RETAIN,
      });
      const role = new iam.Role(this, `${name}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `VaultStream ${name}: only what infra/contract.json grants it`,
        inlinePolicies: {
          logs: new iam.PolicyDocument({
            statements: [new iam.PolicyStatement({ sid: 'OwnLogGroup', actions: ['logs:CreateLogStream', 'logs:PutLogEvents'], resources: [logGroup.logGroupArn] })],
          }),
        },
      });
      // A separate policy resource, so key policies can name the role without a cycle.
      this.policies[name] = new iam.Policy(this, `${name}Contract`, { roles: [role], statements: [...contractStatements(contract.permissions, props.resources), ...deniedStatements(contract.denied, props.resources)] });
      const environment: Record<string, string> = {};
      for (const variable of contract.env) {
        const value = props.environment[variable];
        if (value === undefined) throw new Error(`no value for ${variable} (function ${name})`);
        environment[variable] = value;
      }
      this.roles[name] = role;
      this.byName[name] = new lambda.Function(this, name, {
        functionName,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(zip),
        memorySize: contract.memory_mb,
        timeout: Duration.seconds(contract.timeout_s),
        role,
        logGroup,
        loggingFormat: lambda.LoggingFormat.JSON,
        applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
        systemLogLevelV2: lambda.SystemLogLevel.WARN,
        tracing: lambda.Tracing.ACTIVE,
        environment,
      });
    }
  }
}
