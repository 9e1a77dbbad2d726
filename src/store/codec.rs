//! How entries are encoded in key-value backends (Redis, S3, folders): JSON,
//! optionally in one zstd frame or gzip member. On read the compression is
//! recognised by its magic bytes, because nothing in a sagaz store says which
//! mode wrote an entry. Decoding is bounded in size and nesting depth so one
//! hostile entry cannot exhaust memory or the stack.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde_json::Value;

const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Compression used when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// Plain JSON, uncompressed.
    #[default]
    None,
    /// One zstd frame, as sagaz's `ZstdCompressor(level=3)`.
    Zstd {
        /// zstd level (1–22; sagaz uses 3).
        level: i32,
    },
    /// One gzip member, as Python's `gzip.compress` (level 9).
    Gzip {
        /// gzip level (0–9; Python's default is 9).
        level: u32,
    },
}

impl Compression {
    /// zstd at level 3, as sagaz's `ZstdCompressor` writes.
    pub fn zstd() -> Self {
        Compression::Zstd { level: 3 }
    }
    /// gzip at level 9, as Python's `gzip.compress` writes.
    pub fn gzip() -> Self {
        Compression::Gzip { level: 9 }
    }
}

/// How JSON text is laid out when writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum JsonStyle {
    /// `json.dumps(x)`: `", "` and `": "` separators, ASCII-only.
    #[default]
    Python,
    /// `json.dumps(x, indent=2)`: what sagaz's folder store writes.
    PythonIndent2,
    /// Compact, UTF-8 as is (smaller, faster; sagaz reads it too).
    Compact,
}

/// Bounds applied to every decoded entry (see [`crate::limits`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest entry as stored (compressed or not), in bytes.
    pub max_stored_bytes: usize,
    /// Largest decompressed entry, in bytes.
    pub max_decoded_bytes: usize,
    /// Deepest nesting of arrays/objects.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_stored_bytes: crate::limits::MAX_STORED_ENTRY_BYTES,
            max_decoded_bytes: crate::limits::MAX_DECODED_ENTRY_BYTES,
            max_depth: 128,
        }
    }
}

/// Why an entry could not be decoded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    /// The magic bytes say zstd or gzip, but the data does not decompress.
    #[error("corrupt {format} data: {reason}")]
    Decompress {
        /// `"zstd"` or `"gzip"`.
        format: &'static str,
        /// The decompressor's message.
        reason: String,
    },
    /// The entry decompresses to more than [`Limits::max_decoded_bytes`]
    /// (decompression stops at the cap).
    #[error("entry is larger than the {} cap once decompressed", crate::limits::human_bytes(*limit))]
    TooLarge {
        /// [`Limits::max_decoded_bytes`], in bytes.
        limit: usize,
    },
    /// The entry as stored is larger than [`Limits::max_stored_bytes`].
    #[error("entry is {size} bytes, larger than the {} cap on a stored entry", crate::limits::human_bytes(*limit))]
    StoredTooLarge {
        /// The entry's size as stored, in bytes.
        size: usize,
        /// [`Limits::max_stored_bytes`], in bytes.
        limit: usize,
    },
    /// The JSON nests arrays and objects deeper than [`Limits::max_depth`]
    /// (checked before parsing).
    #[error("JSON nests deeper than the limit of {limit} levels")]
    TooDeep {
        /// [`Limits::max_depth`].
        limit: usize,
    },
    /// The entry is not valid JSON (after decompression); holds the parser's
    /// message.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The entry has no bytes at all.
    #[error("entry is empty")]
    Empty,
}

/// Encoder/decoder with one write configuration and read limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Codec {
    /// How entries are compressed when written (reads tell by magic bytes).
    pub compression: Compression,
    /// How JSON text is laid out when written.
    pub style: JsonStyle,
    /// Bounds checked on every entry read.
    pub limits: Limits,
}

/// Which compression a stored entry uses, told by its first bytes.
pub fn sniff(raw: &[u8]) -> Compression {
    if raw.starts_with(&ZSTD_MAGIC) {
        Compression::zstd()
    } else if raw.starts_with(&GZIP_MAGIC) {
        Compression::gzip()
    } else {
        Compression::None
    }
}

impl Codec {
    /// A codec that writes with `compression` and `style` and reads within the
    /// default [`Limits`].
    pub fn new(compression: Compression, style: JsonStyle) -> Self {
        Codec {
            compression,
            style,
            limits: Limits::default(),
        }
    }

