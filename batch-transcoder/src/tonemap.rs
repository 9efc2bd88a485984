//! HDR → SDR BT.709 tone mapping for the SDR rungs of PQ and HLG sources.
//!
//! The mapping is libavfilter's: `zscale` to linear light, `tonemap` (Hable), `zscale` to BT.709.
//! Run per pixel in float, that chain costs about as much as encoding a 1080p rung, so it is run
//! once, at start, over a 65³ grid of the source's R′G′B′ cube, the way colourists' 3D LUTs
//! are; each frame is then mapped through the grid by tetrahedral interpolation, straight from 4:2:0
//! 10-bit Y′CbCr to 4:2:0 8-bit. The grid is in R′G′B′ rather than Y′CbCr because the cube is
//! exactly the gamut: no grid cell straddles the clipping at its edge, where interpolation fails.

use ff::color::{Range, Space};
use ff::format::Pixel;
use ff::frame;
use ffmpeg_next as ff;

use crate::colour::Tags;
use crate::error::{Result, TranscodeError};

/// Grid points per axis: every 16th 10-bit code value, 0 to 1023.
const GRID: usize = 65;
const STEP_BITS: u32 = 4;

/// The libavfilter chain that defines the mapping, from a Y′CbCr source tagged `source` to
/// BT.709 limited range. The reference conversion in the tests and benchmarks is this chain.
#[cfg(test)]
pub fn reference_chain(source: &Tags) -> String {
    format!("zscale={}:t=linear:npl=100,{}", source.zscale_input(), MAPPING)
}

/// From linear light in the source's primaries to BT.709 SDR.
const MAPPING: &str = "format=gbrpf32le,zscale=p=709,tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=tv";

pub struct ToneMap {
    /// How to read the source's Y′CbCr as R′G′B′.
    matrix: YcbcrToRgb,
    /// Output Y′CbCr per grid point, 16-bit; index (R′ · 65 + G′) · 65 + B′.
    points: Vec<[u16; 3]>,
}

impl ToneMap {
    /// Builds the grid by running the mapping over one R′G′B′ picture holding every grid point.
    pub fn new(source: &Tags) -> Result<ToneMap> {
        let err = |what: &str, e: ff::Error| TranscodeError::Fatal(format!("building the tone map ({what}): {e}"));
        let (width, height) = ((GRID * GRID) as u32, GRID as u32);
        let mut grid = frame::Video::new(Pixel::GBRP10LE, width, height);
        let code = |i: usize| ((i << STEP_BITS) as u16).min(1023);
        // Planes are G, B, R; a row holds one R′, its columns every (G′, B′).
        for plane in 0..3 {
            let stride = grid.stride(plane) / 2;
            let data = grid.data_mut(plane);
            for row in 0..GRID {
                for col in 0..GRID * GRID {
                    let value = match plane {
                        0 => code(col / GRID),
                        1 => code(col % GRID),
                        _ => code(row),
                    };
                    let at = (row * stride + col) * 2;
                    data[at..at + 2].copy_from_slice(&value.to_le_bytes());
                }
            }
        }
        grid.set_pts(Some(0));

        let mut graph = ff::filter::Graph::new();
        let buffer = ff::filter::find("buffer").ok_or_else(|| TranscodeError::Fatal("libavfilter lacks `buffer`".into()))?;
        let sink = ff::filter::find("buffersink").ok_or_else(|| TranscodeError::Fatal("libavfilter lacks `buffersink`".into()))?;
        let args = format!(
            "video_size={width}x{height}:pix_fmt={}:time_base=1/1:pixel_aspect=1/1",
            ff::ffi::AVPixelFormat::from(Pixel::GBRP10LE) as i32
        );
        graph.add(&buffer, "in", &args).map_err(|e| err("source", e))?;
        graph.add(&sink, "out", "").map_err(|e| err("sink", e))?;
        let chain = format!("zscale={}:t=linear:npl=100,{MAPPING},format=yuv444p16le", source.zscale_rgb_input());
        graph.output("in", 0).and_then(|p| p.input("out", 0)).and_then(|p| p.parse(&chain)).map_err(|e| {
            TranscodeError::Fatal(format!("libavfilter cannot tone map ({chain}): {e}; it needs zscale (libzimg) and tonemap"))
        })?;
        graph.validate().map_err(|e| err("validate", e))?;
        let mut input = graph.get("in").ok_or_else(|| TranscodeError::Fatal("tone map graph lost its source".into()))?;
        input.source().add(&grid).map_err(|e| err("feeding", e))?;
        input.source().flush().map_err(|e| err("flushing", e))?;
        let mut mapped = frame::Video::empty();
        let mut output = graph.get("out").ok_or_else(|| TranscodeError::Fatal("tone map graph lost its sink".into()))?;
        output.sink().frame(&mut mapped).map_err(|e| err("mapping the grid", e))?;

        let read = |plane: usize, row: usize, col: usize| {
            let at = (row * mapped.stride(plane) / 2 + col) * 2;
            let data = mapped.data(plane);
            u16::from_le_bytes([data[at], data[at + 1]])
        };
        let mut points = Vec::with_capacity(GRID * GRID * GRID);
        for row in 0..GRID {
            for col in 0..GRID * GRID {
                points.push([read(0, row, col), read(1, row, col), read(2, row, col)]);
            }
        }
        Ok(ToneMap { matrix: YcbcrToRgb::new(source), points })
    }

