//! The media a creator may upload: each declared content type, the file extensions that go with
//! it, and the FFmpeg demuxer that will read it. Anything else is refused before an upload URL
//! is issued (415), and the transcoder opens sources only with these demuxers.

/// One accepted content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaType {
    pub content_type: &'static str,
    pub extensions: &'static [&'static str],
    /// FFmpeg's short name for the demuxer (`mov,mp4,m4a,3gp,3g2,mj2` answers to `mov`).
    pub demuxer: &'static str,
    pub audio_only: bool,
}

const fn video(content_type: &'static str, extensions: &'static [&'static str], demuxer: &'static str) -> MediaType {
    MediaType { content_type, extensions, demuxer, audio_only: false }
}

const fn audio(content_type: &'static str, extensions: &'static [&'static str], demuxer: &'static str) -> MediaType {
    MediaType { content_type, extensions, demuxer, audio_only: true }
}

pub const ACCEPTED: &[MediaType] = &[
    video("video/mp4", &["mp4", "m4v"], "mov"),
    video("video/quicktime", &["mov", "qt"], "mov"),
    video("video/x-matroska", &["mkv"], "matroska"),
    video("video/webm", &["webm"], "matroska"),
    video("video/mp2t", &["ts", "m2ts", "mts"], "mpegts"),
    video("video/mpeg", &["mpg", "mpeg", "m2v"], "mpeg"),
    video("video/x-msvideo", &["avi"], "avi"),
    video("video/x-flv", &["flv"], "flv"),
    video("video/3gpp", &["3gp"], "mov"),
    audio("audio/mpeg", &["mp3"], "mp3"),
    audio("audio/mp4", &["m4a", "mp4"], "mov"),
    audio("audio/x-m4a", &["m4a"], "mov"),
    audio("audio/aac", &["aac"], "aac"),
    audio("audio/wav", &["wav"], "wav"),
    audio("audio/x-wav", &["wav"], "wav"),
    audio("audio/flac", &["flac"], "flac"),
    audio("audio/ogg", &["ogg", "oga", "opus"], "ogg"),
];

/// The accepted type named by a `Content-Type` value (parameters such as `; codecs=` ignored).
pub fn lookup(content_type: &str) -> Option<&'static MediaType> {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    ACCEPTED.iter().find(|m| m.content_type == essence)
}

/// The type a file name's extension stands for (`.mp4` is video): what an agent that only has
/// files declares.
pub fn for_file_name(name: &str) -> Option<&'static MediaType> {
    let (_, extension) = name.rsplit_once('.')?;
    let extension = extension.to_ascii_lowercase();
    ACCEPTED.iter().find(|m| m.extensions.contains(&extension.as_str()))
}

/// The FFmpeg demuxers a source may be read with, comma-separated as FFmpeg's `format_whitelist`
/// option takes them: the accepted types' containers, and raw MPEG video for `.m2v` files. Formats
/// that open other files or URLs (HLS and DASH playlists, concat lists, SDP, image sequences) are
/// not among them.
pub fn demuxer_allow_list() -> String {
    let mut names: Vec<&str> = ACCEPTED.iter().map(|m| m.demuxer).collect();
    names.push("mpegvideo");
    names.sort_unstable();
    names.dedup();
    names.join(",")
}

/// The accepted types as a list for error messages.
pub fn accepted_list() -> String {
    ACCEPTED.iter().map(|m| m.content_type).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_ignore_case_and_parameters() {
        assert_eq!(lookup("Video/MP4; codecs=\"avc1.640028\"").map(|m| m.demuxer), Some("mov"));
        assert!(lookup("audio/flac").unwrap().audio_only);
        assert!(lookup("text/html").is_none());
        assert!(lookup("application/octet-stream").is_none());
        assert!(accepted_list().contains("video/quicktime"));
    }

    #[test]
    fn file_names_map_to_the_first_type_of_their_extension() {
        assert_eq!(for_file_name("Launch.MP4").map(|m| m.content_type), Some("video/mp4"));
        assert_eq!(for_file_name("take.2.mov").map(|m| m.content_type), Some("video/quicktime"));
        assert_eq!(for_file_name("song.m4a").map(|m| m.content_type), Some("audio/mp4"));
        assert!(for_file_name("notes.txt").is_none());
        assert!(for_file_name("mp4").is_none());
    }

    #[test]
    fn the_demuxer_allow_list_names_containers_only() {
        let list = demuxer_allow_list();
        let names: Vec<&str> = list.split(',').collect();
        for m in ACCEPTED {
            assert!(names.contains(&m.demuxer), "{} is missing", m.demuxer);
        }
        for reaching_out in ["hls", "dash", "concat", "sdp", "rtsp", "image2", "tty", "lavfi", "ffmetadata", "subfile"] {
            assert!(!names.contains(&reaching_out), "{reaching_out} must not be allowed");
        }
        assert_eq!(names.len(), list.split(',').collect::<std::collections::BTreeSet<_>>().len(), "duplicates in {list}");
    }
}