    /// Decompresses (if compressed) within the size limit.
    pub fn decompress<'a>(&self, raw: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, CodecError> {
        if raw.len() > self.limits.max_stored_bytes {
            return Err(CodecError::StoredTooLarge {
                size: raw.len(),
                limit: self.limits.max_stored_bytes,
            });
        }
        let limit = self.limits.max_decoded_bytes;
        match sniff(raw) {
            Compression::None => {
                if raw.len() > limit {
                    return Err(CodecError::TooLarge { limit });
                }
                Ok(std::borrow::Cow::Borrowed(raw))
            }
            Compression::Zstd { .. } => {
                // sagaz's (and our) frames record their size: decompress in
                // one call with a reused context. A fresh streaming decoder
                // per entry allocates ~100 KB of zstd state each time, which
                // dominated listing 100 snapshots.
                if let Some(size) = zstd::bulk::Decompressor::upper_bound(raw) {
                    if size > limit {
                        return Err(CodecError::TooLarge { limit });
                    }
                    return decompress_zstd_sized(raw, size).map(std::borrow::Cow::Owned);
                }
                let dec =
                    zstd::stream::read::Decoder::new(raw).map_err(|e| CodecError::Decompress {
                        format: "zstd",
                        reason: e.to_string(),
                    })?;
                read_bounded(dec, limit, "zstd").map(std::borrow::Cow::Owned)
            }
            Compression::Gzip { .. } => {
                let dec = flate2::read::GzDecoder::new(raw);
                read_bounded(dec, limit, "gzip").map(std::borrow::Cow::Owned)
            }
        }
    }

    /// Decodes one stored entry into JSON.
    pub fn decode(&self, raw: &[u8]) -> Result<Value, CodecError> {
        let bytes = self.decompress(raw)?;
        self.parse_json(&bytes)
    }

    /// Parses JSON text within the depth limit.
    pub fn parse_json(&self, bytes: &[u8]) -> Result<Value, CodecError> {
        if bytes.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(CodecError::Empty);
        }
        check_depth(bytes, self.limits.max_depth)?;
        serde_json::from_slice(bytes).map_err(|e| CodecError::Json(e.to_string()))
    }

    /// Encodes a value: JSON in the configured style, then compression.
    pub fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Vec<u8> {
        let json = to_json_bytes(value, self.style);
        compress(&json, self.compression)
    }
}

/// Compresses bytes as configured.
pub fn compress(bytes: &[u8], compression: Compression) -> Vec<u8> {
    match compression {
        Compression::None => bytes.to_vec(),
        Compression::Zstd { level } => {
            // Single-shot, so the frame records its content size as sagaz's
            // does. Compressing an in-memory buffer cannot fail.
            // The context is reused per thread and level (creating one costs
            // more than compressing a small snapshot).
            ZSTD_CCTX
                .with(|cell| {
                    let mut slot = cell.borrow_mut();
                    if slot.as_ref().is_none_or(|(l, _)| *l != level) {
                        *slot = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
                    }
                    match slot.as_mut() {
                        Some((_, c)) => c.compress(bytes).ok(),
                        None => None,
                    }
                })
                .or_else(|| zstd::bulk::compress(bytes, level).ok())
                .unwrap_or_else(|| bytes.to_vec())
        }
        Compression::Gzip { level } => {
            let mut enc =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
            if enc.write_all(bytes).is_err() {
                return bytes.to_vec();
            }
            enc.finish().unwrap_or_else(|_| bytes.to_vec())
        }
    }
}

thread_local! {
    static ZSTD_CCTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
    static ZSTD_DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// One-shot zstd decompression of a frame whose size is known.
fn decompress_zstd_sized(raw: &[u8], size: usize) -> Result<Vec<u8>, CodecError> {
    let err = |e: std::io::Error| CodecError::Decompress {
        format: "zstd",
        reason: e.to_string(),
    };
    ZSTD_DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(err)?);
        }
        match slot.as_mut() {
            Some(d) => d.decompress(raw, size).map_err(err),
            None => Err(err(std::io::Error::other("no zstd context"))),
        }
    })
}

