//! Caption text: a SubRip (`.srt`) or WebVTT sidecar read into cues, and written back as one
//! clean WebVTT file. Nothing of the upload is passed through unread: timings are parsed and
//! range-checked, cue text keeps only WebVTT's own markup (SRT's `<font>` and `{\an8}` go, stray
//! `<` and `&` are escaped, a `-->` in text cannot end a cue), and comment, style and region
//! blocks are dropped, so what players receive is exactly what this module wrote.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// More cues than a feature film's captions (about 2,000) by a wide margin.
pub const MAX_CUES: usize = 20_000;
/// Characters in one cue's text.
pub const MAX_CUE_CHARS: usize = 2_000;
/// No cue may start or end later than this (24 hours).
pub const MAX_TIME_MS: u64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaptionFormat {
    Srt,
    Webvtt,
}

impl CaptionFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            CaptionFormat::Srt => "srt",
            CaptionFormat::Webvtt => "webvtt",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    /// WebVTT cue settings that survived cleaning (`line:90% align:start`), or empty.
    pub settings: String,
    /// One or more lines, already cleaned.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captions {
    /// What the upload was.
    pub format: CaptionFormat,
    /// In start order.
    pub cues: Vec<Cue>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaptionError {
    #[error("the captions are not UTF-8 text (byte {0} is not); save the file as UTF-8 and send it again")]
    NotUtf8(usize),
    #[error("line {line}: {problem}")]
    Line { line: usize, problem: String },
    #[error("the file has no cues; send an SRT or WebVTT file with at least one timed cue")]
    NoCues,
    #[error("the file has more than {MAX_CUES} cues; split it or remove cues")]
    TooManyCues,
}

fn at(line: usize, problem: impl Into<String>) -> CaptionError {
    CaptionError::Line { line, problem: problem.into() }
}

/// The start of a line for an error message: enough to find it, never the whole of a hostile line.
fn quoted(text: &str) -> String {
    let shown: String = text.chars().take(40).collect();
    if shown.len() < text.len() {
        format!("{shown:?}…")
    } else {
        format!("{shown:?}")
    }
}

impl Captions {
    /// Reads SubRip or WebVTT (told apart by WebVTT's `WEBVTT` first line).
    pub fn parse(bytes: &[u8]) -> Result<Captions, CaptionError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let text = std::str::from_utf8(bytes).map_err(|e| CaptionError::NotUtf8(e.valid_up_to()))?;
        if let Some(position) = text.find('\0') {
            return Err(CaptionError::NotUtf8(position));
        }
        let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = normalised.split('\n').collect();
        let is_webvtt = lines
            .first()
            .is_some_and(|first| first.strip_prefix("WEBVTT").is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t'])));
        let (format, mut cues) = if is_webvtt {
            (CaptionFormat::Webvtt, read_blocks(&lines, Syntax::Webvtt)?)
        } else {
            (CaptionFormat::Srt, read_blocks(&lines, Syntax::Srt)?)
        };
        if cues.is_empty() {
            return Err(CaptionError::NoCues);
        }
        cues.sort_by_key(|c| (c.start_ms, c.end_ms));
        Ok(Captions { format, cues })
    }

    /// The end of the last cue.
    pub fn end_ms(&self) -> u64 {
        self.cues.iter().map(|c| c.end_ms).max().unwrap_or(0)
    }

