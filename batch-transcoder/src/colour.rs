//! Colour: what a source's pictures are (primaries, transfer, matrix, range), whether they are
//! HDR, and the tags each rung carries. SDR rungs are BT.709 (HDR sources are tone-mapped to it,
//! see `tonemap`); rungs that keep HDR carry the source's BT.2020 PQ or HLG signalling.

use ff::color::{Primaries, Range, Space, TransferCharacteristic};
use ffmpeg_next as ff;
use serde::{Serialize, Serializer};

/// A picture's dynamic range, named as HLS's `VIDEO-RANGE` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DynamicRange {
    #[serde(rename = "SDR")]
    Sdr,
    /// SMPTE ST 2084 (HDR10).
    #[serde(rename = "PQ")]
    Pq,
    /// ARIB STD-B67 hybrid log-gamma.
    #[serde(rename = "HLG")]
    Hlg,
}

impl DynamicRange {
    pub fn of(transfer: TransferCharacteristic) -> Self {
        match transfer {
            TransferCharacteristic::SMPTE2084 => DynamicRange::Pq,
            TransferCharacteristic::ARIB_STD_B67 => DynamicRange::Hlg,
            _ => DynamicRange::Sdr,
        }
    }

    pub fn is_hdr(self) -> bool {
        self != DynamicRange::Sdr
    }

    /// The value of the master playlist's `VIDEO-RANGE` attribute.
    pub fn hls(self) -> &'static str {
        match self {
            DynamicRange::Sdr => "SDR",
            DynamicRange::Pq => "PQ",
            DynamicRange::Hlg => "HLG",
        }
    }
}

/// The four properties that say how a picture's samples are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags {
    pub primaries: Primaries,
    pub transfer: TransferCharacteristic,
    pub matrix: Space,
    pub range: Range,
}

impl Tags {
    /// What SDR delivery should be: BT.709 in limited range.
    pub const BT709: Tags =
        Tags { primaries: Primaries::BT709, transfer: TransferCharacteristic::BT709, matrix: Space::BT709, range: Range::MPEG };

    pub fn dynamic_range(&self) -> DynamicRange {
        DynamicRange::of(self.transfer)
    }

    /// The tags a rung made from a source tagged `self` carries when it is SDR. An SDR source's
    /// samples pass through unconverted, so its own tags stay true (unstated ones read as
    /// BT.709, as HLS players read them); an HDR source is tone-mapped to BT.709.
    pub fn for_sdr_rung(&self) -> Tags {
        if self.dynamic_range().is_hdr() {
            return Tags::BT709;
        }
        Tags {
            primaries: if self.primaries == Primaries::Unspecified { Primaries::BT709 } else { self.primaries },
            transfer: if self.transfer == TransferCharacteristic::Unspecified { TransferCharacteristic::BT709 } else { self.transfer },
            matrix: if self.matrix == Space::Unspecified { Space::BT709 } else { self.matrix },
            range: Range::MPEG,
        }
    }

    /// The tags a rung that keeps an HDR source's range carries: its transfer, BT.2020 where it
    /// does not say otherwise, limited range.
    pub fn for_hdr_rung(&self) -> Tags {
        Tags {
            primaries: if self.primaries == Primaries::Unspecified { Primaries::BT2020 } else { self.primaries },
            transfer: self.transfer,
            matrix: if self.matrix == Space::Unspecified { Space::BT2020NCL } else { self.matrix },
            range: Range::MPEG,
        }
    }

    /// Sets these tags on an encoder about to be opened; encoders write them into the stream's
    /// VUI (H.264, HEVC) or sequence header (AV1), and the fMP4 muxer into a `colr` box.
    pub fn apply_to_encoder(&self, encoder: &mut ff::encoder::video::Video) {
        encoder.set_colorspace(self.matrix);
        encoder.set_color_range(self.range);
        // SAFETY: the context is allocated and not yet opened; these are plain enum fields
        // ffmpeg-next has no setter for.
        unsafe {
            let ctx = encoder.as_mut_ptr();
            (*ctx).color_primaries = self.primaries.into();
            (*ctx).color_trc = self.transfer.into();
        }
    }

    /// zscale's options describing a picture tagged `self` as its input, for what it must read
    /// exactly (HDR sources); unstated properties read as BT.2020 limited range. The output
    /// keeps the input's primaries (zscale cannot take them from an untagged frame).
    #[cfg(test)]
    pub fn zscale_input(&self) -> String {
        let (transfer, primaries) = self.zscale_transfer_and_primaries();
        let matrix = match self.matrix {
            Space::BT2020CL => "2020_cl",
            Space::BT709 => "709",
            _ => "2020_ncl",
        };
        let range = if self.range == Range::JPEG { "pc" } else { "tv" };
        format!("tin={transfer}:min={matrix}:pin={primaries}:rin={range}:p={primaries}")
    }

