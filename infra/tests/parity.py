#!/usr/bin/env python3
"""CDK and Terraform describe the same deployment, and both match the code.

Parses infra/terraform/*.tf (python-hcl2) and the synthesized CloudFormation template, and fails
when a resource, a function permission, a route, an output or a ledger protection exists in one
and not the other, when the functions read a variable that infra/contract.json does not know, or
when a Batch job definition (in either) passes the transcoder a flag or an environment variable
that `vaultstream-transcode run --help` does not list.
Usage: parity.py TEMPLATE_JSON   (the transcoder binary: $VAULTSTREAM_TRANSCODER, or target/debug)
"""
import glob
import json
import os
import re
import subprocess
import sys
from collections import Counter

import hcl2

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CONTRACT = json.load(open(os.path.join(ROOT, "infra", "contract.json")))
TF_DIR = os.environ.get("PARITY_TERRAFORM_DIR", os.path.join(ROOT, "infra", "terraform"))

# CloudFormation type -> Terraform type, for the resources both declare one to one. Bucket
# settings that are sub-resources in Terraform (versioning, encryption, ...) are checked as
# properties instead.
TYPES = {
    "AWS::S3::Bucket": "aws_s3_bucket",
    "AWS::S3::BucketPolicy": "aws_s3_bucket_policy",
    "AWS::DynamoDB::Table": "aws_dynamodb_table",
    "AWS::KMS::Key": "aws_kms_key",
    "AWS::KMS::Alias": "aws_kms_alias",
    "AWS::SecretsManager::Secret": "aws_secretsmanager_secret",
    "AWS::SQS::Queue": "aws_sqs_queue",
    "AWS::SQS::QueuePolicy": "aws_sqs_queue_policy",
    "AWS::Kinesis::Stream": "aws_kinesis_stream",
    "AWS::KinesisFirehose::DeliveryStream": "aws_kinesis_firehose_delivery_stream",
    "AWS::Events::EventBus": "aws_cloudwatch_event_bus",
    "AWS::Events::Rule": "aws_cloudwatch_event_rule",
    "AWS::Batch::ComputeEnvironment": "aws_batch_compute_environment",
    "AWS::Batch::JobQueue": "aws_batch_job_queue",
    "AWS::Batch::JobDefinition": "aws_batch_job_definition",
    "AWS::EC2::SecurityGroup": "aws_security_group",
    "AWS::Transfer::Server": "aws_transfer_server",
    "AWS::EC2::LaunchTemplate": "aws_launch_template",
    "AWS::IAM::InstanceProfile": "aws_iam_instance_profile",
    "AWS::ApiGatewayV2::Api": "aws_apigatewayv2_api",
    "AWS::ApiGatewayV2::Stage": "aws_apigatewayv2_stage",
    "AWS::ApiGatewayV2::Authorizer": "aws_apigatewayv2_authorizer",
    "AWS::ApiGatewayV2::Integration": "aws_apigatewayv2_integration",
    "AWS::ApiGatewayV2::Route": "aws_apigatewayv2_route",
    "AWS::ApiGatewayV2::DomainName": "aws_apigatewayv2_domain_name",
    "AWS::ApiGatewayV2::ApiMapping": "aws_apigatewayv2_api_mapping",
    "AWS::Lambda::Permission": "aws_lambda_permission",
    "AWS::Lambda::EventSourceMapping": "aws_lambda_event_source_mapping",
    "AWS::CloudFront::Distribution": "aws_cloudfront_distribution",
    "AWS::CloudFront::OriginAccessControl": "aws_cloudfront_origin_access_control",
    "AWS::CloudFront::PublicKey": "aws_cloudfront_public_key",
    "AWS::CloudFront::KeyGroup": "aws_cloudfront_key_group",
    "AWS::CloudFront::KeyValueStore": "aws_cloudfront_key_value_store",
    "AWS::CloudFront::Function": "aws_cloudfront_function",
    "AWS::CloudFront::ResponseHeadersPolicy": "aws_cloudfront_response_headers_policy",
    "AWS::WAFv2::WebACL": "aws_wafv2_web_acl",
    "AWS::Logs::DeliverySource": "aws_cloudwatch_log_delivery_source",
    "AWS::Logs::DeliveryDestination": "aws_cloudwatch_log_delivery_destination",
    "AWS::Logs::Delivery": "aws_cloudwatch_log_delivery",
    "AWS::CloudWatch::Dashboard": "aws_cloudwatch_dashboard",
    "AWS::CloudWatch::Alarm": "aws_cloudwatch_metric_alarm",
}
# CDK reads the signing key's public PEM with a custom resource (one Node.js function); Terraform
# has the data source aws_kms_public_key. (Terraform's streaming destination, event targets and
# events role are properties of the table and the rule in CloudFormation; they are not compared.)
CDK_ONLY_LAMBDAS = 1


def tf_resources():
    resources = []
    for path in sorted(glob.glob(os.path.join(TF_DIR, "*.tf"))):
        with open(path) as f:
            doc = hcl2.load(f)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    resources.append((rtype.strip('"'), name.strip('"'), body))
    return resources


def tf_data():
    blocks = []
    for path in sorted(glob.glob(os.path.join(TF_DIR, "*.tf"))):
        with open(path) as f:
            for block in hcl2.load(f).get("data", []):
                for dtype, named in block.items():
                    for name, body in named.items():
                        blocks.append((dtype.strip('"'), name.strip('"'), body))
    return blocks


def val(v):
    """python-hcl2 wraps attribute values in one-element lists."""
    return v[0] if isinstance(v, list) and len(v) == 1 else v


def tf_count(body):
    """How many instances a resource has: for_each over the contract or a literal map/list."""
    fe = val(body.get("for_each"))
    if fe is None:
        return 1
    if isinstance(fe, str):
        fe = fe[2:-1] if fe.startswith("${") else fe
        if fe.startswith("{for k , v in local.all_buckets") and 'k != "access_logs"' in fe:
            return 3
        known = {
            "local.contract.functions": len(CONTRACT["functions"]),
            "local.all_buckets": 4,
            "local.queues": 6,
            "local.compute_environments": 5,
            "local.job_queues": 3,
            "local.job_definitions": 3,
            "local.all_job_definitions": 3 + len(CONTRACT["transcoder"]["chunking"]["kinds"]) * len(CONTRACT["transcoder"]["chunking"]["jobs"]),
            "local.routes": len(CONTRACT["routes"]),
            "local.routed_functions": len({r["function"] for r in CONTRACT["routes"]}),
            "toset(local.contract.event_sources.dispatch.sqs)": len(CONTRACT["event_sources"]["dispatch"]["sqs"]),
            "local.alarms": len(expected_alarms("{prefix}")),
        }
        if fe in known:
            return known[fe]
        raise SystemExit(f"parity.py does not know how many instances for_each = {fe} has; add it")
    return len(fe)


