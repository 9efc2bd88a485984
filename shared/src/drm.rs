//! The DRM systems a title's CMAF packaging can be signalled for, and what a key provider
//! (a DRM vendor's SPEKE v2 service) gives the packager for each: the `pssh` box its init
//! segments carry and DASH names, and the `EXT-X-KEY` lines its HLS playlists carry.
//!
//! The vendor's data is checked before it is written anywhere: a `pssh` must be a whole box of
//! its system, an HLS line must be one `#EXT-X-KEY`/`#EXT-X-SESSION-KEY` tag with `SAMPLE-AES`
//! and the system's key format. A key provider is an outside service, and what it returns ends
//! in every viewer's playlist.

use async_trait::async_trait;

use crate::cenc::Kid;
use crate::ContentKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DrmSystem {
    Widevine,
    PlayReady,
    FairPlay,
}

impl DrmSystem {
    pub const ALL: [DrmSystem; 3] = [DrmSystem::Widevine, DrmSystem::PlayReady, DrmSystem::FairPlay];

    /// The DASH-IF system id.
    pub fn system_id(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(match self {
            DrmSystem::Widevine => 0xedef8ba9_79d6_4ace_a3c8_27dcd51d21ed,
            DrmSystem::PlayReady => 0x9a04f079_9840_4286_ab92_e65be0885f95,
            DrmSystem::FairPlay => 0x94ce86fb_07ff_4f43_adb8_93d2fa968ca2,
        })
    }

    pub fn from_system_id(id: &uuid::Uuid) -> Option<DrmSystem> {
        DrmSystem::ALL.into_iter().find(|s| s.system_id() == *id)
    }

    /// The name the contract, the CLI and the playback answer use.
    pub fn name(&self) -> &'static str {
        match self {
            DrmSystem::Widevine => "widevine",
            DrmSystem::PlayReady => "playready",
            DrmSystem::FairPlay => "fairplay",
        }
    }

    pub fn parse(name: &str) -> Option<DrmSystem> {
        DrmSystem::ALL.into_iter().find(|s| s.name() == name.trim().to_ascii_lowercase())
    }

    /// Parses a comma-separated list (`widevine,playready`), each system once.
    pub fn parse_list(text: &str) -> Result<Vec<DrmSystem>, String> {
        let mut systems = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let system =
                DrmSystem::parse(name).ok_or_else(|| format!("unknown DRM system {name:?}: use widevine, playready or fairplay"))?;
            if !systems.contains(&system) {
                systems.push(system);
            }
        }
        Ok(systems)
    }

    /// `widevine,playready`, as `--drm-systems` takes them.
    pub fn list(systems: &[DrmSystem]) -> String {
        systems.iter().map(DrmSystem::name).collect::<Vec<_>>().join(",")
    }

    /// HLS `KEYFORMAT`.
    pub fn hls_keyformat(&self) -> String {
        match self {
            DrmSystem::FairPlay => "com.apple.streamingkeydelivery".into(),
            DrmSystem::PlayReady => "com.microsoft.playready".into(),
            DrmSystem::Widevine => format!("urn:uuid:{}", self.system_id()),
        }
    }

    /// DASH `ContentProtection@value`, as players and packagers name them.
    pub fn dash_value(&self) -> &'static str {
        match self {
            DrmSystem::Widevine => "Widevine",
            DrmSystem::PlayReady => "MSPR 2.0",
            DrmSystem::FairPlay => "FairPlay",
        }
    }

    /// The deployment variable naming this system's licence server (read by playback and the
    /// manifest function; infra/contract.json's `drm.systems`).
    pub fn license_url_env(&self) -> &'static str {
        match self {
            DrmSystem::Widevine => "VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL",
            DrmSystem::PlayReady => "VAULTSTREAM_DRM_PLAYREADY_LICENSE_URL",
            DrmSystem::FairPlay => "VAULTSTREAM_DRM_FAIRPLAY_LICENSE_URL",
        }
    }
}

impl std::fmt::Display for DrmSystem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What a key provider returned for one system, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signaling {
    pub system: DrmSystem,
    /// A whole `pssh` box (size, type, version, system id, KIDs, data).
    pub pssh: Option<Vec<u8>>,
    /// `#EXT-X-KEY` lines for media playlists.
    pub hls_media: Vec<String>,
    /// `#EXT-X-SESSION-KEY` lines for the master.
    pub hls_master: Vec<String>,
}

