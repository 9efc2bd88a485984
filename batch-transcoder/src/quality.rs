//! How good each rung is: PSNR and SSIM of sampled frames, by libavfilter's `psnr` and `ssim`,
//! between the rung's own encoded output decoded again and the picture its encoder was given
//! (the source, normalized and scaled to the rung). One frame a GOP is sampled, a quarter of a
//! second after its opening IDR (an IDR is coded better than the frames that follow it). Only
//! what that frame needs is decoded: from the IDR until it comes out, then nothing until the
//! next IDR (about a quarter of the cost of decoding every rung whole).

use std::collections::HashMap;

use ff::{filter, frame, Packet};
use ffmpeg_next as ff;
use vaultstream::catalog::RenditionQuality as Quality;
use vaultstream::ladder::QualityFloor;

use crate::error::{Result, TranscodeError};
use crate::manifest::thread_cpu_time;

/// Follows one rung: keeps the sampled input frames, decodes the encoder's packets a sample
/// needs and measures each sampled frame when its decoded twin comes out.
pub struct QualityProbe {
    decoder: ff::decoder::Video,
    every: i64,
    offset: i64,
    first: Option<i64>,
    /// Every sampled frame so far is measured: packets are skipped until the next IDR.
    skipping: bool,
    waiting: HashMap<i64, frame::Video>,
    floor: Option<QualityFloor>,
    psnr_sum: f64,
    ssim_sum: f64,
    frames: u32,
    /// This thread's CPU time spent here.
    cpu: std::time::Duration,
}

impl QualityProbe {
    /// `encoder` is the rung's opened encoder (its parameters open the decoder); frames are
    /// indexed in its time base, `frames_per_second` of them a second, an IDR every `gop`.
    pub fn new(encoder: &ff::encoder::Encoder, gop: u32, frames_per_second: f64, floor: Option<QualityFloor>) -> Result<QualityProbe> {
        let parameters = ff::codec::Parameters::from(encoder);
        let context = ff::codec::Context::from_parameters(parameters).map_err(|e| TranscodeError::ffmpeg("the quality decoder", e))?;
        let decoder = context.decoder().video().map_err(|e| TranscodeError::ffmpeg("the quality decoder", e))?;
        Ok(QualityProbe {
            decoder,
            every: i64::from(gop.max(1)),
            offset: ((frames_per_second / 4.0).round() as i64).clamp(0, i64::from(gop.max(1)) - 1),
            first: None,
            skipping: false,
            waiting: HashMap::new(),
            floor,
            psnr_sum: 0.0,
            ssim_sum: 0.0,
            frames: 0,
            cpu: std::time::Duration::ZERO,
        })
    }

    /// Offers the frame the encoder is about to be given (software, at the rung's size, with
    /// its index as pts); every sampled one is kept until its decoded twin arrives.
    pub fn offer(&mut self, input: &frame::Video) {
        let Some(index) = input.pts() else { return };
        let first = *self.first.get_or_insert(index);
        if (index - first) % self.every == self.offset {
            self.waiting.insert(index, input.clone());
        }
    }

    /// Decodes one of the encoder's packets and measures what it completes.
    pub fn packet(&mut self, packet: &Packet) -> Result<()> {
        if self.skipping {
            if !packet.is_key() {
                return Ok(());
            }
            // What the decoder still holds belongs to the GOP just left.
            self.decoder.flush();
            self.skipping = false;
        }
        let started = thread_cpu_time();
        let measured_before = self.frames;
        let result = match self.decoder.send_packet(packet) {
            Ok(()) => self.drain(),
            Err(_) => Err(TranscodeError::Fatal("the quality decoder refused the rung's own packet".into())),
        };
        // Having just measured a frame, with no other offered one waiting (the next sample is
        // usually a GOP away), the rest of this GOP is not needed.
        if result.is_ok() && self.frames > measured_before && self.waiting.is_empty() {
            self.skipping = true;
        }
        self.cpu += thread_cpu_time().saturating_sub(started);
        result
    }

