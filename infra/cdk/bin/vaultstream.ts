#!/usr/bin/env node
// The CDK app: `cdk synth` / `cdk deploy` (see the README's deploy section).
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { justifyFindings } from '../lib/nag';
import { DEFAULT_LAMBDA_DIR, VaultStreamStack } from '../lib/vaultstream-stack';
import * as path from 'path';

const app = new App();
const lambdaDir = app.node.tryGetContext('lambdaDir');
const stack = new VaultStreamStack(app, 'VaultStream', {
  prefix: app.node.tryGetContext('prefix') ?? 'vaultstream',
  lambdaDir: lambdaDir ? path.resolve(lambdaDir) : DEFAULT_LAMBDA_DIR,
  // CloudFront's certificate and web ACL live in us-east-1, so the stack does too.
  env: { region: 'us-east-1', account: process.env.CDK_DEFAULT_ACCOUNT },
});
justifyFindings(stack);
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
