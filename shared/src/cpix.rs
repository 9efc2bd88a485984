//! SPEKE v2's documents: the CPIX 2.3 request the packager sends a DRM vendor's key provider,
//! and the reading of its answer.
//!
//! The request names one content key (the title's KID, `cbcs`), asks each configured system
//! for its `PSSH` and HLS signalling, and states the encryption contract: the one key protects
//! every track (`intendedTrackType="ALL"` with an empty video and audio filter, SPEKE's SHARED
//! preset). The answer must give that key in the clear (`pskc:PlainValue`; SPEKE's transport is
//! TLS, and documents with encrypted keys are refused with a message saying so) and may give
//! each system's signalling, which `drm::Signaling::checked` then holds to its rules.

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use quick_xml::events::{BytesStart, Event};
use quick_xml::{Decoder, Reader, XmlVersion};

use crate::drm::{KeyRequest, ProvidedKey, Signaling};
use crate::ContentKey;

pub const CPIX_NAMESPACE: &str = "urn:dashif:org:cpix";
pub const PSKC_NAMESPACE: &str = "urn:ietf:params:xml:ns:keyprov:pskc";
pub const CPIX_VERSION: &str = "2.3";
/// `X-Speke-Version`, on the request and the answer.
pub const SPEKE_VERSION: &str = "2.0";
/// The largest answer read: a few keys' signalling is a few kilobytes.
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// The CPIX document of a SPEKE v2 request.
pub fn request(request: &KeyRequest) -> String {
    let kid = request.kid.uuid();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<cpix:CPIX xmlns:cpix=\"{CPIX_NAMESPACE}\" xmlns:pskc=\"{PSKC_NAMESPACE}\" contentId=\"{}\" version=\"{CPIX_VERSION}\">",
        escape(&request.content_id)
    );
    let _ = writeln!(
        out,
        "  <cpix:ContentKeyList>\n    <cpix:ContentKey kid=\"{kid}\" commonEncryptionScheme=\"cbcs\"/>\n  </cpix:ContentKeyList>"
    );
    out.push_str("  <cpix:DRMSystemList>\n");
    for system in &request.systems {
        let _ = writeln!(out, "    <cpix:DRMSystem kid=\"{kid}\" systemId=\"{}\">", system.system_id());
        out.push_str("      <cpix:PSSH/>\n      <cpix:ContentProtectionData/>\n");
        out.push_str("      <cpix:HLSSignalingData playlist=\"media\"/>\n      <cpix:HLSSignalingData playlist=\"master\"/>\n");
        out.push_str("    </cpix:DRMSystem>\n");
    }
    out.push_str("  </cpix:DRMSystemList>\n  <cpix:ContentKeyUsageRuleList>\n");
    let _ = writeln!(out, "    <cpix:ContentKeyUsageRule kid=\"{kid}\" intendedTrackType=\"ALL\">");
    out.push_str("      <cpix:VideoFilter/>\n      <cpix:AudioFilter/>\n    </cpix:ContentKeyUsageRule>\n");
    out.push_str("  </cpix:ContentKeyUsageRuleList>\n</cpix:CPIX>\n");
    out
}

/// One `DRMSystem` of an answer, undecoded.
#[derive(Debug, Default)]
struct SystemAnswer {
    pssh: Option<String>,
    hls_media: Option<String>,
    hls_master: Option<String>,
}

#[derive(Debug, Default)]
struct Answer {
    root_seen: bool,
    version: Option<String>,
    /// KID → the key's base64, and whether it came encrypted.
    keys: HashMap<String, (Option<String>, bool)>,
    schemes: HashMap<String, Option<String>>,
    systems: HashMap<(String, String), SystemAnswer>,
}

