//! Plan: from what the probe found and the profile, every rendition's size, bit rates, encoder
//! and timeline. A pure function: the encoders are chosen (opened) before it, by the pipeline.

use std::path::Path;

use ff::Rational;
use ffmpeg_next as ff;
use vaultstream::ladder::{self, DroppedRung, HdrPolicy, Profile, SourceGeometry, VideoCodec};

use crate::encoder::{self, Backend, Selection, VideoSettings};
use crate::keyframes::Timeline;
use crate::normalize::{Picture, PictureForms};
use crate::probe::SourceInfo;
use crate::rendition::{RenditionPlan, VideoPlan};

#[derive(Debug, Clone)]
pub struct Plan {
    pub timeline: Timeline,
    /// The output frame rate, when there is video.
    pub frame_rate: Option<(u32, u32)>,
    pub renditions: Vec<RenditionPlan>,
    /// The top SDR rendition's size: poster and thumbnails are taken there.
    pub picture_size: Option<(u32, u32)>,
    /// The pictures the normalizer makes for the renditions.
    pub pictures: PictureForms,
    pub dropped: Vec<DroppedRung>,
}

fn geometry(source: &SourceInfo) -> Option<SourceGeometry> {
    source.video.as_ref().map(|v| SourceGeometry { width: v.display_width, height: v.display_height })
}

/// The video codecs this source's ladder will encode, in rung order, each once.
pub fn codecs_needed(source: &SourceInfo, profile: &Profile) -> Vec<VideoCodec> {
    let mut codecs = Vec::new();
    if let Some(g) = geometry(source) {
        for r in ladder::plan_video(profile, g).renditions {
            if !codecs.contains(&r.rung.codec) {
                codecs.push(r.rung.codec);
            }
        }
    }
    codecs
}