    /// Maps a 4:2:0 10-bit picture to 4:2:0 8-bit BT.709, keeping its timestamp.
    pub fn apply(&self, input: &frame::Video) -> Result<frame::Video> {
        if input.format() != Pixel::YUV420P10LE {
            return Err(TranscodeError::Fatal(format!("the tone map takes yuv420p10le, not {:?}", input.format())));
        }
        let (width, height) = (input.width() as usize, input.height() as usize);
        let mut out = frame::Video::new(Pixel::YUV420P, input.width(), input.height());
        let samples = |plane: usize| -> &[u16] {
            let data = input.data(plane);
            // SAFETY: a yuv420p10le plane is 16-bit samples, and FFmpeg aligns frame buffers
            // far beyond u16's alignment; the length is halved to whole samples.
            unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u16>(), data.len() / 2) }
        };
        let (y_in, cb_in, cr_in) = (samples(0), samples(1), samples(2));
        let (y_stride, c_stride) = (input.stride(0) / 2, input.stride(1) / 2);
        let (out_y_stride, out_c_stride) = (out.stride(0), out.stride(1));
        let (chroma_width, chroma_height) = (width.div_ceil(2), height.div_ceil(2));

        let mut luma_rows = vec![0u8; 2 * width];
        let mut cb_row = vec![0u8; chroma_width];
        let mut cr_row = vec![0u8; chroma_width];
        for cy in 0..chroma_height {
            let rows = if 2 * cy + 1 < height { 2 } else { 1 };
            for cx in 0..chroma_width {
                let (cb, cr) = (cb_in[cy * c_stride + cx], cr_in[cy * c_stride + cx]);
                let cols = if 2 * cx + 1 < width { 2 } else { 1 };
                // Each pixel mapped in full; the block's chroma is the mean of its pixels', as
                // subsampling after the mapping makes it.
                let (mut cb_sum, mut cr_sum) = (0u32, 0u32);
                for r in 0..rows {
                    for c in 0..cols {
                        let rgb = self.matrix.rgb(y_in[(2 * cy + r) * y_stride + 2 * cx + c], cb, cr);
                        let [y_out, cb_out, cr_out] = tetrahedral(&self.points, rgb);
                        luma_rows[r * width + 2 * cx + c] = to_8bit(y_out);
                        cb_sum += cb_out;
                        cr_sum += cr_out;
                    }
                }
                let n = (rows * cols) as u32;
                cb_row[cx] = to_8bit(cb_sum / n);
                cr_row[cx] = to_8bit(cr_sum / n);
            }
            let luma_out = out.data_mut(0);
            for r in 0..rows {
                let at = (2 * cy + r) * out_y_stride;
                luma_out[at..at + width].copy_from_slice(&luma_rows[r * width..(r + 1) * width]);
            }
            out.data_mut(1)[cy * out_c_stride..cy * out_c_stride + chroma_width].copy_from_slice(&cb_row);
            out.data_mut(2)[cy * out_c_stride..cy * out_c_stride + chroma_width].copy_from_slice(&cr_row);
        }
        out.set_pts(input.pts());
        out.set_color_primaries(Tags::BT709.primaries);
        out.set_color_transfer_characteristic(Tags::BT709.transfer);
        out.set_color_space(Tags::BT709.matrix);
        out.set_color_range(Tags::BT709.range);
        Ok(out)
    }
}

