//! Muxes a rendition's packets into segments held in memory (MPEG-TS or fragmented MP4).
//!
//! libavformat writes into a dynamic memory buffer instead of a file, so the plaintext of a
//! segment exists only in RAM until it is encrypted. One muxer lives for the whole rendition:
//! continuity counters and timestamps run on across segments, as HLS expects.

use std::ffi::CString;
use std::ptr;

use ff::ffi::*;
use ff::packet::Mut as _;
use ff::{Packet, Rational};
use ffmpeg_next as ff;
use vaultstream::ladder::Container;

use crate::error::{Result, TranscodeError};

pub struct StreamSpec {
    /// The opened encoder whose parameters describe the stream.
    pub encoder: *const AVCodecContext,
    pub time_base: Rational,
}

pub struct SegmentMuxer {
    ctx: *mut AVFormatContext,
    container: Container,
    encoder_time_bases: Vec<Rational>,
}

// SAFETY: the muxer is owned and used by exactly one rendition worker thread.
unsafe impl Send for SegmentMuxer {}

fn check(what: &str, r: i32) -> Result<i32> {
    if r < 0 {
        Err(TranscodeError::Fatal(format!("{what}: {}", ff::Error::from(r))))
    } else {
        Ok(r)
    }
}

impl SegmentMuxer {
    /// Creates the muxer and writes its header. For fMP4 the header is the init section, returned
    /// as the second value.
    pub fn new(container: Container, streams: &[StreamSpec]) -> Result<(Self, Option<Vec<u8>>)> {
        Self::with_extradata(container, streams, None)
    }

    /// [`SegmentMuxer::new`], with `extradata` as the first stream's decoder configuration where
    /// its encoder has none (an encoder writing Annex B for MPEG-TS).
    pub fn with_extradata(container: Container, streams: &[StreamSpec], extradata: Option<&[u8]>) -> Result<(Self, Option<Vec<u8>>)> {
        let format = CString::new(match container {
            Container::Ts => "mpegts",
            Container::Fmp4 => "mp4",
        })
        .map_err(|e| TranscodeError::Fatal(e.to_string()))?;
        let mut ctx: *mut AVFormatContext = ptr::null_mut();
        // SAFETY: plain FFmpeg allocation calls; every pointer is checked before use and the
        // context is owned by the returned value (freed in Drop).
        unsafe {
            check("allocating the muxer", avformat_alloc_output_context2(&mut ctx, ptr::null_mut(), format.as_ptr(), ptr::null()))?;
            let mut muxer = SegmentMuxer { ctx, container, encoder_time_bases: Vec::new() };
            for spec in streams {
                let st = avformat_new_stream(ctx, ptr::null());
                if st.is_null() {
                    return Err(TranscodeError::Fatal("allocating a muxer stream".into()));
                }
                check("copying encoder parameters", avcodec_parameters_from_context((*st).codecpar, spec.encoder))?;
                let par = (*st).codecpar;
                if let Some(data) = extradata.filter(|_| muxer.encoder_time_bases.is_empty() && (*par).extradata_size == 0) {
                    let buffer = av_mallocz(data.len() + AV_INPUT_BUFFER_PADDING_SIZE as usize) as *mut u8;
                    if buffer.is_null() {
                        return Err(TranscodeError::Fatal("allocating the decoder configuration".into()));
                    }
                    ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
                    (*par).extradata = buffer;
                    (*par).extradata_size = data.len() as i32;
                }
                (*st).time_base = spec.time_base.into();
                muxer.encoder_time_bases.push(spec.time_base);
            }
            // Room for the PCR ahead of the first timestamps, as FFmpeg's CLI gives MPEG-TS.
            (*ctx).max_delay = 700_000;
            if container == Container::Ts {
                // That delay already keeps B-frame DTS positive; shifting everything to make DTS
                // non-negative would start video two frames after audio, a hole players seek over.
                (*ctx).avoid_negative_ts = 0;
            }
            check("opening the memory buffer", avio_open_dyn_buf(&mut (*ctx).pb))?;
            let mut options: *mut AVDictionary = ptr::null_mut();
            if container == Container::Fmp4 {
                let (k, v) = (
                    CString::new("movflags").unwrap_or_default(),
                    CString::new("+frag_custom+empty_moov+default_base_moof+skip_trailer").unwrap_or_default(),
                );
                av_dict_set(&mut options, k.as_ptr(), v.as_ptr(), 0);
            }
            let r = avformat_write_header(ctx, &mut options);
            av_dict_free(&mut options);
            check("writing the container header", r)?;
            let init = match container {
                Container::Fmp4 => Some(muxer.take()?),
                Container::Ts => None,
            };
            Ok((muxer, init))
        }
    }