/// The plan for `source` under `profile`; `selections` holds the encoder chosen per codec, and
/// rendition folders go under `staging_dir`.
pub fn plan(source: &SourceInfo, profile: &Profile, preset: &str, selections: &[Selection], staging_dir: &Path) -> Plan {
    let frame_rate = source.video.as_ref().map(|v| ladder::output_frame_rate(v.average_frame_rate, v.nominal_frame_rate));
    let timeline = Timeline {
        fps_num: frame_rate.map_or(1, |f| f.0),
        fps_den: frame_rate.map_or(1, |f| f.1),
        gop_seconds: profile.gop_seconds,
        segment_seconds: profile.segment_seconds,
    };
    let Some(ladder_plan) = geometry(source).map(|g| ladder::plan_video(profile, g)) else {
        let audio = RenditionPlan {
            name: "audio".into(),
            dir: staging_dir.join("audio"),
            container: profile.container,
            timeline,
            video: None,
            audio_kbps: Some(ladder::audio_only_kbps(profile)),
            cmaf: None,
            chunk: None,
        };
        return Plan {
            timeline,
            frame_rate,
            renditions: vec![audio],
            picture_size: None,
            pictures: PictureForms::Sdr,
            dropped: Vec::new(),
        };
    };
    let source_colour = source.video.as_ref().map_or(crate::colour::Tags::BT709, |v| v.colour);
    let hdr_source = source_colour.dynamic_range().is_hdr();
    // HEVC rungs keep an HDR source's range where the profile says so; every other is SDR.
    let picture_of = |codec: VideoCodec| {
        if hdr_source && profile.hdr == HdrPolicy::Keep && codec == VideoCodec::Hevc {
            Picture::Hdr
        } else {
            Picture::Sdr
        }
    };
    let input_time_base = Rational::new(timeline.fps_den as i32, timeline.fps_num as i32);
    let software = |codec: VideoCodec| encoder::candidates(codec)[3].to_string();
    let renditions = ladder_plan
        .renditions
        .iter()
        .map(|planned| {
            let rung = &planned.rung;
            let (encoder_name, fallback) = match selections.iter().find(|s| s.codec == rung.codec.as_str()) {
                // Under `auto`, a hardware encoder that fails for one rung falls back to software.
                Some(s) if !s.forced && s.backend != Backend::Software => (s.name.clone(), Some(software(rung.codec))),
                Some(s) => (s.name.clone(), None),
                None => (software(rung.codec), None),
            };
            let picture = picture_of(rung.codec);
            RenditionPlan {
                name: rung.name.clone(),
                dir: staging_dir.join(&rung.name),
                container: profile.container,
                cmaf: None,
                chunk: None,
                timeline,
                video: Some(VideoPlan {
                    codec: rung.codec,
                    encoder: encoder_name,
                    fallback,
                    preset: preset.to_string(),
                    settings: VideoSettings {
                        width: planned.width,
                        height: planned.height,
                        fps: (timeline.fps_num, timeline.fps_den),
                        gop: timeline.gop_frames(),
                        bitrate_kbps: rung.video_kbps,
                        max_kbps: rung.max_kbps(),
                        global_header: false,
                        extra_options: rung.encoder_options.clone().into_iter().collect(),
                        colour: match picture {
                            Picture::Sdr => source_colour.for_sdr_rung(),
                            Picture::Hdr => source_colour.for_hdr_rung(),
                        },
                        ten_bit: picture == Picture::Hdr,
                        hdr10: match picture {
                            Picture::Hdr => source.video.as_ref().and_then(|v| v.hdr10),
                            Picture::Sdr => None,
                        },
                    },
                    picture,
                    quality_floor: profile.quality_floor,
                    input_time_base,
                }),
                audio_kbps: source.audio.as_ref().map(|_| rung.audio_kbps),
            }
        })
        .collect();
    // Ordered largest first: the first SDR rung is the largest SDR picture anything needs (the
    // tone map runs at that size); with none, thumbnails still need the top rung's size in SDR.
    let top_sdr = ladder_plan
        .renditions
        .iter()
        .find(|p| picture_of(p.rung.codec) == Picture::Sdr)
        .or(ladder_plan.renditions.first())
        .map(|p| (p.width, p.height));
    let pictures = match (hdr_source, top_sdr) {
        (true, Some(sdr_size)) => PictureForms::Hdr {
            source: source_colour,
            sdr_size,
            keep: ladder_plan.renditions.iter().any(|p| picture_of(p.rung.codec) == Picture::Hdr),
        },
        _ => PictureForms::Sdr,
    };
    Plan { timeline, frame_rate, renditions, picture_size: top_sdr, pictures, dropped: ladder_plan.dropped }
}