impl Signaling {
    /// Checks a provider's answer for `system` and `kid`; the HLS lines are the decoded
    /// `HLSSignalingData` texts (one or more lines each).
    pub fn checked(
        system: DrmSystem,
        kid: &Kid,
        pssh: Option<Vec<u8>>,
        hls_media: Option<&str>,
        hls_master: Option<&str>,
    ) -> Result<Signaling, String> {
        if let Some(pssh) = &pssh {
            check_pssh(system, kid, pssh)?;
        }
        let lines = |text: Option<&str>, tag: &str| -> Result<Vec<String>, String> {
            let Some(text) = text else { return Ok(Vec::new()) };
            let lines: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
            for line in &lines {
                check_hls_line(system, line, tag)?;
            }
            Ok(lines)
        };
        let signaling =
            Signaling { system, pssh, hls_media: lines(hls_media, "#EXT-X-KEY:")?, hls_master: lines(hls_master, "#EXT-X-SESSION-KEY:")? };
        if signaling.pssh.is_none() && signaling.hls_media.is_empty() {
            return Err(format!("the key provider gave {system} neither a PSSH nor HLS signalling"));
        }
        Ok(signaling)
    }

    /// The media playlist's key lines: the provider's, or one built as each system's HLS
    /// specification has it: Widevine the whole `pssh` box as a data URI with `KEYID=0x…`
    /// (video.js's HLS parser ignores a Widevine key without it), PlayReady its PlayReady Object
    /// (the box's data) as a UTF-16 data URI, FairPlay `skd://` with the KID.
    pub fn media_lines(&self, kid: &Kid) -> Vec<String> {
        use base64::engine::general_purpose::STANDARD;
        use base64::Engine;
        if !self.hls_media.is_empty() {
            return self.hls_media.clone();
        }
        let attributes = match (self.system, &self.pssh) {
            (DrmSystem::FairPlay, _) => format!("URI=\"skd://{}\"", hex::encode(kid.as_bytes())),
            (DrmSystem::Widevine, Some(pssh)) => {
                format!("URI=\"data:text/plain;base64,{}\",KEYID=0x{}", STANDARD.encode(pssh), hex::encode_upper(kid.as_bytes()))
            }
            (DrmSystem::PlayReady, Some(pssh)) => {
                format!("URI=\"data:text/plain;charset=UTF-16;base64,{}\"", STANDARD.encode(pssh_data(pssh)))
            }
            (_, None) => return Vec::new(),
        };
        vec![format!("#EXT-X-KEY:METHOD=SAMPLE-AES,{attributes},KEYFORMAT=\"{}\",KEYFORMATVERSIONS=\"1\"", self.system.hls_keyformat())]
    }
}

/// The big-endian `u32` at `at`, where there is one.
fn be_u32(bytes: &[u8], at: usize) -> Option<usize> {
    Some(u32::from_be_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?) as usize)
}

/// Where a `pssh` box's data starts: after the header, the system id, the KIDs of a version 1
/// box and the data size.
fn pssh_data_start(pssh: &[u8]) -> Option<usize> {
    let kids = match pssh.get(8)? {
        1 => 4 + be_u32(pssh, 28)?.checked_mul(16)?,
        _ => 0,
    };
    Some(28 + kids + 4)
}

/// The data of a checked `pssh` box.
fn pssh_data(pssh: &[u8]) -> &[u8] {
    pssh_data_start(pssh).and_then(|start| pssh.get(start..)).unwrap_or_default()
}

/// A `pssh` box of `system` that, if it lists KIDs (version 1), lists `kid`.
fn check_pssh(system: DrmSystem, kid: &Kid, pssh: &[u8]) -> Result<(), String> {
    let bad = |why: &str| Err(format!("the key provider's {system} PSSH {why}"));
    if pssh.len() < 32 || pssh.len() > 64 * 1024 {
        return bad("is not a pssh box of a plausible size");
    }
    if be_u32(pssh, 0) != Some(pssh.len()) || &pssh[4..8] != b"pssh" {
        return bad("is not one whole pssh box");
    }
    if uuid::Uuid::from_slice(&pssh[12..28]).ok() != Some(system.system_id()) {
        return bad("names another DRM system");
    }
    match pssh[8] {
        0 => {}
        1 => {
            let count = be_u32(pssh, 28).unwrap_or_default();
            let Some(kids) = count.checked_mul(16).and_then(|n| pssh.get(32..32 + n)) else { return bad("lists more KIDs than it holds") };
            if !kids.chunks(16).any(|k| k == kid.as_bytes()) {
                return bad("does not list the title's KID");
            }
        }
        _ => return bad("has an unknown version"),
    }
    let start = pssh_data_start(pssh).unwrap_or(usize::MAX);
    match (start.checked_sub(4).and_then(|at| be_u32(pssh, at)), start) {
        (Some(size), start) if start.checked_add(size) == Some(pssh.len()) => Ok(()),
        _ => bad("has a data size that does not match the box"),
    }
}