fn read_bounded(r: impl Read, limit: usize, format: &'static str) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    let mut taken = r.take(limit as u64 + 1);
    taken
        .read_to_end(&mut out)
        .map_err(|e| CodecError::Decompress {
            format,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(CodecError::TooLarge { limit });
    }
    Ok(out)
}

/// Rejects JSON nested deeper than `limit` before the parser recurses.
fn check_depth(bytes: &[u8], limit: usize) -> Result<(), CodecError> {
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Jump through the string (most of a snapshot's bytes) to
                // its closing quote, stepping over escapes.
                i += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
                        // Unterminated: the parser will say so.
                        None => return Ok(()),
                        Some(j) if bytes[i + j] == b'\\' => i += j + 2,
                        Some(j) => {
                            i += j + 1;
                            break;
                        }
                    }
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(CodecError::TooDeep { limit });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Serializes to JSON text in the given style.
pub fn to_json_bytes<T: Serialize + ?Sized>(value: &T, style: JsonStyle) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let result = match style {
        JsonStyle::Compact => serde_json::to_writer(&mut out, value),
        JsonStyle::Python => {
            let mut ser =
                serde_json::Serializer::with_formatter(&mut out, PythonFormatter::new(None));
            value.serialize(&mut ser)
        }
        JsonStyle::PythonIndent2 => {
            let mut ser =
                serde_json::Serializer::with_formatter(&mut out, PythonFormatter::new(Some(2)));
            value.serialize(&mut ser)
        }
    };
    // Serializing a JSON value into a Vec cannot fail; a custom Serialize
    // that fails is a programming error caught by tests.
    debug_assert!(result.is_ok());
    out
}

/// Python `json.dumps` layout: `", "`/`": "` (or `","` + newlines with an
/// indent), and `ensure_ascii=True` escapes.
struct PythonFormatter {
    indent: Option<usize>,
    level: usize,
    has_value: bool,
}

impl PythonFormatter {
    fn new(indent: Option<usize>) -> Self {
        PythonFormatter {
            indent,
            level: 0,
            has_value: false,
        }
    }

    fn newline<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        if let Some(n) = self.indent {
            w.write_all(b"\n")?;
            for _ in 0..self.level * n {
                w.write_all(b" ")?;
            }
        }
        Ok(())
    }

    fn separator<W: ?Sized + Write>(&self, w: &mut W, first: bool) -> io::Result<()> {
        if !first {
            w.write_all(if self.indent.is_some() { b"," } else { b", " })?;
        }
        self.newline(w)
    }
}

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.level -= 1;
        if self.has_value {
            self.newline(w)?;
        }
        self.has_value = true;
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.separator(w, first)
    }
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return w.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for c in fragment.chars() {
            if c.is_ascii() {
                w.write_all(&[c as u8])?;
            } else {
                for unit in c.encode_utf16(&mut buf) {
                    write!(w, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// The string value of `"field": "…"` found by text search in a damaged
/// JSON document (after decompression when it decompresses): how a store
/// learns which saga a corrupt entry belonged to, to clean its indexes.
pub(crate) fn salvage_string_field(codec: &Codec, raw: &[u8], field: &str) -> Option<String> {
    let bytes = codec
        .decompress(raw)
        .map(|b| b.into_owned())
        .unwrap_or_else(|_| raw.to_vec());
    let text = String::from_utf8_lossy(&bytes);
    let quoted = format!("\"{field}\"");
    let rest = &text[text.find(&quoted)? + quoted.len()..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_like_python_json_dumps() {
        let v = json!({"a": [1, 2], "b": {"c": "caf\u{e9} \u{1F680}"}, "e": [], "f": {}});
        let text = String::from_utf8(to_json_bytes(&v, JsonStyle::Python)).unwrap();
        assert_eq!(
            text,
            r#"{"a": [1, 2], "b": {"c": "caf\u00e9 \ud83d\ude80"}, "e": [], "f": {}}"#
        );
        let pretty = String::from_utf8(to_json_bytes(&v, JsonStyle::PythonIndent2)).unwrap();
        assert_eq!(
            pretty,
            "{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": {\n    \"c\": \"caf\\u00e9 \\ud83d\\ude80\"\n  },\n  \"e\": [],\n  \"f\": {}\n}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn sniffs_and_round_trips_every_compression() {
        let v = json!({"k": "v".repeat(1000), "big": 9007199254740993u64});
        for c in [Compression::None, Compression::zstd(), Compression::gzip()] {
            let codec = Codec::new(c, JsonStyle::Python);
            let raw = codec.encode(&v);
            assert_eq!(sniff(&raw), c);
            // A reader configured differently still reads it.
            assert_eq!(Codec::default().decode(&raw).unwrap(), v);
        }
    }

    #[test]
    fn truncated_zstd_frame_is_an_error() {
        let raw = Codec::new(Compression::zstd(), JsonStyle::Python)
            .encode(&json!({"k": "v".repeat(5000)}));
        let cut = &raw[..raw.len() / 2];
        assert!(matches!(
            Codec::default().decode(cut),
            Err(CodecError::Decompress { format: "zstd", .. })
        ));
    }

    #[test]
    fn deeply_nested_array_is_rejected_without_overflow() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(
            Codec::default().decode(deep.as_bytes()),
            Err(CodecError::TooDeep { limit: 128 })
        );
        // Brackets inside strings do not count.
        let fine = format!("{{\"s\": \"{}\"}}", "[".repeat(1000));
        assert!(Codec::default().decode(fine.as_bytes()).is_ok());
        // Nor do brackets after escaped quotes and backslashes inside one.
        let escaped = format!(r#"{{"s": "\\\" {} \\", "t": []}}"#, "{".repeat(500));
        assert!(
            Codec::default().decode(escaped.as_bytes()).is_ok(),
            "{escaped}"
        );
        // A string that never ends is the parser's error, not a panic.
        assert!(matches!(
            Codec::default().decode(br#"{"s": "abc\"#),
            Err(CodecError::Json(_))
        ));
    }

    #[test]
    fn decompression_bomb_is_cut_at_the_limit() {
        let raw = compress(&vec![b' '; 1 << 20], Compression::zstd());
        let mut codec = Codec::default();
        codec.limits.max_decoded_bytes = 1000;
        assert_eq!(
            codec.decode(&raw),
            Err(CodecError::TooLarge { limit: 1000 })
        );
    }

    #[test]
    fn invalid_json_and_empty_are_errors() {
        assert!(matches!(
            Codec::default().decode(b"{\"a\": "),
            Err(CodecError::Json(_))
        ));
        assert_eq!(Codec::default().decode(b""), Err(CodecError::Empty));
    }
}