/// Sets x264's thread count on the rungs it encodes (and whose profile sets none) so the ladder's
/// threads match `cores` ([`encoder::software_threads`]); other encoders keep their own.
pub fn share_cores(renditions: &mut [RenditionPlan], cores: usize) {
    let pixels: Vec<u64> =
        renditions.iter().map(|r| r.video.as_ref().map_or(0, |v| u64::from(v.settings.width) * u64::from(v.settings.height))).collect();
    for (rendition, threads) in renditions.iter_mut().zip(encoder::software_threads(&pixels, cores)) {
        if let Some(v) = rendition.video.as_mut().filter(|v| v.encoder == "libx264") {
            if !v.settings.extra_options.iter().any(|(k, _)| k == "threads") {
                v.settings.extra_options.push(("threads".into(), threads.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::{AudioSource, VideoSource};

    fn source(width: u32, height: u32, audio: bool) -> SourceInfo {
        SourceInfo {
            format: "mov,mp4,m4a,3gp,3g2,mj2".into(),
            size_bytes: 1 << 20,
            duration: Some(10.0),
            start_time: 0.0,
            tags: Default::default(),
            video: (width > 0).then(|| VideoSource {
                index: 0,
                codec: "h264".into(),
                width,
                height,
                display_width: width,
                display_height: height,
                rotation: 0,
                pixel_format: "yuv420p".into(),
                average_frame_rate: Some((30000, 1001)),
                nominal_frame_rate: Some((30000, 1001)),
                scan: crate::probe::Scan::Progressive,
                colour: crate::colour::Tags::BT709,
                dynamic_range: crate::colour::DynamicRange::Sdr,
                hdr10: None,
            }),
            audio: audio.then(|| AudioSource { index: 1, codec: "aac".into(), sample_rate: 48000, channels: 2 }),
        }
    }

    fn selection(name: &str, backend: Backend) -> Selection {
        Selection { codec: "h264", name: name.into(), backend, forced: false, passed_over: Vec::new() }
    }

    #[test]
    fn a_720p_source_keeps_the_rungs_at_or_below_it_with_aligned_gops() {
        let profile = Profile::built_in("default").unwrap();
        let plan = plan(&source(1280, 720, true), &profile, "veryfast", &[selection("libx264", Backend::Software)], Path::new("/s"));
        let names: Vec<&str> = plan.renditions.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["720p", "480p", "360p"]);
        assert_eq!(plan.dropped.len(), 1);
        assert_eq!(plan.frame_rate, Some((30000, 1001)));
        assert_eq!(plan.picture_size, Some((1280, 720)));
        let top = plan.renditions[0].video.as_ref().unwrap();
        assert_eq!((top.settings.width, top.settings.height, top.settings.gop), (1280, 720, plan.timeline.gop_frames()));
        assert_eq!(top.encoder, "libx264");
        assert!(top.fallback.is_none(), "software needs no fallback");
        assert_eq!(plan.renditions[2].dir, Path::new("/s/360p"));
        assert!(plan.renditions.iter().all(|r| r.audio_kbps.is_some()));
    }

    #[test]
    fn x264_rungs_share_the_cores_and_a_profiles_own_thread_count_stays() {
        let mut profile = Profile::built_in("default").unwrap();
        profile.rungs[1].encoder_options.insert("threads".into(), "6".into());
        let mut software =
            plan(&source(1920, 1080, true), &profile, "veryfast", &[selection("libx264", Backend::Software)], Path::new("/s"));
        share_cores(&mut software.renditions, 2);
        let threads = |p: &Plan| -> Vec<Option<String>> {
            p.renditions
                .iter()
                .map(|r| r.video.as_ref().unwrap().settings.extra_options.iter().find(|(k, _)| k == "threads").map(|(_, v)| v.clone()))
                .collect()
        };
        assert_eq!(threads(&software), [Some("2".into()), Some("6".into()), Some("1".into()), Some("1".into())]);
        let mut hardware =
            plan(&source(1920, 1080, true), &profile, "veryfast", &[selection("h264_nvenc", Backend::Nvenc)], Path::new("/s"));
        share_cores(&mut hardware.renditions, 2);
        assert_eq!(threads(&hardware), [None, Some("6".into()), None, None], "NVENC keeps its own threading");
    }

    #[test]
    fn hardware_encoders_fall_back_to_software_per_rung() {
        let profile = Profile::built_in("default").unwrap();
        let plan = plan(&source(1920, 1080, false), &profile, "veryfast", &[selection("h264_nvenc", Backend::Nvenc)], Path::new("/s"));
        let video = plan.renditions[0].video.as_ref().unwrap();
        assert_eq!((video.encoder.as_str(), video.fallback.as_deref()), ("h264_nvenc", Some("libx264")));
        assert!(plan.renditions.iter().all(|r| r.audio_kbps.is_none()), "no audio in, no audio out");
        assert_eq!(codecs_needed(&source(1920, 1080, false), &Profile::built_in("hevc-4k").unwrap()), [VideoCodec::H264]);
        assert_eq!(codecs_needed(&source(3840, 2160, false), &Profile::built_in("hevc-4k").unwrap()), [VideoCodec::Hevc, VideoCodec::H264]);
    }

    #[test]
    fn audio_only_sources_get_one_audio_rendition() {
        let profile = Profile::built_in("default").unwrap();
        let plan = plan(&source(0, 0, true), &profile, "veryfast", &[], Path::new("/s"));
        assert_eq!(plan.renditions.len(), 1);
        assert_eq!(plan.renditions[0].name, "audio");
        assert!(plan.renditions[0].video.is_none() && plan.picture_size.is_none() && plan.frame_rate.is_none());
    }
}