    /// Writes one packet of stream `index` (timestamps in its encoder's time base).
    pub fn write(&mut self, index: usize, packet: &mut Packet) -> Result<()> {
        // SAFETY: `ctx` is valid while self lives and has `encoder_time_bases.len()` streams.
        unsafe {
            let st = *(*self.ctx).streams.add(index);
            packet.rescale_ts(self.encoder_time_bases[index], Rational::from((*st).time_base));
            packet.set_stream(index);
            check("muxing a packet", av_write_frame(self.ctx, packet.as_mut_ptr()))?;
        }
        Ok(())
    }

    /// Ends the current segment and returns its bytes; the next packet starts a new one.
    pub fn cut(&mut self) -> Result<Vec<u8>> {
        // SAFETY: a null packet asks a muxer with AVFMT_ALLOW_FLUSH to flush buffered data.
        unsafe {
            check("flushing the segment", av_write_frame(self.ctx, ptr::null_mut()))?;
            let bytes = self.take()?;
            if self.container == Container::Ts {
                // Every segment must start with PAT/PMT so it can be decoded on its own.
                let (k, v) = (CString::new("mpegts_flags").unwrap_or_default(), CString::new("+resend_headers").unwrap_or_default());
                av_opt_set((*self.ctx).priv_data, k.as_ptr(), v.as_ptr(), 0);
            }
            Ok(bytes)
        }
    }

    /// Writes the trailer and returns the last segment's bytes.
    pub fn finish(&mut self) -> Result<Vec<u8>> {
        // SAFETY: ctx is valid; callers write the trailer once, then Drop frees the context.
        unsafe {
            check("flushing the last segment", av_write_frame(self.ctx, ptr::null_mut()))?;
            check("writing the container trailer", av_write_trailer(self.ctx))?;
        }
        self.take()
    }

    /// Moves everything written so far out of the memory buffer and opens a fresh one.
    fn take(&mut self) -> Result<Vec<u8>> {
        // SAFETY: pb is a dynamic buffer opened by avio_open_dyn_buf; closing it hands us a
        // buffer of `len` bytes that we copy and free.
        unsafe {
            let mut buffer: *mut u8 = ptr::null_mut();
            let len = avio_close_dyn_buf((*self.ctx).pb, &mut buffer);
            (*self.ctx).pb = ptr::null_mut();
            let bytes = if buffer.is_null() || len <= 0 { Vec::new() } else { std::slice::from_raw_parts(buffer, len as usize).to_vec() };
            av_free(buffer as *mut _);
            check("reopening the memory buffer", avio_open_dyn_buf(&mut (*self.ctx).pb))?;
            Ok(bytes)
        }
    }
}

impl Drop for SegmentMuxer {
    fn drop(&mut self) {
        // SAFETY: frees the buffer and the context this value owns, once.
        unsafe {
            if !(*self.ctx).pb.is_null() {
                let mut buffer: *mut u8 = ptr::null_mut();
                avio_close_dyn_buf((*self.ctx).pb, &mut buffer);
                av_free(buffer as *mut _);
                (*self.ctx).pb = ptr::null_mut();
            }
            avformat_free_context(self.ctx);
        }
    }
}