fn check_hls_line(system: DrmSystem, line: &str, tag: &str) -> Result<(), String> {
    let bad =
        |why: &str| Err(format!("the key provider's {system} HLS signalling {why}: {:?}", line.chars().take(120).collect::<String>()));
    if !line.starts_with(tag) {
        return bad(&format!("is not a {} tag", tag.trim_end_matches(':')));
    }
    if line.len() > 8 * 1024 || line.chars().any(|c| c.is_control()) {
        return bad("is too long or holds control characters");
    }
    if !line.contains("METHOD=SAMPLE-AES") {
        return bad("does not use METHOD=SAMPLE-AES (the cbcs packaging)");
    }
    if !line.contains(&format!("KEYFORMAT=\"{}\"", system.hls_keyformat())) {
        return bad(&format!("does not name KEYFORMAT=\"{}\"", system.hls_keyformat()));
    }
    Ok(())
}

/// What the packager asks a key provider for: the key of `kid` for one title, and the
/// signalling of each system.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    /// `{tenant}/{content}`: the vendor's content id, which its licence policies key on.
    pub content_id: String,
    pub kid: Kid,
    pub systems: Vec<DrmSystem>,
}

/// A key provider's answer: the content key (only ever in memory) and each system's signalling.
#[derive(Debug)]
pub struct ProvidedKey {
    pub key: ContentKey,
    pub signaling: Vec<Signaling>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyProviderError {
    /// The provider could not be reached or failed (5xx, 429, a timeout): worth a retry.
    #[error("the key provider is unavailable: {0}")]
    Unavailable(String),
    /// It answered, but refused or answered something unusable: a retry would not help.
    #[error("the key provider refused the request: {0}")]
    Refused(String),
}

/// Where a title's CMAF keys come from when a DRM vendor holds them.
#[async_trait]
pub trait KeyProvider: Send + Sync {
    async fn cmaf_key(&self, request: &KeyRequest) -> Result<ProvidedKey, KeyProviderError>;
}

/// The licence servers a deployment names (drm.systems in infra/contract.json), read from the
/// environment by playback and the manifest function.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenseServers {
    pub urls: Vec<(DrmSystem, String)>,
    pub fairplay_certificate_url: Option<String>,
}

pub const FAIRPLAY_CERTIFICATE_URL_ENV: &str = "VAULTSTREAM_DRM_FAIRPLAY_CERTIFICATE_URL";

impl LicenseServers {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> LicenseServers {
        let set = |name: &str| lookup(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        LicenseServers {
            urls: DrmSystem::ALL.into_iter().filter_map(|s| set(s.license_url_env()).map(|url| (s, url))).collect(),
            fairplay_certificate_url: set(FAIRPLAY_CERTIFICATE_URL_ENV),
        }
    }