fn attribute(element: &BytesStart<'_>, name: &str, decoder: Decoder) -> Result<Option<String>, String> {
    for attr in element.attributes() {
        let attr = attr.map_err(|e| format!("an unreadable attribute: {e}"))?;
        if attr.key.local_name().as_ref() == name.as_bytes() {
            return Ok(Some(
                attr.decoded_and_normalized_value(XmlVersion::Implicit1_0, decoder)
                    .map_err(|e| format!("attribute {name}: {e}"))?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

/// Reads a key provider's answer to `request`: the key of its KID, and each asked system's
/// signalling, checked. Every error says what the document lacked or held.
pub fn read_answer(document: &str, request: &KeyRequest) -> Result<ProvidedKey, String> {
    let answer = parse(document)?;
    if !answer.root_seen {
        return Err("the answer is not a CPIX document (no cpix:CPIX root)".into());
    }
    if let Some(version) = &answer.version {
        if version != CPIX_VERSION && !version.starts_with("2.") {
            return Err(format!("the answer is CPIX {version}; SPEKE v2 speaks CPIX {CPIX_VERSION}"));
        }
    }
    let kid = request.kid.uuid();
    let key = answer.keys.iter().find(|(k, _)| k.eq_ignore_ascii_case(&kid)).map(|(_, v)| v);
    let key = match key {
        None => return Err(format!("the answer has no ContentKey for KID {kid}")),
        Some((_, true)) => {
            return Err("the answer's content key is encrypted (DeliveryData); VaultStream takes keys in the clear over TLS: \
                        configure the key provider to answer without document encryption"
                .into())
        }
        Some((None, false)) => return Err(format!("the answer's ContentKey {kid} carries no key (pskc:Secret/pskc:PlainValue)")),
        Some((Some(value), false)) => value,
    };
    if let Some(Some(scheme)) = answer.schemes.iter().find(|(k, _)| k.eq_ignore_ascii_case(&kid)).map(|(_, v)| v) {
        if scheme != "cbcs" {
            return Err(format!("the answer's ContentKey is for {scheme:?}, not the requested cbcs"));
        }
    }
    let bytes = STANDARD.decode(key.trim()).map_err(|_| "the answer's content key is not base64".to_string())?;
    let bytes: [u8; 16] = bytes.try_into().map_err(|b: Vec<u8>| format!("the answer's content key is {} bytes, not 16", b.len()))?;
    let key = ContentKey::from_bytes(bytes);

    let mut signaling = Vec::new();
    for system in &request.systems {
        let found = answer
            .systems
            .iter()
            .find(|((k, s), _)| k.eq_ignore_ascii_case(&kid) && uuid::Uuid::parse_str(s).ok() == Some(system.system_id()))
            .map(|(_, v)| v);
        let Some(found) = found else { return Err(format!("the answer has no DRMSystem for {system} ({})", system.system_id())) };
        let decode = |what: &str, text: &Option<String>| -> Result<Option<Vec<u8>>, String> {
            match text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
                None => Ok(None),
                Some(t) => STANDARD.decode(t).map(Some).map_err(|_| format!("the answer's {system} {what} is not base64")),
            }
        };
        let text = |what: &str, bytes: Option<Vec<u8>>| -> Result<Option<String>, String> {
            bytes.map(|b| String::from_utf8(b).map_err(|_| format!("the answer's {system} {what} is not UTF-8 text"))).transpose()
        };
        let pssh = decode("PSSH", &found.pssh)?;
        let media = text("HLSSignalingData", decode("HLSSignalingData", &found.hls_media)?)?;
        let master = text("HLSSignalingData", decode("HLSSignalingData", &found.hls_master)?)?;
        signaling.push(Signaling::checked(*system, &request.kid, pssh, media.as_deref(), master.as_deref())?);
    }
    Ok(ProvidedKey { key, signaling })
}

fn parse(document: &str) -> Result<Answer, String> {
    let mut reader = Reader::from_str(document);
    reader.config_mut().trim_text(true);
    let mut answer = Answer::default();
    // The open elements' local names, and the KID / system / playlist each sits under.
    let mut path: Vec<String> = Vec::new();
    let mut key_kid: Option<String> = None;
    let mut system: Option<(String, String)> = None;
    let mut playlist: Option<String> = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("the answer is not well-formed XML: {e}"))?;
        let (element, empty) = match &event {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = element {
            let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
            match name.as_str() {
                "CPIX" if path.is_empty() => {
                    answer.root_seen = true;
                    answer.version = attribute(&e, "version", reader.decoder())?;
                }
                "ContentKey" if path.last().map(String::as_str) == Some("ContentKeyList") => {
                    let kid = attribute(&e, "kid", reader.decoder())?.ok_or("a ContentKey without a kid")?;
                    answer.schemes.insert(kid.clone(), attribute(&e, "commonEncryptionScheme", reader.decoder())?);
                    answer.keys.entry(kid.clone()).or_insert((None, false));
                    key_kid = Some(kid);
                }
                "EncryptedValue" => {
                    if let Some(kid) = &key_kid {
                        answer.keys.entry(kid.clone()).or_insert((None, false)).1 = true;
                    }
                }
                "DRMSystem" => {
                    let kid = attribute(&e, "kid", reader.decoder())?.ok_or("a DRMSystem without a kid")?;
                    let id = attribute(&e, "systemId", reader.decoder())?.ok_or("a DRMSystem without a systemId")?;
                    answer.systems.entry((kid.clone(), id.clone())).or_default();
                    system = Some((kid, id));
                }
                "HLSSignalingData" => playlist = Some(attribute(&e, "playlist", reader.decoder())?.unwrap_or_else(|| "media".into())),
                _ => {}
            }
            if !empty {
                path.push(name);
            } else if name == "ContentKey" {
                key_kid = None;
            } else if name == "DRMSystem" {
                system = None;
            }
            continue;
        }
        match event {
            Event::End(_) => match path.pop().as_deref() {
                Some("ContentKey") => key_kid = None,
                Some("DRMSystem") => system = None,
                Some("HLSSignalingData") => playlist = None,
                _ => {}
            },
            Event::Text(t) => {
                let text = t.decode().map_err(|e| format!("the answer's text is not readable: {e}"))?.into_owned();
                let here = path.last().map(String::as_str);
                match (here, &key_kid, &system) {
                    (Some("PlainValue"), Some(kid), _) if path.iter().any(|p| p == "Secret") => {
                        answer.keys.entry(kid.clone()).or_insert((None, false)).0 = Some(text);
                    }
                    (Some("PSSH"), _, Some(s)) => answer.systems.entry(s.clone()).or_default().pssh = Some(text),
                    (Some("HLSSignalingData"), _, Some(s)) => {
                        let entry = answer.systems.entry(s.clone()).or_default();
                        match playlist.as_deref() {
                            Some("master") => entry.hls_master = Some(text),
                            _ => entry.hls_media = Some(text),
                        }
                    }
                    _ => {}
                }
            }
            Event::DocType(_) => return Err("the answer has a DOCTYPE; CPIX documents have none".into()),
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err(format!("the answer is not well-formed XML: <{}> is never closed", path.join("><"))),
            _ => {}
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cenc::Kid;
    use crate::drm::DrmSystem;

    fn asked() -> KeyRequest {
        KeyRequest {
            content_id: "acme/launch&co".into(),
            kid: Kid::derive("acme", "launch", "c0"),
            systems: vec![DrmSystem::Widevine, DrmSystem::FairPlay],
        }
    }

    fn pssh(kid: &Kid) -> Vec<u8> {
        crate::cenc::pssh_box(DrmSystem::Widevine.system_id().as_bytes(), &[kid], b"wv")
    }

    /// An answer as vendors write it: prefixed names, the key in the clear.
    fn answer(kid: &Kid, key: &str, fairplay_line: &str) -> String {
        format!(
            r#"<?xml version="1.0"?>
<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" contentId="acme/launch" version="2.3">
 <cpix:ContentKeyList><cpix:ContentKey kid="{k}" commonEncryptionScheme="cbcs"><cpix:Data><pskc:Secret><pskc:PlainValue>{key}</pskc:PlainValue></pskc:Secret></cpix:Data></cpix:ContentKey></cpix:ContentKeyList>
 <cpix:DRMSystemList>
  <cpix:DRMSystem kid="{k}" systemId="edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"><cpix:PSSH>{p}</cpix:PSSH><cpix:ContentProtectionData/></cpix:DRMSystem>
  <cpix:DRMSystem kid="{k}" systemId="94CE86FB-07FF-4F43-ADB8-93D2FA968CA2"><cpix:HLSSignalingData playlist="media">{fp}</cpix:HLSSignalingData><cpix:HLSSignalingData playlist="master">{fpm}</cpix:HLSSignalingData></cpix:DRMSystem>
 </cpix:DRMSystemList>
</cpix:CPIX>"#,
            k = kid.uuid(),
            p = STANDARD.encode(pssh(kid)),
            fp = STANDARD.encode(fairplay_line),
            fpm = STANDARD.encode(fairplay_line.replace("#EXT-X-KEY:", "#EXT-X-SESSION-KEY:")),
        )
    }

    const FAIRPLAY: &str =
        "#EXT-X-KEY:METHOD=SAMPLE-AES,URI=\"skd://launch\",KEYFORMAT=\"com.apple.streamingkeydelivery\",KEYFORMATVERSIONS=\"1\"";

    #[test]
    fn the_request_names_the_kid_each_system_and_one_key_for_all_tracks() {
        let doc = request(&asked());
        let kid = asked().kid.uuid();
        assert!(doc.contains("contentId=\"acme/launch&amp;co\" version=\"2.3\""), "{doc}");
        assert!(doc.contains(&format!("<cpix:ContentKey kid=\"{kid}\" commonEncryptionScheme=\"cbcs\"/>")), "{doc}");
        assert!(
            doc.contains("systemId=\"edef8ba9-79d6-4ace-a3c8-27dcd51d21ed\"")
                && doc.contains("systemId=\"94ce86fb-07ff-4f43-adb8-93d2fa968ca2\"")
        );
        assert!(doc.contains("intendedTrackType=\"ALL\">\n      <cpix:VideoFilter/>\n      <cpix:AudioFilter/>"), "{doc}");
        // The request is itself a document the reader parses (well-formed, one root).
        assert!(parse(&doc).unwrap().root_seen);
    }

    #[test]
    fn an_answer_gives_the_key_and_each_systems_checked_signalling() {
        let req = asked();
        let key = [7u8; 16];
        let got = read_answer(&answer(&req.kid, &STANDARD.encode(key), FAIRPLAY), &req).unwrap();
        assert_eq!(got.key.expose(), &key);
        assert_eq!(got.signaling.len(), 2);
        assert_eq!(got.signaling[0].pssh.as_deref(), Some(&pssh(&req.kid)[..]));
        assert_eq!(got.signaling[1].hls_media, vec![FAIRPLAY.to_string()]);
        assert!(got.signaling[1].hls_master[0].starts_with("#EXT-X-SESSION-KEY:"));
    }

    #[test]
    fn unusable_answers_are_refused_with_what_was_wrong() {
        let req = asked();
        let good_key = STANDARD.encode([7u8; 16]);
        let doc = answer(&req.kid, &good_key, FAIRPLAY);
        let other = Kid::derive("acme", "other", "c0");
        let cases: Vec<(String, &str)> = vec![
            ("<html>502 Bad Gateway</html>".into(), "not a CPIX document"),
            ("<cpix:CPIX xmlns:cpix=\"urn:dashif:org:cpix\"><unclosed>".into(), "well-formed"),
            (doc.replace(&req.kid.uuid(), &other.uuid()), "no ContentKey for KID"),
            (doc.replace(&good_key, &STANDARD.encode([1u8; 8])), "8 bytes, not 16"),
            (
                doc.replace("<pskc:PlainValue>", "<pskc:EncryptedValue>").replace("</pskc:PlainValue>", "</pskc:EncryptedValue>"),
                "encrypted",
            ),
            (doc.replace("commonEncryptionScheme=\"cbcs\"", "commonEncryptionScheme=\"cenc\""), "not the requested cbcs"),
            (doc.replace("94CE86FB-07FF-4F43-ADB8-93D2FA968CA2", "9a04f079-9840-4286-ab92-e65be0885f95"), "no DRMSystem for fairplay"),
            (answer(&req.kid, &good_key, "#EXTINF:4,\nhttps://evil.example/ad.ts"), "not a #EXT-X-KEY tag"),
            (format!("<!DOCTYPE x [<!ENTITY a \"aaaa\">]>{doc}"), "DOCTYPE"),
        ];
        for (doc, why) in cases {
            let err = read_answer(&doc, &req).unwrap_err();
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
