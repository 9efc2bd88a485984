//! HDR → SDR BT.709 tone mapping for the SDR rungs of PQ and HLG sources.
//!
//! The mapping is libavfilter's: `zscale` to linear light, `tonemap` (Hable), `zscale` to BT.709.
//! Run per pixel in float, that chain costs about as much as encoding a 1080p rung, so it is run
//! once, at start, over a 65³ grid of the source's R′G′B′ cube, the way colourists' 3D LUTs
//! are; each frame is then mapped through the grid by tetrahedral interpolation (eight pixels at
//! a time with AVX2), straight from 4:2:0 10-bit Y′CbCr to 4:2:0 8-bit. The grid is in R′G′B′
//! rather than Y′CbCr because that cube is exactly the source's gamut: no cell straddles its
//! edge. The edge of BT.709's gamut, where the mapping clips, still cuts through cells; there
//! the interpolation is a few code values off the float chain (the tests bound it).

use ff::color::{Range, Space};
use ff::format::Pixel;
use ff::frame;
use ffmpeg_next as ff;

use crate::colour::Tags;
use crate::error::{Result, TranscodeError};

/// Grid points per axis: every 16th 10-bit code value, 0 to 1023.
const GRID: usize = 65;
const STEP_BITS: u32 = 4;
/// How far apart neighbouring grid points are along R′, G′ and B′.
const STEP_R: usize = GRID * GRID;
const STEP_G: usize = GRID;
const STEP_B: usize = 1;

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
    /// Output luma per grid point, 16-bit; index (R′ · 65 + G′) · 65 + B′, and one more
    /// element so a 32-bit gather of the last point stays inside.
    luma: Vec<u16>,
    /// Output (Cb, Cr) per grid point, 16-bit.
    chroma: Vec<[u16; 2]>,
    /// Whether rows are mapped eight pixels at a time (x86-64 with AVX2).
    avx2: bool,
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
        let points = GRID * GRID * GRID;
        let (mut luma, mut chroma) = (Vec::with_capacity(points), Vec::with_capacity(points));
        for row in 0..GRID {
            for col in 0..GRID * GRID {
                luma.push(read(0, row, col));
                chroma.push([read(1, row, col), read(2, row, col)]);
            }
        }
        luma.push(0);
        #[cfg(target_arch = "x86_64")]
        let avx2 = std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let avx2 = false;
        Ok(ToneMap { matrix: YcbcrToRgb::new(source), luma, chroma, avx2 })
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

        let mut terms = ChromaRow::default();
        let mut luma_row = vec![0u8; width];
        let (mut cb_row, mut cr_row) = (vec![0u8; chroma_width], vec![0u8; chroma_width]);
        for cy in 0..chroma_height {
            let rows = if 2 * cy + 1 < height { 2 } else { 1 };
            terms.fill(&self.matrix, &cb_in[cy * c_stride..][..chroma_width], &cr_in[cy * c_stride..][..chroma_width]);
            // Luma mapped per pixel.
            for r in 0..rows {
                let row = 2 * cy + r;
                self.map_luma_row(&y_in[row * y_stride..][..width], &terms, &mut luma_row);
                out.data_mut(0)[row * out_y_stride..][..width].copy_from_slice(&luma_row);
            }
            // Chroma mapped once per block, at its pixels' mean luma (R′G′B′ is affine in luma,
            // so this is their mean colour up to clipping).
            let top = &y_in[2 * cy * y_stride..][..width];
            let bottom = (rows == 2).then(|| &y_in[(2 * cy + 1) * y_stride..][..width]);
            self.map_chroma_row(top, bottom, &terms, &mut cb_row, &mut cr_row);
            out.data_mut(1)[cy * out_c_stride..][..chroma_width].copy_from_slice(&cb_row);
            out.data_mut(2)[cy * out_c_stride..][..chroma_width].copy_from_slice(&cr_row);
        }
        out.set_pts(input.pts());
        out.set_color_primaries(Tags::BT709.primaries);
        out.set_color_transfer_characteristic(Tags::BT709.transfer);
        out.set_color_space(Tags::BT709.matrix);
        out.set_color_range(Tags::BT709.range);
        Ok(out)
    }

    /// One row of luma: eight pixels at a time with AVX2 where the CPU has it, the rest one by one.
    fn map_luma_row(&self, y: &[u16], terms: &ChromaRow, out: &mut [u8]) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: `avx2` is set only where the CPU reports AVX2; the function reads and
            // writes within the slices it is given (see its own comments).
            done = unsafe { avx2::map_luma(self, y, terms, out) };
        }
        for x in done..y.len() {
            let rgb = self.matrix.rgb(y[x], terms.at(x / 2));
            out[x] = to_8bit(Tetrahedron::around(rgb).blend(&self.luma, u32::from));
        }
    }
}