    pub fn from_env() -> LicenseServers {
        LicenseServers::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn url(&self, system: DrmSystem) -> Option<&str> {
        self.urls.iter().find(|(s, _)| *s == system).map(|(_, u)| u.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pssh(system: DrmSystem, kids: &[&Kid], data: &[u8]) -> Vec<u8> {
        crate::cenc::pssh_box(system.system_id().as_bytes(), kids, data)
    }

    #[test]
    fn a_providers_pssh_must_be_a_whole_box_of_its_system_listing_the_kid() {
        let kid = Kid::derive("t", "c", "c0");
        let other = Kid::derive("t", "d", "c0");
        assert!(Signaling::checked(DrmSystem::Widevine, &kid, Some(pssh(DrmSystem::Widevine, &[&kid], b"wv")), None, None).is_ok());
        assert!(Signaling::checked(DrmSystem::Widevine, &kid, Some(pssh(DrmSystem::Widevine, &[], b"wv")), None, None).is_ok());
        let cases = [
            (pssh(DrmSystem::PlayReady, &[&kid], b"pr"), "names another DRM system"),
            (pssh(DrmSystem::Widevine, &[&other], b"wv"), "does not list the title's KID"),
            (pssh(DrmSystem::Widevine, &[&kid], b"wv")[..40].to_vec(), "not one whole pssh box"),
            (b"not a box at all, only some text".to_vec(), "not one whole pssh box"),
            (
                {
                    let mut b = pssh(DrmSystem::Widevine, &[&kid], b"wv");
                    b[31] = 5;
                    b
                },
                "lists more KIDs than it holds",
            ),
            (
                {
                    let mut b = pssh(DrmSystem::Widevine, &[&kid], b"wv");
                    let n = b.len();
                    b[n - 3] = 9;
                    b
                },
                "data size that does not match",
            ),
            (
                {
                    let mut b = pssh(DrmSystem::Widevine, &[&kid], b"wv");
                    b[8] = 2;
                    b
                },
                "unknown version",
            ),
        ];
        for (bytes, why) in cases {
            let err = Signaling::checked(DrmSystem::Widevine, &kid, Some(bytes), None, None).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_providers_hls_lines_must_be_sample_aes_key_tags_of_its_system() {
        let kid = Kid::derive("t", "c", "c0");
        let good = "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"";
        let s = Signaling::checked(DrmSystem::FairPlay, &kid, None, Some(good), None).unwrap();
        assert_eq!(s.media_lines(&kid), vec![good.to_string()]);
        for (line, why) in [
            ("#EXT-X-KEY:METHOD=AES-128,URI=\"skd://abc\",KEYFORMAT=\"com.apple.streamingkeydelivery\"", "METHOD=SAMPLE-AES"),
            ("#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://abc\",KEYFORMAT=\"identity\"", "KEYFORMAT"),
            ("https://evil.example/segment.ts", "not a #EXT-X-KEY tag"),
            ("#EXT-X-KEY:METHOD=SAMPLE-AES,KEYFORMAT=\"com.apple.streamingkeydelivery\"\u{0}", "control characters"),
        ] {
            let err = Signaling::checked(DrmSystem::FairPlay, &kid, None, Some(line), None).unwrap_err();
            assert!(err.contains(why), "{line}: {err}");
        }
        // A second line that smuggles a segment in is refused like a first.
        let smuggled = format!("{good}\n#EXTINF:4,\nhttps://evil.example/ad.ts");
        assert!(Signaling::checked(DrmSystem::FairPlay, &kid, None, Some(&smuggled), None).is_err());
        assert!(Signaling::checked(DrmSystem::Widevine, &kid, None, None, None).unwrap_err().contains("neither"));
    }

    #[test]
    fn key_lines_built_from_a_pssh_carry_it_as_a_data_uri_and_fairplay_names_the_kid() {
        let kid = Kid::derive("t", "c", "c0");
        let box_ = pssh(DrmSystem::Widevine, &[&kid], b"wv");
        let s = Signaling::checked(DrmSystem::Widevine, &kid, Some(box_.clone()), None, None).unwrap();
        let line = &s.media_lines(&kid)[0];
        assert!(line.contains("KEYFORMAT=\"urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\""), "{line}");
        use base64::Engine;
        assert!(
            line.contains(&format!("URI=\"data:text/plain;base64,{}\"", base64::engine::general_purpose::STANDARD.encode(&box_))),
            "{line}"
        );
        assert!(line.contains(&format!(",KEYID=0x{},", hex::encode_upper(kid.as_bytes()))), "{line}");
        let pro = Signaling::checked(DrmSystem::PlayReady, &kid, Some(pssh(DrmSystem::PlayReady, &[&kid], b"<PRO>")), None, None).unwrap();
        let line = &pro.media_lines(&kid)[0];
        let encoded = base64::engine::general_purpose::STANDARD.encode(b"<PRO>");
        assert!(line.contains(&format!("URI=\"data:text/plain;charset=UTF-16;base64,{encoded}\"")), "the PlayReady Object alone: {line}");
        let fp = Signaling { system: DrmSystem::FairPlay, pssh: None, hls_media: vec![], hls_master: vec![] };
        assert!(fp.media_lines(&kid)[0].contains(&format!("skd://{}", hex::encode(kid.as_bytes()))));
    }

    #[test]
    fn systems_parse_from_names_and_licence_servers_from_the_environment() {
        assert_eq!(DrmSystem::parse_list("widevine, PlayReady,widevine").unwrap(), vec![DrmSystem::Widevine, DrmSystem::PlayReady]);
        assert!(DrmSystem::parse_list("widevine,primetime").unwrap_err().contains("primetime"));
        let servers = LicenseServers::from_lookup(|name| match name {
            "VAULTSTREAM_DRM_WIDEVINE_LICENSE_URL" => Some("https://wv.example/license".into()),
            "VAULTSTREAM_DRM_PLAYREADY_LICENSE_URL" => Some("  ".into()),
            _ => None,
        });
        assert_eq!(servers.url(DrmSystem::Widevine), Some("https://wv.example/license"));
        assert_eq!(servers.url(DrmSystem::PlayReady), None);
    }

    #[test]
    fn the_contracts_drm_systems_are_the_codes() {
        let contract: serde_json::Value =
            serde_json::from_str(include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/contract.json"))).unwrap();
        let systems = contract["drm"]["systems"].as_object().unwrap();
        assert_eq!(systems.len(), DrmSystem::ALL.len());
        for system in DrmSystem::ALL {
            let spec = &systems[system.name()];
            assert_eq!(spec["system_id"], system.system_id().to_string(), "{system}");
            assert_eq!(spec["hls_keyformat"], system.hls_keyformat(), "{system}");
            assert_eq!(spec["license_url_env"], system.license_url_env(), "{system}");
        }
        let settings: Vec<&str> = contract["drm"]["settings"].as_array().unwrap().iter().map(|s| s["env"].as_str().unwrap()).collect();
        assert!(settings.contains(&FAIRPLAY_CERTIFICATE_URL_ENV));
    }
}
