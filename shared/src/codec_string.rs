//! RFC 6381 `CODECS` values, read from what the encoder actually produced rather than assumed.
//!
//! - H.264 `avc1.PPCCLL` from the SPS (Annex B) or the `avcC` box.
//! - HEVC `hvc1.<space><profile>.<compat>.<tier><level>.<constraints>` from the SPS or `hvcC`.
//! - AV1 `av01.<profile>.<level><tier>.<bitdepth>` from the `av1C` box.

pub const AAC_LC: &str = "mp4a.40.2";

/// Finds Annex B NAL units (start codes `00 00 01` / `00 00 00 01`) in a packet.
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            let mut e = s - 3;
            while e > 0 && data[e - 1] == 0 {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts.into_iter().zip(ends).map(move |(s, e)| &data[s..e.max(s)])
}

/// Drops emulation-prevention bytes (`00 00 03` → `00 00`).
fn rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

fn avc1(profile: u8, constraints: u8, level: u8) -> String {
    format!("avc1.{profile:02x}{constraints:02x}{level:02x}")
}

/// H.264 codec string from an Annex B packet that carries the SPS (every IDR from x264 does).
pub fn h264_from_annexb(packet: &[u8]) -> Option<String> {
    let sps = annexb_nals(packet).find(|n| n.first().map(|h| h & 0x1f) == Some(7))?;
    let sps = rbsp(sps);
    (sps.len() >= 4).then(|| avc1(sps[1], sps[2], sps[3]))
}

/// The six profile_tier_level bytes HEVC strings are made of, starting at general_profile_space.
fn hvc1(ptl: &[u8]) -> Option<String> {
    if ptl.len() < 12 {
        return None;
    }
    let space = ["", "A", "B", "C"][usize::from(ptl[0] >> 6)];
    let tier = if ptl[0] & 0x20 != 0 { 'H' } else { 'L' };
    let profile = ptl[0] & 0x1f;
    let compat = u32::from_be_bytes([ptl[1], ptl[2], ptl[3], ptl[4]]).reverse_bits();
    let level = ptl[11];
    let mut constraints: Vec<u8> = ptl[5..11].to_vec();
    while constraints.last() == Some(&0) {
        constraints.pop();
    }
    let mut s = format!("hvc1.{space}{profile}.{compat:X}.{tier}{level}");
    for c in constraints {
        s.push_str(&format!(".{c:X}"));
    }
    Some(s)
}

/// HEVC codec string from an Annex B packet carrying the SPS (NAL type 33).
pub fn hevc_from_annexb(packet: &[u8]) -> Option<String> {
    let sps = annexb_nals(packet).find(|n| n.first().map(|h| (h >> 1) & 0x3f) == Some(33))?;
    let sps = rbsp(sps);
    // 2-byte NAL header, 1 byte of vps id / max sub layers / nesting, then profile_tier_level.
    hvc1(sps.get(3..)?)
}

fn find_box<'a>(data: &'a [u8], fourcc: &[u8; 4]) -> Option<&'a [u8]> {
    let at = data.windows(4).position(|w| w == fourcc)?;
    data.get(at + 4..)
}

/// The video codec string from an fMP4 init section's decoder configuration box.
pub fn from_mp4_init(init: &[u8]) -> Option<String> {
    if let Some(c) = find_box(init, b"avcC") {
        return (c.len() >= 4).then(|| avc1(c[1], c[2], c[3]));
    }
    if let Some(c) = find_box(init, b"hvcC") {
        return hvc1(c.get(1..)?);
    }
    if let Some(c) = find_box(init, b"av1C") {
        if c.len() < 3 || c[0] != 0x81 {
            return None;
        }
        let profile = c[1] >> 5;
        let level = c[1] & 0x1f;
        let tier = if c[2] & 0x80 != 0 { 'H' } else { 'M' };
        let depth = match (c[2] & 0x40 != 0, c[2] & 0x20 != 0) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        };
        return Some(format!("av01.{profile}.{level:02}{tier}.{depth:02}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_high_level_4() {
        // AUD, then an SPS for High profile (100 = 0x64), level 4.0 (0x28).
        let pkt = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0, 0, 1, 0x68, 0xeb];
        assert_eq!(h264_from_annexb(&pkt).as_deref(), Some("avc1.640028"));
        assert_eq!(h264_from_annexb(&[0, 0, 1, 0x65, 1, 2]), None);
    }

    #[test]
    fn hevc_main_from_sps() {
        // SPS NAL header 0x42 0x01, then 0x01 (vps id 0, 1 sub-layer), PTL: Main, compat 0x60000000,
        // constraints 0x90 followed by zeros, level 93 (3.1).
        let pkt = [0, 0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x5d, 0xa0];
        assert_eq!(hevc_from_annexb(&pkt).as_deref(), Some("hvc1.1.6.L93.90"));
    }

    #[test]
    fn mp4_config_boxes() {
        let avcc = [b'a', b'v', b'c', b'C', 1, 0x64, 0x00, 0x1f, 0xff];
        assert_eq!(from_mp4_init(&avcc).as_deref(), Some("avc1.64001f"));
        let av1c = [b'a', b'v', b'1', b'C', 0x81, 0x08, 0x0c, 0x00];
        assert_eq!(from_mp4_init(&av1c).as_deref(), Some("av01.0.08M.08"));
        let hvcc = [b'h', b'v', b'c', b'C', 1, 0x01, 0x60, 0, 0, 0, 0xb0, 0, 0, 0, 0, 0, 0x78];
        assert_eq!(from_mp4_init(&hvcc).as_deref(), Some("hvc1.1.6.L120.B0"));
        assert_eq!(from_mp4_init(b"nothing here"), None);
    }
}