    /// A WebVTT file whose `X-TIMESTAMP-MAP` puts cue time 0 at MPEG-TS time `mpegts` (90 kHz):
    /// the presentation start of the segments it plays beside.
    pub fn to_webvtt(&self, mpegts: u64) -> String {
        let mut out = format!("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000\n");
        for cue in &self.cues {
            let _ = write!(out, "\n{} --> {}", timestamp(cue.start_ms), timestamp(cue.end_ms));
            if !cue.settings.is_empty() {
                let _ = write!(out, " {}", cue.settings);
            }
            let _ = writeln!(out, "\n{}", cue.text);
        }
        out
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Syntax {
    Srt,
    Webvtt,
}

/// Blocks are runs of non-blank lines; `lines[i]` is line `i + 1`.
fn read_blocks(lines: &[&str], syntax: Syntax) -> Result<Vec<Cue>, CaptionError> {
    let mut cues = Vec::new();
    let mut i = 0;
    if syntax == Syntax::Webvtt {
        // The header: `WEBVTT` and any lines up to the first blank one.
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
    }
    while i < lines.len() {
        if lines[i].trim().is_empty() {
            i += 1;
            continue;
        }
        let start = i;
        while i < lines.len() && !lines[i].trim().is_empty() {
            i += 1;
        }
        let block = &lines[start..i];
        if syntax == Syntax::Webvtt && is_webvtt_non_cue(block[0]) {
            continue;
        }
        if let Some(cue) = read_cue(block, start + 1, syntax)? {
            if cues.len() == MAX_CUES {
                return Err(CaptionError::TooManyCues);
            }
            cues.push(cue);
        }
    }
    Ok(cues)
}

fn is_webvtt_non_cue(first: &str) -> bool {
    ["NOTE", "STYLE", "REGION"]
        .iter()
        .any(|word| first.strip_prefix(word).is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t'])))
}

/// One cue block starting at line `line`: an optional identifier (SRT's number), the timing
/// line, then text. A cue without text is dropped.
fn read_cue(block: &[&str], line: usize, syntax: Syntax) -> Result<Option<Cue>, CaptionError> {
    let timing_at = if block[0].contains("-->") {
        0
    } else if block.len() > 1 && block[1].contains("-->") {
        1
    } else {
        let example = match syntax {
            Syntax::Srt => "a cue number, then a timing line like 00:00:01,000 --> 00:00:04,000",
            Syntax::Webvtt => "a timing line like 00:00:01.000 --> 00:00:04.000",
        };
        return Err(at(line, format!("expected {example}, found {}", quoted(block[0]))));
    };
    let timing_line = line + timing_at;
    let (start, rest) = block[timing_at].split_once("-->").unwrap_or_default();
    let mut rest = rest.split_whitespace();
    let start_ms = time(start.trim(), syntax).map_err(|problem| at(timing_line, problem))?;
    let end_ms = time(rest.next().unwrap_or_default(), syntax).map_err(|problem| at(timing_line, problem))?;
    if end_ms <= start_ms {
        return Err(at(
            timing_line,
            format!("the cue ends ({}) no later than it starts ({}); fix its timing", timestamp(end_ms), timestamp(start_ms)),
        ));
    }
    // SRT may carry `X1:… Y2:…` box coordinates there; only WebVTT's own settings are kept.
    let settings = match syntax {
        Syntax::Webvtt => rest.filter(|s| is_cue_setting(s)).collect::<Vec<_>>().join(" "),
        Syntax::Srt => String::new(),
    };
    let text_lines: Vec<String> =
        block[timing_at + 1..].iter().map(|l| clean_text(l).trim_end().to_string()).filter(|l| !l.trim().is_empty()).collect();
    if text_lines.is_empty() {
        return Ok(None);
    }
    let text = text_lines.join("\n");
    if text.chars().count() > MAX_CUE_CHARS {
        return Err(at(timing_line + 1, format!("the cue's text is longer than {MAX_CUE_CHARS} characters; shorten it")));
    }
    Ok(Some(Cue { start_ms, end_ms, settings, text }))
}

/// `HH:MM:SS,mmm` (SRT; `.` is accepted too) or `[HH:]MM:SS.mmm` (WebVTT), in milliseconds.
fn time(text: &str, syntax: Syntax) -> Result<u64, String> {
    let bad = || {
        let example = match syntax {
            Syntax::Srt => "00:01:02,500",
            Syntax::Webvtt => "00:01:02.500",
        };
        format!("{} is not a time like {example}", quoted(text))
    };
    let (clock, millis) = match syntax {
        Syntax::Srt => text.rsplit_once([',', '.']),
        Syntax::Webvtt => text.rsplit_once('.'),
    }
    .ok_or_else(bad)?;
    let digits = |s: &str, max_len: usize| {
        (!s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u64>().ok()).flatten()
    };
    if millis.len() != 3 {
        return Err(bad());
    }
    let millis = digits(millis, 3).ok_or_else(bad)?;
    let parts: Vec<&str> = clock.split(':').collect();
    let (hours, minutes, seconds) = match (syntax, parts.as_slice()) {
        (_, [h, m, s]) => (digits(h, 3).ok_or_else(bad)?, *m, *s),
        (Syntax::Webvtt, [m, s]) => (0, *m, *s),
        _ => return Err(bad()),
    };
    let (minutes, seconds) = (digits(minutes, 2).ok_or_else(bad)?, digits(seconds, 2).ok_or_else(bad)?);
    if minutes > 59 || seconds > 59 {
        return Err(bad());
    }
    let ms = ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
    if ms > MAX_TIME_MS {
        return Err(format!("{} is later than 24 hours", quoted(text)));
    }
    Ok(ms)
}

fn timestamp(ms: u64) -> String {
    format!("{:02}:{:02}:{:02}.{:03}", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}

fn is_cue_setting(token: &str) -> bool {
    let Some((name, value)) = token.split_once(':') else { return false };
    ["vertical", "line", "position", "size", "align"].contains(&name)
        && !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"%.,-".contains(&b))
}

/// WebVTT's cue-text tags, the only markup kept (`c` and `v`/`lang` with their annotations).
fn allowed_tag(tag: &str) -> bool {
    let inner = tag.trim_start_matches('/');
    let name_end = inner.find(['.', ' ', '\t']).unwrap_or(inner.len());
    let (name, annotation) = inner.split_at(name_end);
    let closing = tag.starts_with('/');
    let timestamp_tag = !closing && time(tag, Syntax::Webvtt).is_ok();
    let plain = annotation.chars().all(|c| c.is_alphanumeric() || " ._-".contains(c));
    timestamp_tag
        || match name {
            "b" | "i" | "u" | "ruby" | "rt" => annotation.is_empty() || (annotation.starts_with('.') && plain),
            "c" => plain && (annotation.is_empty() || annotation.starts_with('.')),
            "v" | "lang" => plain && (closing || annotation.starts_with([' ', '\t', '.'])),
            _ => false,
        }
}

fn entity_at(rest: &str) -> bool {
    let Some(end) = rest.find(';') else { return false };
    let name = &rest[1..end];
    ["amp", "lt", "gt", "nbsp", "lrm", "rlm"].contains(&name)
        || name.strip_prefix("#x").is_some_and(|h| !h.is_empty() && h.len() <= 6 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        || name.strip_prefix('#').is_some_and(|d| !d.is_empty() && d.len() <= 7 && d.bytes().all(|b| b.is_ascii_digit()))
}

/// One line of cue text with only WebVTT markup left in it.
fn clean_text(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => match rest.find('>') {
                Some(end) if !rest[1..end].contains('<') && rest[1..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/') => {
                    let tag = &rest[1..end];
                    if allowed_tag(tag) {
                        out.push_str(&rest[..=end]);
                    }
                    // Other tags (SRT's <font color=…>) go; their text stays.
                    rest = &rest[end + 1..];
                }
                _ => {
                    out.push_str("&lt;");
                    rest = &rest[1..];
                }
            },
            '&' => {
                out.push_str(if entity_at(rest) { "&" } else { "&amp;" });
                rest = &rest[1..];
            }
            '>' => {
                out.push_str("&gt;");
                rest = &rest[1..];
            }
            // SSA override blocks that SRT files carry (`{\an8}`, `{\i1}`).
            '{' if rest.starts_with("{\\") && rest.contains('}') => {
                let end = rest.find('}').unwrap_or(0);
                rest = &rest[end + 1..];
            }
            _ => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRT: &str = "\u{feff}1\r\n00:00:01,000 --> 00:00:03,500\r\nGrüße aus München — <i>naïve</i> café\r\n\r\n2\r\n00:00:04,000 --> 00:00:06,000 X1:10 X2:20 Y1:5 Y2:9\r\n<font color=\"#ff0000\">東京</font> & Привет {\\an8}\r\n\r\n";

    #[test]
    fn srt_becomes_clean_webvtt() {
        let captions = Captions::parse(SRT.as_bytes()).unwrap();
        assert_eq!(captions.format, CaptionFormat::Srt);
        assert_eq!(captions.cues.len(), 2);
        assert_eq!(captions.cues[0].text, "Grüße aus München — <i>naïve</i> café");
        assert_eq!(captions.cues[1].text, "東京 &amp; Привет");
        assert_eq!(captions.end_ms(), 6000);
        let vtt = captions.to_webvtt(126_000);
        assert_eq!(
            vtt,
            "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:126000,LOCAL:00:00:00.000\n\n00:00:01.000 --> 00:00:03.500\nGrüße aus München — <i>naïve</i> café\n\n00:00:04.000 --> 00:00:06.000\n東京 &amp; Привет\n"
        );
    }

    #[test]
    fn webvtt_keeps_settings_and_markup_and_drops_blocks() {
        let text = "WEBVTT - a title\nKind: captions\n\nNOTE written by hand\nacross two lines\n\nSTYLE\n::cue { color: red }\n\nintro\n00:01.000 --> 00:02.000 align:start line:90% region:r1\n<v Anna>Hello</v> <c.yellow>there</c> &amp; <00:01.500>now\n\n01:00:00.000 --> 01:00:01.250\nthe end\n";
        let captions = Captions::parse(text.as_bytes()).unwrap();
        assert_eq!(captions.format, CaptionFormat::Webvtt);
        assert_eq!(captions.cues.len(), 2);
        assert_eq!(captions.cues[0].settings, "align:start line:90%");
        assert_eq!(captions.cues[0].text, "<v Anna>Hello</v> <c.yellow>there</c> &amp; <00:01.500>now");
        assert_eq!(captions.cues[1].start_ms, 3_600_000);
        assert!(!captions.to_webvtt(0).contains("STYLE"));
    }

    #[test]
    fn hostile_text_cannot_escape_its_cue() {
        let text = "1\n00:00:01,000 --> 00:00:02,000\n<script>alert(1)</script> a --> b <b onclick=x>bold</b> 1 < 2 > 0 &#x41; &bogus\n";
        let captions = Captions::parse(text.as_bytes()).unwrap();
        assert_eq!(captions.cues[0].text, "alert(1) a --&gt; b bold</b> 1 &lt; 2 &gt; 0 &#x41; &amp;bogus");
    }

    #[test]
    fn cues_come_out_in_start_order() {
        let text = "2\n00:00:05,000 --> 00:00:06,000\nsecond\n\n1\n00:00:01,000 --> 00:00:02,000\nfirst\n";
        let captions = Captions::parse(text.as_bytes()).unwrap();
        assert_eq!(captions.cues[0].text, "first");
    }

    #[test]
    fn bad_files_name_the_line_and_the_fix() {
        let cases: [(&[u8], &str); 8] = [
            (b"", "the file has no cues; send an SRT or WebVTT file with at least one timed cue"),
            (b"\xff\xfeW\0E\0", "the captions are not UTF-8 text (byte 0 is not); save the file as UTF-8 and send it again"),
            (
                b"1\n00:00:01,000 -> 00:00:02,000\nx\n",
                "line 1: expected a cue number, then a timing line like 00:00:01,000 --> 00:00:04,000, found \"1\"",
            ),
            (b"1\n00:00:01 --> 00:00:02,000\nx\n", "line 2: \"00:00:01\" is not a time like 00:01:02,500"),
            (
                b"1\n00:00:03,000 --> 00:00:02,000\nx\n",
                "line 2: the cue ends (00:00:02.000) no later than it starts (00:00:03.000); fix its timing",
            ),
            (b"1\n00:61:00,000 --> 00:62:00,000\nx\n", "line 2: \"00:61:00,000\" is not a time like 00:01:02,500"),
            (b"1\n25:00:00,000 --> 25:00:01,000\nx\n", "line 2: \"25:00:00,000\" is later than 24 hours"),
            (b"WEBVTT\n\n00:01,000 --> 00:02.000\nx\n", "line 3: \"00:01,000\" is not a time like 00:01:02.500"),
        ];
        for (bytes, message) in cases {
            assert_eq!(Captions::parse(bytes).unwrap_err().to_string(), message, "{:?}", String::from_utf8_lossy(bytes));
        }
        let long = format!("1\n00:00:01,000 --> 00:00:02,000\n{}\n", "x".repeat(MAX_CUE_CHARS + 1));
        assert!(Captions::parse(long.as_bytes()).unwrap_err().to_string().starts_with("line 3: the cue's text is longer"));
        let many: String = (0..=MAX_CUES).map(|i| format!("{i}\n00:00:01,000 --> 00:00:02,000\nx\n\n")).collect();
        assert_eq!(Captions::parse(many.as_bytes()).unwrap_err(), CaptionError::TooManyCues);
    }

    #[test]
    fn a_hostile_line_is_quoted_short() {
        let line = "y".repeat(10_000);
        let err = Captions::parse(format!("{line}\nx\n").as_bytes()).unwrap_err().to_string();
        assert!(err.len() < 200, "{err}");
    }
}