impl ToneMap {
    /// One row of chroma from the one or two luma rows its blocks span: eight blocks at a time
    /// with AVX2 where the CPU has it, the rest one by one.
    fn map_chroma_row(&self, top: &[u16], bottom: Option<&[u16]>, terms: &ChromaRow, cb: &mut [u8], cr: &mut [u8]) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: as for the luma rows.
            done = unsafe { avx2::map_chroma(self, top, bottom, terms, cb, cr) };
        }
        let width = top.len();
        for cx in done..cb.len() {
            let columns = 2 * cx..(2 * cx + 2).min(width);
            let count = columns.len() * if bottom.is_some() { 2 } else { 1 };
            let sum: u32 = columns.clone().map(|x| u32::from(top[x]) + bottom.map_or(0, |b| u32::from(b[x]))).sum();
            // 1, 2 or 4 pixels: a shift, not a division.
            let shift = count.trailing_zeros();
            let mean = ((sum + ((1 << shift) >> 1)) >> shift) as u16;
            let corners = Tetrahedron::around(self.matrix.rgb(mean, terms.at(cx)));
            cb[cx] = to_8bit(corners.blend(&self.chroma, |p| u32::from(p[0])));
            cr[cx] = to_8bit(corners.blend(&self.chroma, |p| u32::from(p[1])));
        }
    }
}

/// What each chroma sample of a row adds to R′, G′ and B′ (16.16 fixed point).
#[derive(Default)]
struct ChromaRow {
    r: Vec<i32>,
    g: Vec<i32>,
    b: Vec<i32>,
}

impl ChromaRow {
    fn fill(&mut self, matrix: &YcbcrToRgb, cb: &[u16], cr: &[u16]) {
        self.r.clear();
        self.g.clear();
        self.b.clear();
        for (&cb, &cr) in cb.iter().zip(cr) {
            let ChromaTerms([r, g, b]) = matrix.chroma_terms(cb, cr);
            self.r.push(r);
            self.g.push(g);
            self.b.push(b);
        }
    }

    fn at(&self, cx: usize) -> ChromaTerms {
        ChromaTerms([self.r[cx], self.g[cx], self.b[cx]])
    }

    fn len(&self) -> usize {
        self.r.len()
    }
}

/// Non-constant-luminance Y′CbCr (10-bit) to R′G′B′ (10-bit full range), as zscale reads it,
/// in 16.16 fixed point.
struct YcbcrToRgb {
    black: i32,
    /// Per code value of luma, of Cr in R′, of Cb and Cr in G′, of Cb in B′.
    luma: i32,
    cr_to_r: i32,
    cb_to_g: i32,
    cr_to_g: i32,
    cb_to_b: i32,
}

/// What a chroma sample adds to R′, G′ and B′ (16.16), shared by the luma samples around it.
#[derive(Clone, Copy)]
struct ChromaTerms([i32; 3]);

impl YcbcrToRgb {
    fn new(tags: &Tags) -> Self {
        let (kr, kb) = match tags.matrix {
            Space::BT709 => (0.2126, 0.0722),
            // BT.2020, and what HDR sources leave unstated. (Constant-luminance BT.2020 is
            // read as non-constant: it is all but unused.)
            _ => (0.2627, 0.0593),
        };
        let (black, luma_scale, chroma_scale) = if tags.range == Range::JPEG { (0, 1023.0, 1023.0) } else { (64, 876.0, 896.0) };
        let kg = 1.0 - kr - kb;
        let fixed = |v: f64| (v * 1023.0 * 65536.0).round() as i32;
        YcbcrToRgb {
            black,
            luma: fixed(1.0 / luma_scale),
            cr_to_r: fixed(2.0 * (1.0 - kr) / chroma_scale),
            cb_to_g: fixed(-2.0 * (1.0 - kb) * kb / kg / chroma_scale),
            cr_to_g: fixed(-2.0 * (1.0 - kr) * kr / kg / chroma_scale),
            cb_to_b: fixed(2.0 * (1.0 - kb) / chroma_scale),
        }
    }