def fill(text, prefix, function=""):
    return text.replace("{prefix}", prefix).replace("{function}", function)


def expand(lines, for_each_function, prefix):
    """The contract's metric lines for each function (or once), placeholders filled, as tuples."""
    functions = list(CONTRACT["functions"]) if for_each_function else [""]
    return [(ns, name, tuple(sorted((k, fill(v, prefix, fn)) for k, v in dims.items())), stat)
            for fn in functions for ns, name, dims, stat in lines]


def expected_alarms(prefix):
    """name -> (the comparable settings, {query id: metric line}, expression) from the contract."""
    alarms = {}
    for a in CONTRACT["observability"]["alarms"]:
        for fn in (CONTRACT["functions"] if a.get("for_each_function") else [""]):
            queries = {qid: (ns, name, tuple(sorted((k, fill(v, prefix, fn)) for k, v in dims.items())), stat)
                       for qid, (ns, name, dims, stat) in a["metrics"].items()}
            settings = (a["comparison"], float(a["threshold"]), a["evaluation_periods"], a["period_s"])
            alarms[fill(a["name"], prefix, fn)] = (settings, queries, a.get("expression"))
    return alarms


def template_prefix(cfn):
    """The prefix the template was synthesized with, read off the ingest queue's name."""
    names = [r["Properties"].get("QueueName", "") for r in cfn.values() if r["Type"] == "AWS::SQS::Queue"]
    return next(n[: -len("-ingest")] for n in names if n.endswith("-ingest"))


def observability_problems(cfn, tf_text, prefix):
    """CDK's alarms and dashboard are the contract's, expanded; Terraform builds both from it."""
    problems = []
    found = {}
    for r in cfn.values():
        if r["Type"] != "AWS::CloudWatch::Alarm":
            continue
        p = r["Properties"]
        queries, expression, period = {}, None, None
        for q in p.get("Metrics", []):
            if "Expression" in q:
                expression = q["Expression"]
                continue
            m = q["MetricStat"]
            period = m["Period"]
            dims = tuple(sorted((d["Name"], d["Value"]) for d in m["Metric"].get("Dimensions", [])))
            queries[q["Id"]] = (m["Metric"]["Namespace"], m["Metric"]["MetricName"], dims, m["Stat"])
        settings = (p["ComparisonOperator"], float(p["Threshold"]), p["EvaluationPeriods"], period)
        found[p["AlarmName"]] = (settings, queries, expression)
        if p.get("AlarmActions") != [{"Ref": "AlarmTopicArn"}] or p.get("OKActions") != [{"Ref": "AlarmTopicArn"}]:
            problems.append(f"CDK alarm {p['AlarmName']} does not notify the AlarmTopicArn input")
    expected = expected_alarms(prefix)
    for name in sorted(set(expected) | set(found)):
        if expected.get(name) != found.get(name):
            problems.append(f"CDK alarm {name}: {found.get(name)} where the contract says {expected.get(name)}")

    dashboards = [r["Properties"] for r in cfn.values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    if len(dashboards) == 1:
        body = dashboards[0]["DashboardBody"]
        text = "".join(part if isinstance(part, str) else "REGION" for part in body["Fn::Join"][1]) if isinstance(body, dict) else body
        widgets = json.loads(text)["widgets"]
        contract = CONTRACT["observability"]["dashboard"]
        if [w["properties"]["title"] for w in widgets] != [w["title"] for w in contract["widgets"]]:
            problems.append("CDK dashboard widgets are not the contract's, in its order")
        for widget, spec in zip(widgets, contract["widgets"]):
            shown = [(l[0], l[1], tuple(sorted(zip(l[2:-1:2], l[3:-1:2]))), l[-1]["stat"]) for l in widget["properties"]["metrics"]]
            if sorted(shown) != sorted(expand(spec["metrics"], spec.get("for_each_function"), prefix)):
                problems.append(f"CDK dashboard widget {spec['title']!r} shows {shown}")
            if widget["properties"]["region"] != "REGION":
                problems.append(f"CDK dashboard widget {spec['title']!r} is not in the stack's region")
    for needle, what in [
        ("for a in local.observability.alarms", "alarms"),
        ("for i, w in local.observability.dashboard.widgets", "dashboard widgets"),
        ("observability  = local.contract.observability", "observability section"),
        ("alarm_actions       = [var.alarm_topic_arn]", "alarm actions"),
        ("dashboard_body = jsonencode({ widgets = local.dashboard_widgets })", "dashboard body"),
    ]:
        if needle not in tf_text:
            problems.append(f"Terraform does not build its {what} from the contract (observability.tf)")
    return problems


def transcoder_help(subcommand="run"):
    default = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "vaultstream-transcode")
    binary = os.environ.get("VAULTSTREAM_TRANSCODER", default)
    if not os.path.exists(binary):
        raise SystemExit(f"{binary} is missing: build the workspace first (cargo build --workspace --bins), as scripts/test.sh does")
    text = subprocess.run([binary, subcommand, "--help"], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"(--[a-z0-9][a-z0-9-]*)", text)), set(re.findall(r"\[env: ([A-Z0-9_]+)=", text))


def tf_job_definition():
    """The commands and environment names of Terraform's job definitions (run, chunk, stitch)."""
    text = open(os.path.join(TF_DIR, "batch.tf")).read()
    props = text[text.index("container_properties = jsonencode"):]
    chosen = re.search(r'command\s*=\s*each\.value\.job == "run" \? local\.contract\.transcoder\.command : local\.chunking\.jobs\[each\.value\.job\]\.command', props)
    if chosen:
        commands = {"run": CONTRACT["transcoder"]["command"], **{job: spec["command"] for job, spec in CONTRACT["transcoder"]["chunking"]["jobs"].items()}}
    elif re.search(r"command\s*=\s*local\.contract\.transcoder\.command", props):
        commands = {"run": CONTRACT["transcoder"]["command"]}
    else:
        literal = re.search(r"command\s*=\s*(\[[^\]]*\])", props)
        if not literal:
            raise SystemExit("parity.py cannot read the job definitions' command in batch.tf")
        commands = {"run": json.loads(literal.group(1))}
    env_block = re.search(r"transcoder_env = \{(.*?)\n  \}", text, re.S).group(1)
    env = set(re.findall(r"^\s+(\w+)\s+=", env_block, re.M))
    chunked = re.search(r"chunked_env = \{.*?=> \{(.*?)\n  \} \}", text, re.S)
    if chunked and "local.chunked_env[each.value.kind]" in props:
        env |= set(re.findall(r"^\s+(\w+)\s+=", chunked.group(1), re.M))
    return commands, env