/// Non-constant-luminance Y′CbCr (10-bit) to R′G′B′ (10-bit full range), as zscale reads it.
struct YcbcrToRgb {
    kr: f32,
    kb: f32,
    /// Black and the luma and chroma scales, in 10-bit codes.
    black: f32,
    luma_scale: f32,
    chroma_scale: f32,
}

impl YcbcrToRgb {
    fn new(tags: &Tags) -> Self {
        let (kr, kb) = match tags.matrix {
            Space::BT709 => (0.2126, 0.0722),
            // BT.2020, and what HDR sources leave unstated. (Constant-luminance BT.2020 is
            // read as non-constant: it is all but unused.)
            _ => (0.2627, 0.0593),
        };
        let (black, luma_scale, chroma_scale) = if tags.range == Range::JPEG { (0.0, 1023.0, 1023.0) } else { (64.0, 876.0, 896.0) };
        YcbcrToRgb { kr, kb, black, luma_scale, chroma_scale }
    }

    fn rgb(&self, y: u16, cb: u16, cr: u16) -> [u16; 3] {
        let y = (f32::from(y) - self.black) / self.luma_scale;
        let cb = (f32::from(cb) - 512.0) / self.chroma_scale;
        let cr = (f32::from(cr) - 512.0) / self.chroma_scale;
        let kg = 1.0 - self.kr - self.kb;
        let r = y + 2.0 * (1.0 - self.kr) * cr;
        let b = y + 2.0 * (1.0 - self.kb) * cb;
        let g = (y - self.kr * r - self.kb * b) / kg;
        [r, g, b].map(|v| (v * 1023.0 + 0.5).clamp(0.0, 1023.0) as u16)
    }
}

/// The grid's value at 10-bit R′G′B′ `rgb`, blended from the four corners of the tetrahedron
/// around it (the cube cut along its diagonal, so greys interpolate between greys only), in
/// sixteenths: 4 bits above the grid's own precision.
fn tetrahedral(grid: &[[u16; 3]], rgb: [u16; 3]) -> [u32; 3] {
    let cell = |v: u16| ((v >> STEP_BITS) as usize, u32::from(v & 15));
    let ((r, fr), (g, fg), (b, fb)) = (cell(rgb[0]), cell(rgb[1]), cell(rgb[2]));
    let base = (r * GRID + g) * GRID + b;
    let (step_r, step_g, step_b) = (GRID * GRID, GRID, 1);
    // The corners after the origin, walking the axes in order of their fractions, largest first.
    let (first, second, f1, f2, f3) = if fr >= fg {
        if fg >= fb {
            (step_r, step_r + step_g, fr, fg, fb)
        } else if fr >= fb {
            (step_r, step_r + step_b, fr, fb, fg)
        } else {
            (step_b, step_b + step_r, fb, fr, fg)
        }
    } else if fb >= fg {
        (step_b, step_b + step_g, fb, fg, fr)
    } else if fb >= fr {
        (step_g, step_g + step_b, fg, fb, fr)
    } else {
        (step_g, step_g + step_r, fg, fr, fb)
    };
    let corner = |offset: usize| grid[base + offset].map(u32::from);
    let (c0, c1, c2, c3) = (corner(0), corner(first), corner(second), corner(step_r + step_g + step_b));
    [0, 1, 2].map(|k| c0[k] * (16 - f1) + c1[k] * (f1 - f2) + c2[k] * (f2 - f3) + c3[k] * f3)
}

