//! The CMAF key from a DRM vendor's SPEKE v2 key provider, when the deployment names one: asked
//! once per title for the title's KID and the configured systems, before any encoding starts,
//! so a provider that refuses costs no transcode.

use vaultstream::aws::speke::{SpekeAuth, SpekeClient};
use vaultstream::cenc::Kid;
use vaultstream::drm::{DrmSystem, KeyProvider, KeyProviderError, KeyRequest};

use crate::cli::DrmArgs;
use crate::cmaf::CmafKey;
use crate::error::{Result, TranscodeError};

/// The systems and the client the arguments name; `None` without a SPEKE URL.
pub async fn from_args(args: &DrmArgs) -> Result<Option<(SpekeClient, Vec<DrmSystem>)>> {
    let Some(url) = args.speke_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
    let systems = DrmSystem::parse_list(&args.drm_systems).map_err(|e| TranscodeError::Usage(format!("--drm-systems: {e}")))?;
    if systems.is_empty() {
        return Err(TranscodeError::Usage("--drm-systems names no system; a SPEKE key needs at least one".into()));
    }
    SpekeClient::check_url(url).map_err(|e| TranscodeError::Usage(format!("--speke-url: {e}")))?;
    // SigV4 signs with the job's own role (the vendor's API policy names it), not the tenant's.
    let auth = match args.speke_auth.trim() {
        "none" => SpekeAuth::None,
        other => {
            let (config, _) = vaultstream::aws::Clients::load_config().await;
            SpekeAuth::parse(other, &config, url).map_err(|e| TranscodeError::Usage(format!("--speke-auth: {e}")))?
        }
    };
    let client = SpekeClient::new(url, auth).map_err(|e| TranscodeError::Usage(format!("--speke-url: {e}")))?;
    Ok(Some((client, systems)))
}

/// The vendor's key for `kid`, with each system's signalling. A provider that is down is a
/// temporary failure (exit 75: Batch retries the job); one that refuses is a fatal one.
pub async fn vendor_key(provider: &dyn KeyProvider, systems: Vec<DrmSystem>, content_id: String, kid: Kid) -> Result<CmafKey> {
    let request = KeyRequest { content_id, kid, systems };
    match provider.cmaf_key(&request).await {
        Ok(provided) => {
            tracing::info!(kid = %kid, systems = %DrmSystem::list(&request.systems), "the key provider gave the CMAF key");
            Ok(CmafKey { key: provided.key, kid, vendor: Some(provided.signaling) })
        }
        Err(KeyProviderError::Unavailable(m)) => Err(TranscodeError::Temporary(format!("the SPEKE key provider: {m}"))),
        Err(KeyProviderError::Refused(m)) => Err(TranscodeError::Fatal(format!(
            "the SPEKE key provider's answer cannot be used ({m}); check the vendor's configuration for this deployment"
        ))),
    }
}