def transcoder_problems(cfn, tf_text):
    chunking = CONTRACT["transcoder"]["chunking"]
    contract_commands = {"run": CONTRACT["transcoder"]["command"], **{job: spec["command"] for job, spec in chunking["jobs"].items()}}
    helps = {job: transcoder_help(job) for job in contract_commands}
    problems = []
    contract_env = set(CONTRACT["transcoder"]["env"])
    for job, (_, env_help) in helps.items():
        for v in sorted(contract_env - env_help):
            problems.append(f"the contract's transcoder reads {v}, which `vaultstream-transcode {job} --help` does not list")
    definitions = [(d["Properties"]["JobDefinitionName"], d["Properties"]) for d in cfn.values() if d["Type"] == "AWS::Batch::JobDefinition"]
    sources = [(f"CDK {name}", props["ContainerProperties"]["Command"], {e["Name"] for e in props["ContainerProperties"]["Environment"]}) for name, props in definitions]
    tf_commands, tf_env = tf_job_definition()
    sources += [(f"Terraform ({job})", command, tf_env) for job, command in tf_commands.items()]
    if set(tf_commands) != set(contract_commands):
        problems.append(f"Terraform's job definitions run {sorted(tf_commands)}, the contract's are {sorted(contract_commands)}")
    for who, command, env in sources:
        job = command[0] if command else None
        if command not in contract_commands.values():
            problems.append(f"{who} runs {command}, none of the contract's commands")
        if job not in helps:
            continue
        flags, env_help = helps[job]
        for flag in (c for c in command if c.startswith("--")):
            if flag not in flags:
                problems.append(f"{who} passes {flag}, a flag `vaultstream-transcode {job}` lacks")
        for v in sorted((env - {"AWS_REGION"}) - env_help):
            problems.append(f"{who} sets {v}, which the transcoder does not read")
        for v in sorted(contract_env - env):
            problems.append(f"{who} does not set {v}")

    # A video kind's run job names its own chunk and stitch definitions, each of which exists with
    # the contract's command and retry strategy (Batch retries a chunk alone; run and stitch once).
    by_name = dict(definitions)
    for name, props in definitions:
        if props["ContainerProperties"]["Command"] != contract_commands["run"]:
            continue
        kind = name.split("-", 1)[1] if "-" in name else name
        kind = next((k for k in ["video-gpu", "video-cpu", "audio"] if name.endswith(k)), kind)
        env = {e["Name"]: e["Value"] for e in props["ContainerProperties"]["Environment"]}
        for job in chunking["jobs"]:
            named = env.get(f"VAULTSTREAM_{job.upper()}_JOB_DEFINITION")
            if kind not in chunking["kinds"]:
                if named != "":
                    problems.append(f"CDK {name} names a {job} definition, but {kind} titles are never split")
                continue
            target = by_name.get(named or "")
            if not target or target["ContainerProperties"]["Command"] != chunking["jobs"][job]["command"]:
                problems.append(f"CDK {name}'s VAULTSTREAM_{job.upper()}_JOB_DEFINITION ({named}) is not a {job} definition running the contract's command")
                continue
            retry = target["RetryStrategy"]
            want = chunking["jobs"][job]["retry"]
            rules = [{k: v for k, v in r.items()} for r in retry.get("EvaluateOnExit", [])]
            keys = {"on_exit_code": "OnExitCode", "on_status_reason": "OnStatusReason", "on_reason": "OnReason", "action": "Action"}
            if retry.get("Attempts") != want["attempts"] or rules != [{keys[k]: v for k, v in r.items()} for r in want["evaluate_on_exit"]]:
                problems.append(f"CDK {named} retries {retry}, not the contract's {want}")
    for needle, what in [("local.chunking.jobs[each.value.job].retry.attempts", "the chunk and stitch jobs' attempts"),
                         ("local.chunking.jobs[each.value.job].retry.evaluate_on_exit", "the chunk job's retry rules"),
                         ('contains(local.chunking.kinds, kind) ? "${var.prefix}-${kind}-chunk" : ""', "each kind's chunk definition"),
                         ('contains(local.chunking.kinds, kind) ? "${var.prefix}-${kind}-stitch" : ""', "each kind's stitch definition"),
                         ("days = local.contract.transcoder.chunking.expire_after_days", "the chunks' expiry")]:
        if needle not in tf_text:
            problems.append(f"Terraform does not take {what} from the contract")
    lifecycle = [r for res in cfn.values() if res["Type"] == "AWS::S3::Bucket" for r in res["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
                 if r.get("Prefix") == "chunks/"]
    if [r.get("ExpirationInDays") for r in lifecycle] != [chunking["expire_after_days"]]:
        problems.append(f"CDK must expire chunks/ after {chunking['expire_after_days']} days ({lifecycle})")
    return problems


def drm_problems(template, cfn, tf_text):
    drm = CONTRACT["drm"]
    problems = []
    parameters = template.get("Parameters", {})
    tf_variables = {list(v.keys())[0].strip('"'): list(v.values())[0] for p in glob.glob(os.path.join(TF_DIR, "*.tf")) for v in hcl2.load(open(p)).get("variable", [])}
    functions = {n: r["Properties"] for rid, r in cfn.items() if r["Type"] == "AWS::Lambda::Function"
                 for n in CONTRACT["functions"] if rid.startswith(f"Functions{n.replace('_', '')}") and not rid.startswith(f"Functions{n.replace('_', '')}Role")}
    jobs = [r["Properties"]["ContainerProperties"] for r in cfn.values() if r["Type"] == "AWS::Batch::JobDefinition"]
    tf_transcoder = re.search(r"transcoder_env = \{(.*?)\n  \}", tf_text, re.S).group(1)
    tf_functions = re.search(r"function_env = \{(.*?)\n  \}", tf_text, re.S).group(1)
    for setting in drm["settings"]:
        env, param, var, default = setting["env"], setting["cdk_parameter"], setting["terraform_variable"], setting["default"]
        if parameters.get(param, {}).get("Default") != default:
            problems.append(f"drm: CDK parameter {param} is missing or its default is not {default!r}")
        if val(tf_variables.get(var, {}).get("default")) != default:
            problems.append(f"drm: Terraform variable {var} is missing or its default is not {default!r}")
        for reader in setting["read_by"]:
            if reader == "transcoder":
                if env not in CONTRACT["transcoder"]["env"]:
                    problems.append(f"drm: the contract's transcoder.env lacks {env}")
                if any({"Name": env, "Value": {"Ref": param}} not in j["Environment"] for j in jobs):
                    problems.append(f"drm: a CDK job definition does not set {env} from parameter {param}")
                if not re.search(rf"^\s+{env}\s+=\s+var\.{var}$", tf_transcoder, re.M):
                    problems.append(f"drm: Terraform's job definitions do not set {env} = var.{var}")
            else:
                if env not in CONTRACT["functions"][reader]["env"]:
                    problems.append(f"drm: the contract's {reader}.env lacks {env}")
                if functions.get(reader, {}).get("Environment", {}).get("Variables", {}).get(env) != {"Ref": param}:
                    problems.append(f"drm: CDK's {reader} does not read {env} from parameter {param}")
                if not re.search(rf"^\s+{env}\s+=\s+var\.{var}$", tf_functions, re.M):
                    problems.append(f"drm: Terraform's function_env does not set {env} = var.{var}")
        others = [f for f, spec in CONTRACT["functions"].items() if env in spec["env"] and f not in setting["read_by"]]
        if others or (env in CONTRACT["transcoder"]["env"]) != ("transcoder" in setting["read_by"]):
            problems.append(f"drm: {env} is read by more than its setting's read_by {setting['read_by']} ({others})")
    provider = drm["key_provider"]
    if provider["permission"] not in CONTRACT["transcoder"]["permissions"]:
        problems.append(f"drm: the transcoder may not call the key provider ({provider['permission']} is not in its permissions)")
    statements = [st for rid, r in cfn.items() if r["Type"] == "AWS::IAM::Policy" and rid.startswith("TranscoderContract")
                  for st in r["Properties"]["PolicyDocument"]["Statement"] if st["Sid"] == "SpekeApi"]
    if [st.get("Resource") for st in statements] != [{"Ref": provider["api_arn"]["cdk_parameter"]}]:
        problems.append(f"drm: CDK's SpekeApi grant is not on parameter {provider['api_arn']['cdk_parameter']} ({statements})")
    if not re.search(rf"speke_api\s+=\s+\{{ arns = \[var\.{provider['api_arn']['terraform_variable']}\]", tf_text):
        problems.append(f"drm: Terraform's speke_api grant is not on var.{provider['api_arn']['terraform_variable']}")
    return problems


def main(template_path):
    template = json.load(open(template_path))
    cfn = template["Resources"]
    tf = tf_resources()
    problems = []

    # 1. Resources, type by type.
    cfn_counts = Counter(r["Type"] for r in cfn.values())
    tf_counts = Counter()
    for rtype, _, body in tf:
        tf_counts[rtype] += tf_count(body)
    for cfn_type, tf_type in TYPES.items():
        a, b = cfn_counts.get(cfn_type, 0), tf_counts.get(tf_type, 0)
        if a != b:
            problems.append(f"{cfn_type}: {a} in CDK, {b} {tf_type} in Terraform")
    fns = cfn_counts["AWS::Lambda::Function"] - CDK_ONLY_LAMBDAS
    if fns != tf_counts["aws_lambda_function"]:
        problems.append(f"Lambda functions: {fns} in CDK, {tf_counts['aws_lambda_function']} in Terraform")

    # 2. Function permissions: CDK's contract policies against the contract Terraform expands.
    by_role = {}
    for rid, r in cfn.items():
        if r["Type"] == "AWS::IAM::Policy" and rid.startswith("Functions") and "Contract" in rid:
            name = next(n for n in CONTRACT["functions"] if rid.startswith(f"Functions{n.replace('_', '')}Contract"))
            by_role[name] = {s["Sid"]: sorted([s["Action"]] if isinstance(s["Action"], str) else s["Action"]) for s in r["Properties"]["PolicyDocument"]["Statement"]}
            for st in r["Properties"]["PolicyDocument"]["Statement"]:
                if st["Sid"].startswith("Deny") != (st.get("Effect") == "Deny"):
                    problems.append(f"{name}: CDK statement {st['Sid']} has effect {st.get('Effect')}; only the contract's denials deny")
    tf_text = "\n".join(open(p).read() for p in glob.glob(os.path.join(TF_DIR, "*.tf")))
    grantable = re.search(r"grantable = \{(.*?)\n  \}", tf_text, re.S).group(1)
    tf_grantable = set(re.findall(r"^\s+(\w+)\s+=", grantable, re.M))
    for name, spec in CONTRACT["functions"].items():
        expected = {"".join(p.title() for p in res.split("_")): sorted(actions) for res, actions in spec["permissions"].items()}
        expected |= {"Deny" + "".join(p.title() for p in res.split("_")): sorted(actions) for res, actions in spec.get("denied", {}).items()}
        if by_role.get(name) != expected:
            problems.append(f"{name}: CDK grants {by_role.get(name)}, the contract (and so Terraform) {expected}")
        for res in [*spec["permissions"], *spec.get("denied", {})]:
            if res not in tf_grantable:
                problems.append(f"{name}: Terraform has no ARN for {res}")
    # 2a'. The import queue is FIFO with a message group per tenant (its DLQ FIFO too), in both.
    if CONTRACT["event_sources"]["import_fetch"].get("fifo_group_per_tenant"):
        cdk_fifo = sorted(rid for rid, r in cfn.items() if r["Type"] == "AWS::SQS::Queue" and r["Properties"].get("FifoQueue"))
        if not any(rid.startswith("QueuesImportDlq") for rid in cdk_fifo) or not any(rid.startswith("QueuesImport") and not rid.startswith("QueuesImportDlq") for rid in cdk_fifo):
            problems.append(f"CDK's import queue and its DLQ must be FIFO (one message group per tenant); FIFO queues: {cdk_fifo}")
        for name in ["import", "import_dlq"]:
            block = re.search(rf'resource "aws_sqs_queue" "{name}" \{{(.*?)\n\}}', tf_text, re.S)
            if not block or not re.search(r"fifo_queue\s+=\s+true", block.group(1)):
                problems.append(f"Terraform's queue {name} must be FIFO (one message group per tenant)")
    # 2a. The contract's denials: Terraform renders each as an explicit Deny, and the monitors'
    # and imports' roles deny the deployment's own buckets.
    function_policy = re.search(r'data "aws_iam_policy_document" "function" \{(.*?)\n\}', tf_text, re.S)
    if not function_policy or 'lookup(each.value, "denied", {})' not in function_policy.group(1) or 'effect    = "Deny"' not in function_policy.group(1):
        problems.append("Terraform's function policies do not render the contract's denials as Deny statements")
    for name, res in [("monitor_poll", "platform_buckets"), ("import_fetch", "served_buckets")]:
        if "s3:GetObject" not in CONTRACT["functions"][name].get("denied", {}).get(res, []):
            problems.append(f"{name} must deny s3:GetObject on {res}: no monitor or import reads the deployment's own buckets")
    for res in [*CONTRACT["transcoder"]["permissions"], *CONTRACT["transcoder"]["tenant_permissions"]]:
        if res not in tf_grantable:
            problems.append(f"transcoder: Terraform has no ARN for {res}")

    # 2b. Transcode jobs act for one tenant: the job role only assumes the tenant role, whose grants
    # are the contract's, each bounded by the session tag (the origin key works only through S3).
    tag_var = "${aws:PrincipalTag/%s}" % CONTRACT["transcoder"]["tenant_session_tag"]
    def cdk_policy(prefix):
        r = next((r for rid, r in cfn.items() if r["Type"] == "AWS::IAM::Policy" and rid.startswith(prefix)), None)
        return r["Properties"]["PolicyDocument"]["Statement"] if r else []
    sid = lambda res: "".join(p.title() for p in res.split("_"))
    for prefix, spec in [("TranscoderContract", "permissions"), ("TranscoderTenantContract", "tenant_permissions")]:
        got = {st["Sid"]: sorted([st["Action"]] if isinstance(st["Action"], str) else st["Action"]) for st in cdk_policy(prefix)}
        if got != {sid(res): sorted(a) for res, a in CONTRACT["transcoder"][spec].items()}:
            problems.append(f"CDK {prefix} grants {got}, the contract's transcoder.{spec} differs")
    for st in cdk_policy("TranscoderTenantContract"):
        if tag_var not in json.dumps(st) and st["Sid"] != "OriginKey":
            problems.append(f"CDK tenant role grant {st['Sid']} is not bounded by the tenant tag")
    for res in CONTRACT["transcoder"]["tenant_permissions"]:
        line = re.search(rf"^\s+{res}\s+=\s+(.*)$", grantable, re.M)
        if res != "origin_key" and (not line or "local.tenant" not in line.group(1)):
            problems.append(f"Terraform grant {res} of the tenant role is not bounded by the tenant tag")
    trust = re.search(r'data "aws_iam_policy_document" "transcoder_tenant_assume" \{(.*?)\n\}', tf_text, re.S)
    if (not trust or "aws_iam_role.transcoder.arn" not in trust.group(1) or '"sts:TagSession"' not in trust.group(1)
            or 'variable = "aws:RequestTag/${local.tenant_tag}"' not in trust.group(1)
            or "tenant = local.contract.transcoder.tenant_permissions" not in tf_text):
        problems.append("Terraform's tenant role must trust only the job role, with the tenant tag, and grant the contract's tenant_permissions")

    # 2c. The API only through CloudFront: execute-api off, the origin-verify header on the API
    # origin, every route behind an API behaviour (CDK's are asserted in its tests).
    api = next(r for r in cfn.values() if r["Type"] == "AWS::ApiGatewayV2::Api")["Properties"]
    cdk_origin = next(o for r in cfn.values() if r["Type"] == "AWS::CloudFront::Distribution" for o in r["Properties"]["DistributionConfig"]["Origins"] if o["Id"] == "api")
    if api.get("DisableExecuteApiEndpoint") is not True or [h["HeaderName"] for h in cdk_origin.get("OriginCustomHeaders", [])] != ["X-VaultStream-Origin-Verify"]:
        problems.append("CDK: the API must have execute-api disabled and CloudFront must send X-VaultStream-Origin-Verify")
    tf_api = next(body for rtype, name, body in tf if rtype == "aws_apigatewayv2_api")
    if val(tf_api.get("disable_execute_api_endpoint")) is not True:
        problems.append("Terraform leaves the API's execute-api endpoint on: requests could skip CloudFront and its WAF")
    if not re.search(r'custom_header \{\s*name\s*=\s*"X-VaultStream-Origin-Verify"\s*value\s*=\s*random_password\.origin_verify\.result', tf_text):
        problems.append("Terraform's CloudFront does not send X-VaultStream-Origin-Verify to the API")
    behaviours = re.search(r"api_behaviours = \{(.*?)\n  \}", tf_text, re.S)
    for route in CONTRACT["routes"]:
        method, path = route["route"].split(" ")
        sample = re.sub(r"\{[^}]+\}", "x", path)
        ok = behaviours and any(re.fullmatch(re.escape(p).replace(r"\*", ".*"), sample) and f'"{method}"' in m
                                for p, m in re.findall(r'"([^"]+)"\s*=\s*\[([^\]]*)\]', behaviours.group(1)))
        if not ok:
            problems.append(f"Terraform's CloudFront has no API behaviour for {route['route']}")

    # 3. Ledger protections in both.
    ledger = next(r for r in cfn.values() if r["Type"] == "AWS::DynamoDB::Table" and r["Properties"].get("DeletionProtectionEnabled"))
    denied = ledger["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"][0]["Action"]
    if sorted(denied) != sorted(CONTRACT["ledger_denied_actions"]):
        problems.append(f"CDK ledger policy denies {denied}")
    audit = next(body for rtype, name, body in tf if rtype == "aws_dynamodb_table" and name == "audit")
    if val(audit.get("deletion_protection_enabled")) is not True:
        problems.append("Terraform ledger table lacks deletion protection")
    pitr = audit.get("point_in_time_recovery") or [{}]
    if val(pitr[0].get("enabled")) is not True:
        problems.append("Terraform ledger table lacks point-in-time recovery")
    if not any(rtype == "aws_dynamodb_resource_policy" for rtype, _, _ in tf):
        problems.append("Terraform ledger table has no resource policy")
    if "local.contract.ledger_denied_actions" not in tf_text:
        problems.append("Terraform ledger policy does not deny the contract's actions")
    # Who may append: the principals the contract grants PutItem on the ledger, and no one else.
    writers = sorted([n for n, f in CONTRACT["functions"].items() if "dynamodb:PutItem" in f["permissions"].get("audit_table", [])]
                     + (["transcoder"] if "dynamodb:PutItem" in CONTRACT["transcoder"]["tenant_permissions"].get("tenant_ledger", []) else []))
    only = next((st for st in ledger["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"] if st.get("Sid") == "OnlyLedgerWritersAppend"), None)
    def role_of(ref):
        rid = ref.get("Fn::GetAtt", [""])[0]
        if rid.startswith("TranscoderTenantRole"):
            return "transcoder"
        return next((n for n in CONTRACT["functions"] if rid.startswith(f"Functions{n.replace('_', '')}Role")), rid)
    cdk_writers = sorted(role_of(r) for r in (only or {}).get("Condition", {}).get("ArnNotEquals", {}).get("aws:PrincipalArn", []))
    if not only or only.get("Effect") != "Deny" or only.get("Action") not in ("dynamodb:PutItem", ["dynamodb:PutItem"]) or cdk_writers != writers:
        problems.append(f"CDK ledger policy must deny PutItem to all but {writers}; it names {cdk_writers}")
    tf_only = re.search(r'sid\s*=\s*"OnlyLedgerWritersAppend".*?\n  \}', tf_text, re.S)
    tf_writers = re.search(r"ledger_writers = concat\((.*?)\n  \)", tf_text, re.S)
    if (not tf_only or 'test     = "ArnNotEquals"' not in tf_only.group(0) or "values   = local.ledger_writers" not in tf_only.group(0)
            or not tf_writers or tf_writers.group(1).count('"dynamodb:PutItem"') != 2 or "aws_iam_role.transcoder_tenant.arn" not in tf_writers.group(1)):
        problems.append(f"Terraform ledger policy must deny PutItem to all but the contract's appenders ({writers})")
    if not any(rtype == "aws_dynamodb_kinesis_streaming_destination" for rtype, _, _ in tf) or "KinesisStreamSpecification" not in json.dumps(ledger):
        problems.append("the ledger's change stream to the archive is missing in one of them")
    for rtype, name, body in tf + tf_data():
        granting = rtype in ("aws_iam_role_policy", "aws_iam_policy") or (rtype == "aws_iam_policy_document" and name != "ledger")
        if granting and any(a in json.dumps(body) for a in CONTRACT["ledger_denied_actions"]):
            problems.append(f"Terraform {rtype}.{name} grants a ledger rewrite")

    # 4. Object Lock, one attempt per job, ObjectCreated:*, the ingest wiring in Terraform (CDK's
    # are asserted in its tests).
    for needle, what in [('mode  = "COMPLIANCE"', "Object Lock compliance"), ('"s3:ObjectCreated:*"', "ObjectCreated:*"),
                         ('attempts = each.value.job == "run" ? 1 :', "one attempt per run job (job_events retries)"),
                         ("local.contract.transcoder.parameters", "the contract's job parameters"),
                         ("local.contract.event_sources.job_events.eventbridge", "Batch job state changes to job_events"),
                         ('aws_lambda_function.function["job_events"].arn', "job_events as the rule's target"),
                         ("trusted_key_groups", "trusted key group"), ("origin_access_control_id", "OAC")]:
        if needle not in tf_text:
            problems.append(f"Terraform lacks {what}")

    # 4-. URL imports: import_fetch alone consumes the import queue, with the contract's batch and
    # concurrency cap, in both.
    imports = CONTRACT["event_sources"]["import_fetch"]
    cdk_maps = [r["Properties"] for r in cfn.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"
                and "Functionsimportfetch" in json.dumps(r["Properties"].get("FunctionName"))]
    if [(m.get("BatchSize"), m.get("ScalingConfig", {}).get("MaximumConcurrency")) for m in cdk_maps] != [(imports["batch_size"], imports["maximum_concurrency"])]:
        problems.append(f"CDK: import_fetch must consume the import queue once, batch {imports['batch_size']}, at most {imports['maximum_concurrency']} at once ({cdk_maps})")
    tf_map = re.search(r'resource "aws_lambda_event_source_mapping" "import_fetch" \{(.*?)\n\}', tf_text, re.S)
    if (not tf_map or 'aws_lambda_function.function["import_fetch"]' not in tf_map.group(1)
            or "local.contract.event_sources.import_fetch.maximum_concurrency" not in tf_map.group(1)
            or "local.contract.event_sources.import_fetch.batch_size" not in tf_map.group(1)):
        problems.append("Terraform: import_fetch must consume the import queue with the contract's batch size and concurrency cap")

    # 4a. Batch instances: IMDSv2 only, one hop, on every compute environment.
    for rid, r in cfn.items():
        if r["Type"] == "AWS::EC2::LaunchTemplate":
            meta = r["Properties"]["LaunchTemplateData"].get("MetadataOptions", {})
            if meta.get("HttpTokens") != "required" or meta.get("HttpPutResponseHopLimit") != 1:
                problems.append(f"CDK launch template {rid} allows IMDSv1 or more than one hop: {meta}")
        if r["Type"] == "AWS::Batch::ComputeEnvironment" and "LaunchTemplate" not in r["Properties"]["ComputeResources"]:
            problems.append(f"CDK compute environment {rid} has no launch template")
    for rtype, name, body in tf:
        if rtype == "aws_launch_template":
            meta = (body.get("metadata_options") or [{}])[0]
            if val(meta.get("http_tokens")) != "required" or val(meta.get("http_put_response_hop_limit")) != 1:
                problems.append(f"Terraform launch template {name} allows IMDSv1 or more than one hop")
        if rtype == "aws_batch_compute_environment" and not (body.get("compute_resources") or [{}])[0].get("launch_template"):
            problems.append(f"Terraform compute environment {name} has no launch template")

    # 4c. The service secret never enters Terraform's state: written through a write-only argument.
    # (The origin-verify value must sit in CloudFront's configuration, so it is in the state anyway.)
    service_version = re.search(r'resource "aws_secretsmanager_secret_version" "service" \{(.*?)\n\}', tf_text, re.S)
    if not service_version or re.search(r"^\s*secret_string\s*=", service_version.group(1), re.M):
        problems.append("Terraform writes the service secret with secret_string, which keeps it in the state")
    if "secret_string_wo" not in tf_text or 'ephemeral "random_password"' not in tf_text:
        problems.append("Terraform lacks the write-only service secret (ephemeral value, secret_string_wo)")

    # 4d. Audit digests: an ECC signing key only the digest writer may sign with, the sparse heads
    # index, the contract's schedule, and digests that never go cold.
    digest_keys = [r for r in cfn.values() if r["Type"] == "AWS::KMS::Key" and r["Properties"].get("KeySpec") == "ECC_NIST_P256"]
    signers = [json.dumps(st.get("Principal")) for k in digest_keys for st in k["Properties"]["KeyPolicy"]["Statement"]
               if "kms:Sign" in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])]
    if len(digest_keys) != 1 or len(signers) != 1 or "Functionsauditdigest" not in signers[0]:
        problems.append(f"CDK: the audit digest key must be one ECC_NIST_P256 key that only audit_digest signs with ({signers})")
    tf_key = next((b for t, n, b in tf if t == "aws_kms_key" and n == "audit_digest"), {})
    if val(tf_key.get("customer_master_key_spec")) != "ECC_NIST_P256" or val(tf_key.get("key_usage")) != "SIGN_VERIFY":
        problems.append("Terraform: the audit digest key is not ECC_NIST_P256 SIGN_VERIFY")
    tf_policy = next((b for t, n, b in tf_data() if t == "aws_iam_policy_document" and n == "audit_digest_key"), {})
    tf_signers = [json.dumps(st.get("principals")) for st in tf_policy.get("statement", []) if "kms:Sign" in json.dumps(st.get("actions"))]
    if len(tf_signers) != 1 or 'function[\\"audit_digest\\"]' not in tf_signers[0]:
        problems.append(f"Terraform: only audit_digest may sign with the digest key ({tf_signers})")
    gsis = ledger["Properties"].get("GlobalSecondaryIndexes", [])
    if [(g["IndexName"], [k["AttributeName"] for k in g["KeySchema"]]) for g in gsis] != [("heads", ["head_slot", "pk"])]:
        problems.append(f"CDK ledger lacks the sparse heads index (head_slot, pk): {gsis}")
    tf_gsi = (audit.get("global_secondary_index") or [{}])[0]
    if (val(tf_gsi.get("name")), val(tf_gsi.get("hash_key")), val(tf_gsi.get("range_key"))) != ("heads", "head_slot", "pk"):
        problems.append("Terraform ledger lacks the sparse heads index (head_slot, pk)")
    schedules = sorted(r["Properties"].get("ScheduleExpression") for r in cfn.values() if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" in r["Properties"])
    if schedules != sorted(s["schedule"] for s in CONTRACT["event_sources"].values() if "schedule" in s):
        problems.append(f"CDK schedules {schedules} are not the contract's")
    for scheduled in ("feed_poll", "monitor_poll"):
        if f"local.contract.event_sources.{scheduled}.schedule" not in tf_text or f'aws_lambda_function.function["{scheduled}"].arn' not in tf_text:
            problems.append(f"Terraform does not run {scheduled} on the contract's schedule")
    # 4-. Drop zones: one Transfer server of the contract's protocols in the VPC, its logins asked
    # of ftp_auth, its sessions acting as a role with the contract's grants (narrowed per login),
    # its finished uploads going to drop_zone.
    dz = CONTRACT["drop_zone"]
    servers = [r["Properties"] for r in cfn.values() if r["Type"] == "AWS::Transfer::Server"]
    if (len(servers) != 1 or servers[0].get("Protocols") != dz["protocols"] or servers[0].get("EndpointType") != "VPC"
            or servers[0].get("IdentityProviderType") != "AWS_LAMBDA" or servers[0].get("SecurityPolicyName") != dz["security_policy"]
            or "Functionsftpauth" not in json.dumps(servers[0].get("IdentityProviderDetails"))):
        problems.append(f"CDK: the drop zone must be one VPC Transfer server of {dz['protocols']} asking ftp_auth ({servers})")
    tf_server = next((b for t, n, b in tf if t == "aws_transfer_server"), {})
    if (val(tf_server.get("protocols")) != "${local.drop_zone.protocols}" or val(tf_server.get("endpoint_type")) != "VPC"
            or val(tf_server.get("identity_provider_type")) != "AWS_LAMBDA"
            or "local.drop_zone.identity_provider" not in json.dumps(tf_server.get("function"))
            or val(tf_server.get("security_policy_name")) != "${local.drop_zone.security_policy}"):
        problems.append("Terraform: the drop zone must be one VPC Transfer server of the contract's protocols asking ftp_auth")
    session = {st["Sid"]: sorted([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
               for rid, r in cfn.items() if r["Type"] == "AWS::IAM::Policy" and rid.startswith("DropZoneSessionContract")
               for st in r["Properties"]["PolicyDocument"]["Statement"]}
    if session != {sid(res): sorted(a) for res, a in dz["role_permissions"].items()}:
        problems.append(f"CDK: the drop zone's session role grants {session}, not the contract's role_permissions")
    drop_root = re.search(r'pub const DROP_ROOT: &str = "([^"]+)";', open(os.path.join(ROOT, "shared", "src", "ingest", "drop_zone.rs")).read())
    if not drop_root or f"{drop_root.group(1)}/" != dz["folder"]:
        problems.append(f"the code's drop zones ({drop_root and drop_root.group(1)}) are not the contract's folder {dz['folder']}")
    if any(f"/{dz['folder']}*" not in json.dumps(r["Properties"]) for r in cfn.values()
           if r["Type"] == "AWS::IAM::Policy" and r["Properties"].get("PolicyName", "").startswith("DropZoneSessionContract")):
        problems.append(f"CDK: the drop zone's session role must reach {dz['folder']} of the source bucket")
    if "for_each = local.drop_zone.role_permissions" not in tf_text:
        problems.append("Terraform: the drop zone's session role must grant the contract's role_permissions")
    drop_rules = [r["Properties"]["EventPattern"] for r in cfn.values() if r["Type"] == "AWS::Events::Rule"
                  and r["Properties"].get("EventPattern", {}).get("source") == CONTRACT["event_sources"]["drop_zone"]["eventbridge"]["source"]]
    wanted = CONTRACT["event_sources"]["drop_zone"]["eventbridge"]
    if len(drop_rules) != 1 or drop_rules[0].get("detail-type") != wanted["detail-type"] or drop_rules[0]["detail"].get("status-code") != wanted["status-code"]:
        problems.append(f"CDK: finished drop-zone uploads must reach drop_zone by the contract's pattern ({drop_rules})")
    if "local.contract.event_sources.drop_zone.eventbridge" not in tf_text or 'aws_lambda_function.function["drop_zone"].arn' not in tf_text:
        problems.append("Terraform: finished drop-zone uploads must reach drop_zone by the contract's pattern")
    if "local.contract.event_sources.audit_digest.schedule" not in tf_text or 'aws_lambda_function.function["audit_digest"].arn' not in tf_text:
        problems.append("Terraform does not run audit_digest on the contract's schedule")
    archive = [r for r in cfn.values() if r["Type"] == "AWS::S3::Bucket" and "ObjectLockConfiguration" in r["Properties"]]
    cold = [rule for b in archive for rule in b["Properties"].get("LifecycleConfiguration", {}).get("Rules", []) if rule.get("Transitions")]
    if not cold or any(rule.get("Prefix") != "ledger/" for rule in cold):
        problems.append("CDK: something other than ledger/ goes cold in the audit archive (digests must stay readable)")
    tf_lifecycle = next(b for t, n, b in tf if t == "aws_s3_bucket_lifecycle_configuration" and n == "audit_archive")
    for rule in tf_lifecycle.get("rule", []):
        if rule.get("transition") and json.dumps(rule.get("filter")).count("ledger/") != 1:
            problems.append("Terraform: something other than ledger/ goes cold in the audit archive (digests must stay readable)")

    # 4e. CloudFront access logs keep no tokens: standard logging v2 with the contract's fields
    # (never the query string or cookies), and no legacy logging, which cannot leave them out.
    fields = CONTRACT["cdn_access_log_fields"]
    for secret in ("cs-uri-query", "cs(Cookie)", "cs(Referer)"):
        if secret in fields:
            problems.append(f"the contract's CloudFront log fields include {secret}, which carries tokens")
    cfn_fields = [r["Properties"].get("RecordFields") for r in cfn.values() if r["Type"] == "AWS::Logs::Delivery"]
    if cfn_fields != [fields]:
        problems.append(f"CDK CloudFront log delivery fields {cfn_fields} are not the contract's")
    if any("Logging" in r["Properties"]["DistributionConfig"] for r in cfn.values() if r["Type"] == "AWS::CloudFront::Distribution"):
        problems.append("CDK distribution has legacy logging, which logs query strings")
    if "record_fields            = local.contract.cdn_access_log_fields" not in tf_text:
        problems.append("Terraform CloudFront log delivery fields are not the contract's")
    if any(t == "aws_cloudfront_distribution" and b.get("logging_config") for t, _, b in tf):
        problems.append("Terraform distribution has legacy logging, which logs query strings")

    # 4b. The job definitions call the binary as it is: every flag and variable they pass exists.
    problems += transcoder_problems(cfn, tf_text)

    # 4c. The dashboard and the alarms: the contract's observability section in both.
    problems += observability_problems(cfn, tf_text, template_prefix(cfn))

    # 4d. DRM vendors by configuration: every drm setting is a CDK parameter and a Terraform
    # variable of the contract's default, handed to exactly its readers as the contract's variable.
    problems += drm_problems(template, cfn, tf_text)

    # 5. Routes and outputs.
    cfn_routes = sorted(r["Properties"]["RouteKey"] for r in cfn.values() if r["Type"] == "AWS::ApiGatewayV2::Route")
    if cfn_routes != sorted(r["route"] for r in CONTRACT["routes"]):
        problems.append(f"CDK routes {cfn_routes}")
    if "for r in local.contract.routes" not in tf_text:
        problems.append("Terraform routes are not the contract's")
    snake = lambda s: re.sub(r"(?<!^)(?=[A-Z])", "_", s).lower()
    tf_outputs = {list(o.keys())[0].strip('"') for p in glob.glob(os.path.join(TF_DIR, "*.tf")) for o in hcl2.load(open(p)).get("output", [])}
    for name in CONTRACT["outputs"]:
        if name not in template.get("Outputs", {}):
            problems.append(f"CDK lacks output {name}")
        if snake(name) not in tf_outputs:
            problems.append(f"Terraform lacks output {snake(name)}")

    # 6. The code reads only variables the contract knows, and every deployed one is read.
    read = set()
    # The licence servers' variables are named where the DRM systems are (shared/src/drm.rs).
    sources = [*glob.glob(os.path.join(ROOT, "functions", "src", "**", "*.rs"), recursive=True), os.path.join(ROOT, "shared", "src", "drm.rs")]
    for path in sources:
        read |= set(re.findall(r'"(VAULTSTREAM_[A-Z0-9_]+)"', open(path).read()))
    deployed = {v for f in CONTRACT["functions"].values() for v in f["env"]}
    known = deployed | set(CONTRACT["local_only_env"])
    for v in sorted(read - known):
        problems.append(f"functions read {v}, which infra/contract.json does not list")
    for v in sorted(deployed - read):
        problems.append(f"the contract deploys {v}, which no function reads")
    tf_env = set(re.findall(r"^\s+(VAULTSTREAM_[A-Z0-9_]+)\s+=", re.search(r"function_env = \{(.*?)\n  \}", tf_text, re.S).group(1), re.M))
    for v in sorted(deployed - tf_env):
        problems.append(f"Terraform sets no value for {v}")

    total_cfn = len([r for r in cfn.values() if r["Type"] != "AWS::CDK::Metadata"])
    total_tf = sum(tf_count(b) for _, _, b in tf)
    print(f"resources: CDK template {total_cfn}, Terraform {total_tf} (instances after for_each)")
    if problems:
        print("parity FAILED:")
        for p in problems:
            print("  -", p)
        return 1
    print(f"parity ok: {len(TYPES) + 1} resource types, {len(CONTRACT['functions'])} functions' permissions, routes, outputs, ledger protections, "
          "job definitions against `vaultstream-transcode run|chunk|stitch --help`, dashboard and alarms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
