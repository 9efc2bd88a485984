variable "prefix" {
  description = "Prefix of every resource name"
  type        = string
  default     = "vaultstream"
}

variable "lambda_dir" {
  description = "Where `cargo lambda build --release --arm64 --output-format zip` left <function>/bootstrap.zip"
  type        = string
  default     = "../../target/lambda"
}

variable "domain_name" {
  description = "Tenants are served at <label>.cdn.<domain_name>"
  type        = string
}

variable "cdn_certificate_arn" {
  description = "ACM certificate (us-east-1) for *.cdn.<domain_name>"
  type        = string
}

variable "player_origin" {
  description = "Origin of the web player allowed by CORS, e.g. https://watch.example.com"
  type        = string
}

variable "jwt_issuer" {
  description = "Identity provider's issuer (iss)"
  type        = string
}

variable "jwt_audience" {
  description = "Audience (aud) of VaultStream tokens"
  type        = string
  default     = "vaultstream-api"
}

variable "jwks_url" {
  description = "Identity provider's JWKS URL"
  type        = string
}

variable "vpc_id" {
  description = "VPC of the transcode workers"
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (with egress) of the transcode workers"
  type        = list(string)
}

variable "transcoder_image" {
  description = "ECR image URI of batch-transcoder/Dockerfile"
  type        = string
}

variable "min_warm_vcpus" {
  description = "vCPUs kept warm in the CPU environment (2 workers x 4 vCPUs)"
  type        = number
  default     = 8
}

variable "max_vcpus" {
  description = "Upper bound of every compute environment"
  type        = number
  default     = 256
}

variable "max_upload_bytes" {
  description = "Largest source a creator may upload, in bytes"
  type        = string
  default     = "53687091200"
}

variable "price_per_vcpu_second" {
  description = "US dollars per vCPU-second, for the transcode cost estimate"
  type        = string
  default     = "0.0000118"
}

variable "cdn_rate_limit" {
  description = "Requests per IP per 5 minutes before WAF blocks"
  type        = number
  default     = 3000
}

variable "service_secret_version" {
  description = "Raise by one to re-key: a new service secret is generated and written (it never enters the state). Every outstanding playback and key token stops verifying."
  type        = number
  default     = 1
}

variable "alarm_topic_arn" {
  description = "SNS topic the alarms notify, when they fire and when they clear"
  type        = string
}

variable "drop_zone_client_cidr" {
  description = "Network (CIDR) that may reach the SFTP/FTPS drop zone"
  type        = string
  default     = "10.0.0.0/8"
}

variable "drop_zone_certificate_arn" {
  description = "Regional ACM certificate for the FTPS drop zone endpoint"
  type        = string
}

# A DRM vendor is configuration (infra/contract.json drm.settings): its SPEKE endpoint and its
# licence servers. Empty: VaultStream holds the CMAF key and serves ClearKey itself.
variable "speke_url" {
  description = "DRM: the vendor's SPEKE v2 endpoint (VAULTSTREAM_SPEKE_URL, read by the transcoder); empty: off"
  type        = string
  default     = ""
}

variable "speke_auth" {
  description = "DRM: how SPEKE requests are authenticated, sigv4 (the job's role, execute-api) or none (VAULTSTREAM_SPEKE_AUTH)"
  type        = string
  default     = "sigv4"
  validation {
    condition     = contains(["sigv4", "none"], var.speke_auth)
    error_message = "speke_auth is sigv4 or none."
  }
}

variable "drm_systems" {
  description = "DRM: the systems the vendor signals, comma-separated (VAULTSTREAM_DRM_SYSTEMS, read by the transcoder)"
  type        = string
  default     = "widevine,playready,fairplay"
}

variable "speke_api_arn" {
  description = "DRM: the vendor's SPEKE API the transcode jobs may invoke (arn:aws:execute-api:region:account:api-id/stage/POST/path); the default matches no API"
  type        = string
  default     = "arn:aws:execute-api:us-east-1:000000000000:none/*/POST/*"
}

variable "widevine_license_url" {
  description = "DRM: the Widevine licence server players use (VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL, read by playback and manifest); empty: none"
  type        = string
  default     = ""
}

variable "playready_license_url" {
  description = "DRM: the PlayReady licence server (VAULTSTREAM_DRM_PLAYREADY_LICENSE_URL, read by playback and manifest); empty: none"
  type        = string
  default     = ""
}

variable "fairplay_license_url" {
  description = "DRM: the FairPlay key server (VAULTSTREAM_DRM_FAIRPLAY_LICENSE_URL, read by playback and manifest); empty: none"
  type        = string
  default     = ""
}

variable "fairplay_certificate_url" {
  description = "DRM: FairPlay's application certificate (VAULTSTREAM_DRM_FAIRPLAY_CERTIFICATE_URL, read by playback); empty: none"
  type        = string
  default     = ""
}
