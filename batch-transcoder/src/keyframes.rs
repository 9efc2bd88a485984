//! Where keyframes and segment cuts fall on the constant-rate output timeline.
//!
//! Every rendition sees the same frame indices, so deciding by index alone gives every rung the
//! same IDR positions and therefore the same segment boundaries (`EXT-X-INDEPENDENT-SEGMENTS`).

/// A frame rate `num/den` frames per second and the GOP and segment lengths in seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timeline {
    pub fps_num: u32,
    pub fps_den: u32,
    pub gop_seconds: f64,
    pub segment_seconds: f64,
}

/// Tolerance for float time comparisons: far below one frame at any supported rate.
const EPSILON: f64 = 1e-6;

impl Timeline {
    pub fn frame_time(&self, index: i64) -> f64 {
        index as f64 * f64::from(self.fps_den) / f64::from(self.fps_num)
    }

    /// GOP length in frames, rounded up, used as the encoder's maximum keyframe interval.
    pub fn gop_frames(&self) -> u32 {
        (self.gop_seconds * f64::from(self.fps_num) / f64::from(self.fps_den) - EPSILON).ceil().max(1.0) as u32
    }

    fn period_index(t: f64, period: f64) -> i64 {
        (t / period + EPSILON).floor() as i64
    }

    /// The segment a media time belongs to: segment `k` starts at the first keyframe at or after
    /// `k * segment_seconds`.
    pub fn segment_index(&self, t: f64) -> i64 {
        Self::period_index(t, self.segment_seconds)
    }

    /// Whether output frame `index` must be an IDR frame: the first frame, and the first frame
    /// at or after every multiple of the GOP length or of the segment length.
    pub fn is_keyframe(&self, index: i64, first_index: i64) -> bool {
        if index <= first_index {
            return true;
        }
        let (t, prev) = (self.frame_time(index), self.frame_time(index - 1));
        Self::period_index(t, self.gop_seconds) != Self::period_index(prev, self.gop_seconds)
            || self.segment_index(t) != self.segment_index(prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeline(num: u32, den: u32, seg: f64) -> Timeline {
        Timeline { fps_num: num, fps_den: den, gop_seconds: 2.0, segment_seconds: seg }
    }

    fn keyframes(t: &Timeline, frames: i64) -> Vec<i64> {
        (0..frames).filter(|&i| t.is_keyframe(i, 0)).collect()
    }

    #[test]
    fn integer_rates_key_every_two_seconds() {
        let t = timeline(30, 1, 6.0);
        assert_eq!(keyframes(&t, 400), vec![0, 60, 120, 180, 240, 300, 360]);
        assert_eq!(t.gop_frames(), 60);
        assert_eq!(t.segment_index(t.frame_time(179)), 0);
        assert_eq!(t.segment_index(t.frame_time(180)), 1);
    }

    #[test]
    fn ntsc_rates_key_at_first_frame_past_each_boundary() {
        let t = timeline(30000, 1001, 6.0);
        let k = keyframes(&t, 400);
        assert_eq!(k, vec![0, 60, 120, 180, 240, 300, 360]);
        for w in k.windows(2) {
            let gop = t.frame_time(w[1]) - t.frame_time(w[0]);
            assert!((gop - 2.0).abs() < 0.04, "{gop}");
        }
        assert_eq!(t.gop_frames(), 60);
    }

    #[test]
    fn segment_boundaries_that_are_not_gop_multiples_still_get_idr() {
        let t = timeline(25, 1, 5.0);
        assert_eq!(keyframes(&t, 260), vec![0, 50, 100, 125, 150, 200, 250]);
    }

    #[test]
    fn first_frame_of_a_late_video_stream_is_key() {
        let t = timeline(30, 1, 6.0);
        assert!(t.is_keyframe(15, 15));
        assert!(!t.is_keyframe(16, 15));
    }
}