    fn chroma_terms(&self, cb: u16, cr: u16) -> ChromaTerms {
        let (cb, cr) = (i32::from(cb.min(1023)) - 512, i32::from(cr.min(1023)) - 512);
        ChromaTerms([cr * self.cr_to_r, cb * self.cb_to_g + cr * self.cr_to_g, cb * self.cb_to_b])
    }

    #[inline(always)]
    fn rgb(&self, y: u16, chroma: ChromaTerms) -> [u16; 3] {
        let luma = (i32::from(y.min(1023)) - self.black) * self.luma + (1 << 15);
        let channel = |term: i32| ((luma + term) >> 16).clamp(0, 1023) as u16;
        [channel(chroma.0[0]), channel(chroma.0[1]), channel(chroma.0[2])]
    }
}

/// Where 10-bit R′G′B′ falls in the grid: the four corners of the tetrahedron around it (the
/// cell cut along its diagonal, so greys interpolate between greys only) and their weights in
/// sixteenths, which leave 4 bits above the grid's own precision.
struct Tetrahedron {
    corners: [usize; 4],
    weights: [u32; 4],
}

impl Tetrahedron {
    #[inline(always)]
    fn around(rgb: [u16; 3]) -> Tetrahedron {
        let (r, g, b) = (usize::from(rgb[0] >> STEP_BITS), usize::from(rgb[1] >> STEP_BITS), usize::from(rgb[2] >> STEP_BITS));
        let (fr, fg, fb) = (u32::from(rgb[0] & 15), u32::from(rgb[1] & 15), u32::from(rgb[2] & 15));
        // The corners after the origin, walking the axes in order of their fractions, largest first.
        let (first, second, f1, f2, f3) = if fr >= fg {
            if fg >= fb {
                (STEP_R, STEP_R + STEP_G, fr, fg, fb)
            } else if fr >= fb {
                (STEP_R, STEP_R + STEP_B, fr, fb, fg)
            } else {
                (STEP_B, STEP_B + STEP_R, fb, fr, fg)
            }
        } else if fb >= fg {
            (STEP_B, STEP_B + STEP_G, fb, fg, fr)
        } else if fb >= fr {
            (STEP_G, STEP_G + STEP_B, fg, fb, fr)
        } else {
            (STEP_G, STEP_G + STEP_R, fg, fr, fb)
        };
        let base = (r * GRID + g) * GRID + b;
        Tetrahedron {
            corners: [base, base + first, base + second, base + STEP_R + STEP_G + STEP_B],
            weights: [16 - f1, f1 - f2, f2 - f3, f3],
        }
    }

    #[inline(always)]
    fn blend<T: Copy>(&self, grid: &[T], value: impl Fn(T) -> u32) -> u32 {
        let [c0, c1, c2, c3] = self.corners;
        let [w0, w1, w2, w3] = self.weights;
        value(grid[c0]) * w0 + value(grid[c1]) * w1 + value(grid[c2]) * w2 + value(grid[c3]) * w3
    }
}

/// 16-bit grid values carry 4 more bits after interpolation; 8 more bring them to 8-bit.
fn to_8bit(interpolated: u32) -> u8 {
    ((interpolated + (1 << 11)) >> 12).min(255) as u8
}