    /// The same for the source's R′G′B′ (full range, no matrix).
    pub fn zscale_rgb_input(&self) -> String {
        let (transfer, primaries) = self.zscale_transfer_and_primaries();
        format!("tin={transfer}:pin={primaries}:rin=pc:p={primaries}")
    }

    fn zscale_transfer_and_primaries(&self) -> (&'static str, &'static str) {
        let transfer = match self.transfer {
            TransferCharacteristic::SMPTE2084 => "smpte2084",
            TransferCharacteristic::ARIB_STD_B67 => "arib-std-b67",
            TransferCharacteristic::BT2020_12 => "2020_12",
            TransferCharacteristic::BT709 => "709",
            _ => "2020_10",
        };
        let primaries = match self.primaries {
            Primaries::BT709 => "709",
            Primaries::SMPTE432 => "smpte432",
            Primaries::SMPTE431 => "smpte431",
            _ => "2020",
        };
        (transfer, primaries)
    }
}

/// Names as FFmpeg and ffprobe spell them (`bt709`, `smpte2084`, `bt2020nc`, `tv`).
impl Serialize for Tags {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let name = |n: Option<&'static str>| n.unwrap_or("unspecified");
        let mut s = serializer.serialize_struct("Tags", 4)?;
        s.serialize_field("primaries", name(self.primaries.name()))?;
        s.serialize_field("transfer", name(self.transfer.name()))?;
        s.serialize_field("matrix", name(self.matrix.name()))?;
        s.serialize_field("range", name(self.range.name()))?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hdr(transfer: TransferCharacteristic) -> Tags {
        Tags { primaries: Primaries::BT2020, transfer, matrix: Space::BT2020NCL, range: Range::MPEG }
    }

    #[test]
    fn pq_and_hlg_are_hdr_and_everything_else_is_sdr() {
        assert_eq!(DynamicRange::of(TransferCharacteristic::SMPTE2084), DynamicRange::Pq);
        assert_eq!(DynamicRange::of(TransferCharacteristic::ARIB_STD_B67), DynamicRange::Hlg);
        for sdr in [TransferCharacteristic::BT709, TransferCharacteristic::Unspecified, TransferCharacteristic::BT2020_10] {
            assert_eq!(DynamicRange::of(sdr), DynamicRange::Sdr);
        }
        assert_eq!(serde_json::to_value(DynamicRange::Hlg).unwrap(), "HLG");
    }

    #[test]
    fn sdr_rungs_of_hdr_sources_are_bt709_and_hdr_rungs_keep_the_transfer() {
        let pq = hdr(TransferCharacteristic::SMPTE2084);
        assert_eq!(pq.for_sdr_rung(), Tags::BT709);
        assert_eq!(pq.for_hdr_rung(), pq);
        let untagged_hlg =
            Tags { primaries: Primaries::Unspecified, matrix: Space::Unspecified, ..hdr(TransferCharacteristic::ARIB_STD_B67) };
        assert_eq!(untagged_hlg.for_hdr_rung(), hdr(TransferCharacteristic::ARIB_STD_B67));
        assert_eq!(untagged_hlg.zscale_input(), "tin=arib-std-b67:min=2020_ncl:pin=2020:rin=tv:p=2020");
    }

    #[test]
    fn sdr_sources_keep_their_own_tags_and_untagged_ones_read_as_bt709() {
        let pal = Tags {
            primaries: Primaries::BT470BG,
            transfer: TransferCharacteristic::GAMMA28,
            matrix: Space::BT470BG,
            range: Range::Unspecified,
        };
        assert_eq!(pal.for_sdr_rung(), Tags { range: Range::MPEG, ..pal });
        let untagged = Tags {
            primaries: Primaries::Unspecified,
            transfer: TransferCharacteristic::Unspecified,
            matrix: Space::Unspecified,
            range: Range::Unspecified,
        };
        assert_eq!(untagged.for_sdr_rung(), Tags::BT709);
        let json = serde_json::to_value(Tags::BT709).unwrap();
        assert_eq!(json, serde_json::json!({"primaries": "bt709", "transfer": "bt709", "matrix": "bt709", "range": "tv"}));
    }
}