    /// After the encoder's last packet: the figures, if any frame was sampled, and the CPU
    /// seconds spent measuring.
    pub fn finish(mut self) -> Result<(Option<Quality>, f64)> {
        let started = thread_cpu_time();
        let _ = self.decoder.send_eof();
        self.drain()?;
        self.cpu += thread_cpu_time().saturating_sub(started);
        let cpu = self.cpu.as_secs_f64();
        Ok((
            (self.frames > 0).then(|| {
                let n = f64::from(self.frames);
                let (psnr_db, ssim) = (round(self.psnr_sum / n, 100.0), round(self.ssim_sum / n, 10_000.0));
                Quality { psnr_db, ssim, frames_sampled: self.frames, below_floor: self.floor.and_then(|f| f.shortfall(psnr_db, ssim)) }
            }),
            cpu,
        ))
    }

    fn drain(&mut self) -> Result<()> {
        let mut decoded = frame::Video::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let Some(reference) = decoded.pts().and_then(|pts| self.waiting.remove(&pts)) else { continue };
            let (psnr, ssim) = measure(&decoded, &reference)?;
            self.psnr_sum += psnr.min(100.0);
            self.ssim_sum += ssim;
            self.frames += 1;
        }
        Ok(())
    }
}

fn round(value: f64, scale: f64) -> f64 {
    (value * scale).round() / scale
}

/// PSNR (dB) and SSIM of one decoded frame against its reference, by a graph of its own:
/// `[decoded][reference]` → `psnr` → `ssim` → sink, both figures in the output frame's metadata.
/// (A graph a sample, about one a second, costs next to nothing and needs no frame-sync state.)
fn measure(decoded: &frame::Video, reference: &frame::Video) -> Result<(f64, f64)> {
    let err = |e: ff::Error| TranscodeError::Fatal(format!("measuring rung quality: {e}"));
    let find = |name: &str| filter::find(name).ok_or_else(|| TranscodeError::Fatal(format!("libavfilter lacks `{name}`")));
    let args = |f: &frame::Video| {
        format!(
            "video_size={}x{}:pix_fmt={}:time_base=1/1:pixel_aspect=1/1",
            f.width(),
            f.height(),
            ff::ffi::AVPixelFormat::from(f.format()) as i32
        )
    };
    let mut graph = filter::Graph::new();
    graph.add(&find("buffer")?, "decoded", &args(decoded)).map_err(err)?;
    graph.add(&find("buffer")?, "reference", &args(reference)).map_err(err)?;
    graph.add(&find("buffersink")?, "out", "").map_err(err)?;
    // Both in the decoded picture's format (the reference may be NV12 or P010 for hardware).
    let format = decoded.format().descriptor().map_or("yuv420p", |d| d.name());
    let description = format!("[decoded]format={format}[d];[reference]format={format},split=2[r1][r2];[d][r1]psnr[p];[p][r2]ssim[out]");
    graph
        .output("decoded", 0)
        .and_then(|p| p.output("reference", 0))
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&description))
        .map_err(err)?;
    graph.validate().map_err(err)?;
    for (name, picture) in [("decoded", decoded), ("reference", reference)] {
        let mut copy = picture.clone();
        copy.set_pts(Some(0));
        let mut source = graph.get(name).ok_or_else(|| TranscodeError::Fatal(format!("no `{name}` in the quality graph")))?;
        source.source().add(&copy).map_err(err)?;
        source.source().flush().map_err(err)?;
    }
    let mut out = frame::Video::empty();
    let mut sink = graph.get("out").ok_or_else(|| TranscodeError::Fatal("no sink in the quality graph".into()))?;
    sink.sink().frame(&mut out).map_err(err)?;
    let metadata = out.metadata();
    let value = |key: &str| -> Result<f64> {
        let text = metadata.get(key).ok_or_else(|| TranscodeError::Fatal(format!("the quality graph set no {key}")))?;
        Ok(if text == "inf" { f64::INFINITY } else { text.parse().map_err(|_| TranscodeError::Fatal(format!("{key} is {text:?}")))? })
    };
    Ok((value("lavfi.psnr.psnr_avg")?, value("lavfi.ssim.All")?))
}
