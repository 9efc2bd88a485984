// The deployment contract (infra/contract.json): function names, the variables each reads, what
// each may do, and the API routes. The parity test holds Terraform and the Rust code to it too.
import * as fs from 'fs';
import * as path from 'path';

export type ResourceName =
  | 'source_bucket' | 'origin_bucket' | 'content_table' | 'tokens_table' | 'audit_table'
  | 'content_key' | 'origin_key' | 'signing_key' | 'service_secret';

export interface FunctionContract {
  memory_mb: number;
  timeout_s: number;
  env: string[];
  permissions: Partial<Record<ResourceName, string[]>>;
}

export interface Contract {
  functions: Record<string, FunctionContract>;
  transcoder: { env: string[]; permissions: Partial<Record<ResourceName, string[]>>; exit_codes: { invalid_input: number; temporary_failure: number } };
  routes: { route: string; function: string; authorizer: boolean }[];
  kms_encryption_context_keys: string[];
  ledger_denied_actions: string[];
  outputs: string[];
}

export const CONTRACT_PATH = path.resolve(__dirname, '..', '..', '..', 'contract.json');

export function loadContract(): Contract {
  return JSON.parse(fs.readFileSync(CONTRACT_PATH, 'utf8')) as Contract;
}
