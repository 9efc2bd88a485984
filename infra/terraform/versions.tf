terraform {
  required_version = ">= 1.11" # ephemeral values and write-only arguments
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

# CloudFront's certificate and web ACL live in us-east-1, so the deployment does too.
provider "aws" {
  region = "us-east-1"
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  # The deployment contract shared with the functions, CDK and the emulator bootstrap.
  contract  = jsondecode(file("${path.module}/../contract.json"))
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.region
  cdn       = "cdn.${var.domain_name}"
}