/// 16-bit grid values carry 4 more bits after interpolation; 8 more bring them to 8-bit.
fn to_8bit(interpolated: u32) -> u8 {
    ((interpolated + (1 << 11)) >> 12).min(255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::color::{Primaries, Range, Space, TransferCharacteristic};

    fn pq() -> Tags {
        Tags { primaries: Primaries::BT2020, transfer: TransferCharacteristic::SMPTE2084, matrix: Space::BT2020NCL, range: Range::MPEG }
    }

    /// A picture of `width`×`height` whose every 2×2 block shares one chroma sample.
    fn picture(width: u32, height: u32, sample: impl Fn(usize, usize) -> (u16, u16, u16)) -> frame::Video {
        let mut f = frame::Video::new(Pixel::YUV420P10LE, width, height);
        for (plane, sub) in [(0, 1), (1, 2), (2, 2)] {
            let stride = f.stride(plane) / 2;
            let data = f.data_mut(plane);
            for row in 0..(height as usize).div_ceil(sub) {
                for col in 0..(width as usize).div_ceil(sub) {
                    let (y, cb, cr) = sample(row * sub, col * sub);
                    let v = [y, cb, cr][plane];
                    data[(row * stride + col) * 2..(row * stride + col) * 2 + 2].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        f
    }

    /// The same picture through the reference chain in libavfilter, per pixel in float.
    fn reference(input: &frame::Video) -> frame::Video {
        let mut graph = ff::filter::Graph::new();
        let args = format!(
            "video_size={}x{}:pix_fmt={}:time_base=1/1:pixel_aspect=1/1",
            input.width(),
            input.height(),
            ff::ffi::AVPixelFormat::from(Pixel::YUV420P10LE) as i32
        );
        graph.add(&ff::filter::find("buffer").unwrap(), "in", &args).unwrap();
        graph.add(&ff::filter::find("buffersink").unwrap(), "out", "").unwrap();
        let chain = format!("{},format=yuv420p", reference_chain(&pq()));
        graph.output("in", 0).unwrap().input("out", 0).unwrap().parse(&chain).unwrap();
        graph.validate().unwrap();
        graph.get("in").unwrap().source().add(input).unwrap();
        graph.get("in").unwrap().source().flush().unwrap();
        let mut out = frame::Video::empty();
        graph.get("out").unwrap().sink().frame(&mut out).unwrap();
        out
    }

    /// A PQ picture as a camera would make one: FFmpeg's test pattern graded to BT.2020 PQ with
    /// white at 1000 nits, so the tone map has highlights to compress.
    fn graded_pq_picture() -> frame::Video {
        let mut graph = ff::filter::Graph::new();
        graph.add(&ff::filter::find("buffersink").unwrap(), "out", "").unwrap();
        let chain = "testsrc2=s=640x360:d=1,format=gbrp,zscale=tin=709:pin=709:rin=pc:t=smpte2084:p=2020:m=2020_ncl:r=tv:npl=1000,format=yuv420p10le";
        graph.input("out", 0).unwrap().parse(chain).unwrap();
        graph.validate().unwrap();
        let mut out = frame::Video::empty();
        graph.get("out").unwrap().sink().frame(&mut out).unwrap();
        out
    }

    #[test]
    fn the_grid_reproduces_the_libavfilter_chain() {
        ff::init().unwrap();
        let map = ToneMap::new(&pq()).unwrap();
        let input = graded_pq_picture();
        let ours = map.apply(&input).unwrap();
        let theirs = reference(&input);
        for plane in 0..3 {
            let (w, h) = if plane == 0 { (640, 360) } else { (320, 180) };
            let differences: Vec<i32> = (0..h)
                .flat_map(|row| (0..w).map(move |col| (row, col)))
                .map(|(row, col)| {
                    let a = i32::from(ours.data(plane)[row * ours.stride(plane) + col]);
                    let b = i32::from(theirs.data(plane)[row * theirs.stride(plane) + col]);
                    (a - b).abs()
                })
                .collect();
            let bias = (0..h)
                .flat_map(|row| (0..w).map(move |col| (row, col)))
                .map(|(row, col)| {
                    i64::from(ours.data(plane)[row * ours.stride(plane) + col])
                        - i64::from(theirs.data(plane)[row * theirs.stride(plane) + col])
                })
                .sum::<i64>() as f64
                / differences.len() as f64;
            let mean = differences.iter().sum::<i32>() as f64 / differences.len() as f64;
            // The pattern's pure BT.709 primaries at 1000 nits sit on the edge of the gamut the
            // mapping clips to, where zscale's float path even leaves the legal range (Cr 4)
            // and interpolation across the clipping cannot follow it; they account for most
            // of the difference. Elsewhere the grid is within a code value (the test above).
            let (max_bias, max_mean) = if plane == 0 { (1.5, 4.0) } else { (6.0, 9.0) };
            assert!(
                bias.abs() <= max_bias && mean <= max_mean,
                "plane {plane} differs from zscale+tonemap: bias {bias:.2}, mean {mean:.2}"
            );
        }
        assert_eq!(ours.color_transfer_characteristic(), TransferCharacteristic::BT709);
    }

    #[test]
    fn flat_colours_match_the_libavfilter_chain_within_one_code_value() {
        ff::init().unwrap();
        let map = ToneMap::new(&pq()).unwrap();
        // Greys from black to 4000 nits, and colours BT.709 can show, up to about 1500 nits.
        // (Colours beyond BT.709 are clipped by the mapping, and interpolation across that
        // clipping is not exact: the whole-picture test bounds them.)
        let colours = [
            (64, 512, 512),
            (300, 512, 512),
            (500, 512, 512),
            (700, 512, 512),
            (860, 512, 512),
            (500, 530, 500),
            (600, 490, 530),
            (300, 500, 540),
            (400, 540, 490),
            (700, 500, 520),
            (250, 525, 505),
        ];
        for (y, cb, cr) in colours {
            let input = picture(16, 16, |_, _| (y, cb, cr));
            let ours = map.apply(&input).unwrap();
            let theirs = reference(&input);
            for plane in 0..3 {
                let (a, b) =
                    (i32::from(ours.data(plane)[4 * ours.stride(plane) + 4]), i32::from(theirs.data(plane)[4 * theirs.stride(plane) + 4]));
                assert!((a - b).abs() <= 1, "({y}, {cb}, {cr}) plane {plane}: ours {a}, zscale+tonemap {b}");
            }
        }
    }

    #[test]
    fn bright_pq_is_compressed_and_black_stays_black_on_odd_sizes() {
        ff::init().unwrap();
        let map = ToneMap::new(&pq()).unwrap();
        // PQ code 769 (10-bit, limited) is about 1000 nits: far above SDR white before mapping.
        let input = picture(7, 5, |_, col| if col < 4 { (64, 512, 512) } else { (769, 512, 512) });
        let out = map.apply(&input).unwrap();
        let luma = |col: usize| out.data(0)[col];
        assert!((15..=17).contains(&luma(0)), "black maps to 8-bit 16, got {}", luma(0));
        assert!(luma(6) > 150, "1000 nits lands bright, got {}", luma(6));
        assert_eq!((out.width(), out.height()), (7, 5));
        // Neutral stays neutral.
        assert!((127..=129).contains(&out.data(1)[0]) && (127..=129).contains(&out.data(2)[3]));
    }
}
