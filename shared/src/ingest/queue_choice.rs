//! Which Batch queue transcodes a source: GPU for 2160p and up or HEVC/AV1 profiles (NVENC pays
//! for itself there), the small audio queue for audio-only sources, CPU for everything else.

use serde::{Deserialize, Serialize};

use crate::ladder::{Profile, VideoCodec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum QueueKind {
    VideoGpu,
    VideoCpu,
    Audio,
}

impl QueueKind {
    pub const ALL: [QueueKind; 3] = [QueueKind::VideoGpu, QueueKind::VideoCpu, QueueKind::Audio];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::VideoGpu => "video-gpu",
            QueueKind::VideoCpu => "video-cpu",
            QueueKind::Audio => "audio",
        }
    }
}

/// What dispatch knows of a source without decoding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceShape {
    /// Declared as an audio type.
    pub audio_only: bool,
    /// The first video track's presentation size, when the container header told us.
    pub video_size: Option<(u32, u32)>,
}

/// The queue, and why (for the audit record).
pub fn choose(profile: &str, shape: SourceShape) -> (QueueKind, String) {
    if shape.audio_only {
        return (QueueKind::Audio, "audio-only source".into());
    }
    let needs_gpu_codec =
        Profile::built_in(profile).is_some_and(|p| p.rungs.iter().any(|r| matches!(r.codec, VideoCodec::Hevc | VideoCodec::Av1)));
    if needs_gpu_codec {
        return (QueueKind::VideoGpu, format!("profile {profile} encodes HEVC or AV1"));
    }
    match shape.video_size {
        Some((w, h)) if w.max(h) >= 3840 || w.min(h) >= 2160 => (QueueKind::VideoGpu, format!("{w}x{h} source (2160p or more)")),
        Some((w, h)) => (QueueKind::VideoCpu, format!("{w}x{h} source")),
        None => (QueueKind::VideoCpu, "source size unknown before decoding".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(w: u32, h: u32) -> SourceShape {
        SourceShape { audio_only: false, video_size: Some((w, h)) }
    }

    #[test]
    fn routes_by_profile_size_and_medium() {
        assert_eq!(choose("default", video(1920, 1080)).0, QueueKind::VideoCpu);
        assert_eq!(choose("default", video(3840, 2160)).0, QueueKind::VideoGpu);
        assert_eq!(choose("default", video(2160, 3840)).0, QueueKind::VideoGpu, "portrait 4K");
        assert_eq!(choose("default", video(4096, 1716)).0, QueueKind::VideoGpu, "scope DCI 4K");
        assert_eq!(choose("default", video(2560, 1440)).0, QueueKind::VideoCpu);
        assert_eq!(choose("hevc-4k", video(1280, 720)).0, QueueKind::VideoGpu);
        assert_eq!(choose("av1-archive", SourceShape::default()).0, QueueKind::VideoGpu);
        assert_eq!(choose("default", SourceShape { audio_only: true, video_size: None }).0, QueueKind::Audio);
        assert_eq!(choose("default", SourceShape::default()).0, QueueKind::VideoCpu);
    }
}