/// The paths with AVX2: the same arithmetic as [`YcbcrToRgb::rgb`], [`Tetrahedron`] and
/// [`to_8bit`], eight pixels (or blocks) at a time, the grid read with gathers.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{ChromaRow, ToneMap, STEP_B, STEP_BITS, STEP_G, STEP_R};

    fn splat(v: i32) -> __m256i {
        // SAFETY: _mm256_set1_epi32 only needs AVX, which every caller's AVX2 implies.
        unsafe { _mm256_set1_epi32(v) }
    }

    /// Eight positions in the grid: where each corner of their tetrahedra is and its weight.
    struct Corners {
        index: [__m256i; 4],
        weight: [__m256i; 4],
    }

    /// 10-bit luma `samples` with chroma `terms` (16.16), to grid corners.
    #[target_feature(enable = "avx2")]
    unsafe fn corners(map: &ToneMap, samples: __m256i, terms: [__m256i; 3]) -> Corners {
        let m = &map.matrix;
        let (zero, max_code) = (_mm256_setzero_si256(), splat(1023));
        let samples = _mm256_min_epi32(samples, max_code);
        let luma = _mm256_add_epi32(_mm256_mullo_epi32(_mm256_sub_epi32(samples, splat(m.black)), splat(m.luma)), splat(1 << 15));
        let channel = |t: __m256i| _mm256_min_epi32(_mm256_max_epi32(_mm256_srai_epi32::<16>(_mm256_add_epi32(luma, t)), zero), max_code);
        let (r, g, b) = (channel(terms[0]), channel(terms[1]), channel(terms[2]));
        let (step_r, step_g, step_b) = (splat(STEP_R as i32), splat(STEP_G as i32), splat(STEP_B as i32));
        let all_steps = splat((STEP_R + STEP_G + STEP_B) as i32);
        let cell = |v: __m256i| _mm256_srli_epi32::<{ STEP_BITS as i32 }>(v);
        let base = _mm256_add_epi32(_mm256_add_epi32(_mm256_mullo_epi32(cell(r), step_r), _mm256_mullo_epi32(cell(g), step_g)), cell(b));
        let mask = splat(15);
        let (fr, fg, fb) = (_mm256_and_si256(r, mask), _mm256_and_si256(g, mask), _mm256_and_si256(b, mask));
        let f_max = _mm256_max_epi32(fr, _mm256_max_epi32(fg, fb));
        let f_min = _mm256_min_epi32(fr, _mm256_min_epi32(fg, fb));
        let f_mid = _mm256_sub_epi32(_mm256_add_epi32(fr, _mm256_add_epi32(fg, fb)), _mm256_add_epi32(f_max, f_min));
        // The axis with the largest fraction is walked first, the one with the smallest last;
        // among equal fractions any choice gives the same value (its weight is zero).
        let pick = |r_case: __m256i, g_case: __m256i| _mm256_blendv_epi8(_mm256_blendv_epi8(step_b, step_g, g_case), step_r, r_case);
        let first = pick(_mm256_cmpeq_epi32(fr, f_max), _mm256_cmpeq_epi32(fg, f_max));
        let last = pick(_mm256_cmpeq_epi32(fr, f_min), _mm256_cmpeq_epi32(fg, f_min));
        Corners {
            index: [
                base,
                _mm256_add_epi32(base, first),
                _mm256_add_epi32(base, _mm256_sub_epi32(all_steps, last)),
                _mm256_add_epi32(base, all_steps),
            ],
            weight: [_mm256_sub_epi32(splat(16), f_max), _mm256_sub_epi32(f_max, f_mid), _mm256_sub_epi32(f_mid, f_min), f_min],
        }
    }

    /// Σ corner × weight, rounded to 8 bits, as eight bytes in lane order.
    #[target_feature(enable = "avx2")]
    unsafe fn blend_to_bytes(values: [__m256i; 4], weight: &[__m256i; 4]) -> __m128i {
        let w = |k: usize| _mm256_mullo_epi32(values[k], weight[k]);
        let sum = _mm256_add_epi32(_mm256_add_epi32(w(0), w(1)), _mm256_add_epi32(w(2), w(3)));
        let bytes = _mm256_min_epi32(_mm256_srli_epi32::<12>(_mm256_add_epi32(sum, splat(1 << 11))), splat(255));
        let words = _mm256_permute4x64_epi64::<0b1000>(_mm256_packus_epi32(bytes, bytes));
        _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_castsi256_si128(words))
    }

    /// Maps the longest whole number of eight-pixel groups of `y` into `out` and returns how
    /// many pixels that was.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn map_luma(map: &ToneMap, y: &[u16], terms: &ChromaRow, out: &mut [u8]) -> usize {
        let whole = y.len() / 8 * 8;
        assert!(out.len() >= whole && terms.len() * 2 >= whole, "the luma row and its chroma terms disagree");
        let table = map.luma.as_ptr().cast::<i32>();
        // Lane i takes the chroma sample of pixel i / 2.
        let pairs = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
        for x in (0..whole).step_by(8) {
            // SAFETY (loads): x + 8 <= y.len(), and x / 2 + 4 <= the terms' length (asserted).
            let samples = _mm256_cvtepu16_epi32(_mm_loadu_si128(y.as_ptr().add(x).cast()));
            let term =
                |v: &[i32]| _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(_mm_loadu_si128(v.as_ptr().add(x / 2).cast())), pairs);
            let c = corners(map, samples, [term(&terms.r), term(&terms.g), term(&terms.b)]);
            // SAFETY: every index is at most 65³ - 1 (codes are clamped to 1023), and the
            // table has one element beyond that for the second half of each 32-bit read.
            let value = |k: usize| _mm256_and_si256(_mm256_i32gather_epi32::<2>(table, c.index[k]), splat(0xFFFF));
            let bytes = blend_to_bytes([value(0), value(1), value(2), value(3)], &c.weight);
            // SAFETY: x + 8 <= out.len() (asserted).
            _mm_storel_epi64(out.as_mut_ptr().add(x).cast(), bytes);
        }
        whole
    }

    /// Maps the longest whole number of eight-block groups whose blocks are two pixels wide,
    /// from luma rows `top` and `bottom` (one row only at an odd picture's foot), into `cb` and
    /// `cr`, and returns how many blocks that was.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[target_feature(enable = "avx2")]
    pub unsafe fn map_chroma(map: &ToneMap, top: &[u16], bottom: Option<&[u16]>, terms: &ChromaRow, cb: &mut [u8], cr: &mut [u8]) -> usize {
        let whole = top.len() / 16 * 8;
        assert!(
            cb.len() >= whole && cr.len() >= whole && terms.len() >= whole && bottom.is_none_or(|b| b.len() == top.len()),
            "the chroma row and its luma rows disagree"
        );
        let table = map.chroma.as_ptr().cast::<i32>();
        let ones = _mm256_set1_epi16(1);
        for cx in (0..whole).step_by(8) {
            // Pair sums of sixteen 10-bit samples (which fit i16) are the blocks' row sums.
            // SAFETY (loads): 2 * cx + 16 <= the rows' length, cx + 8 <= the terms' length.
            let row_sums = |row: &[u16]| _mm256_madd_epi16(_mm256_loadu_si256(row.as_ptr().add(2 * cx).cast()), ones);
            let mean = match bottom {
                Some(bottom) => _mm256_srli_epi32::<2>(_mm256_add_epi32(_mm256_add_epi32(row_sums(top), row_sums(bottom)), splat(2))),
                None => _mm256_srli_epi32::<1>(_mm256_add_epi32(row_sums(top), splat(1))),
            };
            let term = |v: &[i32]| _mm256_loadu_si256(v.as_ptr().add(cx).cast());
            let c = corners(map, mean, [term(&terms.r), term(&terms.g), term(&terms.b)]);
            // One 32-bit read per corner holds its Cb (low half) and Cr (high half).
            // SAFETY: every index is at most 65³ - 1, inside the table.
            let pair = |k: usize| _mm256_i32gather_epi32::<4>(table, c.index[k]);
            let pairs = [pair(0), pair(1), pair(2), pair(3)];
            let low = pairs.map(|p| _mm256_and_si256(p, splat(0xFFFF)));
            let high = pairs.map(|p| _mm256_srli_epi32::<16>(p));
            // SAFETY: cx + 8 <= cb.len() and cr.len() (asserted).
            _mm_storel_epi64(cb.as_mut_ptr().add(cx).cast(), blend_to_bytes(low, &c.weight));
            _mm_storel_epi64(cr.as_mut_ptr().add(cx).cast(), blend_to_bytes(high, &c.weight));
        }
        whole
    }
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
    fn the_eight_pixel_path_matches_the_one_pixel_path_exactly() {
        ff::init().unwrap();
        let fast = ToneMap::new(&pq()).unwrap();
        if !fast.avx2 {
            eprintln!("no AVX2 here: only the one-pixel path runs");
            return;
        }
        let slow = ToneMap { avx2: false, luma: fast.luma.clone(), chroma: fast.chroma.clone(), matrix: YcbcrToRgb::new(&pq()) };
        // Every code value, ties between fractions included, at a width that leaves a remainder
        // and a height that leaves a one-row foot.
        let input = picture(203, 63, |row, col| {
            let i = row * 203 + col;
            ((i * 37 % 1024) as u16, ((i / 2) * 101 % 1024) as u16, ((i / 2) * 211 % 1024) as u16)
        });
        let (a, b) = (fast.apply(&input).unwrap(), slow.apply(&input).unwrap());
        for plane in 0..3 {
            let (w, h) = if plane == 0 { (203, 63) } else { (102, 32) };
            for row in 0..h {
                assert_eq!(
                    a.data(plane)[row * a.stride(plane)..][..w],
                    b.data(plane)[row * b.stride(plane)..][..w],
                    "plane {plane} row {row}"
                );
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
