//! Image-pipeline logic: the filter language, aliases, operations, their
//! geometry, and the colour policy. No FFI and no HTTP; the only I/O is
//! reading alias files at start-up (`alias`). `magick` applies plans, `http`
//! builds them from requests.

pub mod alias;
pub mod chain;
pub mod colour;
pub mod exif;
pub mod format;
pub mod icc;
pub mod layers;
pub mod metadata;
pub mod ops;
pub mod parse;
pub mod suggest;

use format::ImageFormat;
use ops::{Dpi, Op, Size};
use serde::{Deserialize, Serialize};

/// What to write: format, quality and the default clean-ups. An alias
/// file's `[output]` table (`OutputFile`) reads into it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "OutputFile")]
pub struct OutputSpec {
    pub format: ImageFormat,
    /// Encoder quality, 1..=100.
    pub quality: u8,
    /// A JPEG written from a JPEG source keeps the source's quality
    /// (ImageMagick's estimate from its quantisation tables), as imaginator
    /// 2018 wrote it; `quality` applies to every other pair of formats.
    pub input_quality: bool,
    /// Input formats written back as themselves (e.g. `["png"]` keeps PNG with alpha).
    pub keep: Vec<ImageFormat>,
    /// Remove metadata (EXIF, comments, profiles other than colour).
    pub strip: bool,
    /// Apply the EXIF orientation before anything else.
    pub auto_orient: bool,
    /// `format(auto)` (`format = "auto"` in an alias file): the request's
    /// `Accept` header picks AVIF or WebP (those `auto_formats` allows), else
    /// the fallback (`format`, JPEG; PNG when the image has alpha).
    pub negotiate: bool,
    /// Write PNG instead of `format` when the decoded image has an alpha
    /// channel (the fallback of a negotiation; set per request, not in files).
    pub png_for_alpha: bool,
    /// Progressive JPEG, interlaced PNG and GIF (`interlace()`,
    /// `progressive()`; `progressive = true` in an alias file).
    pub interlace: bool,
    /// With `strip`, keep the EXIF copyright and artist (as imgproxy does);
    /// `keep_copyright = false` removes them too.
    pub keep_copyright: bool,
    /// Keep the image's own ICC profile and its pixels as they are
    /// (`icc(keep)`); by default pixels are converted to sRGB and the profile
    /// stripped (`colour`).
    pub keep_icc: bool,
    /// Bits per channel of PNG and TIFF output: 8, or 16 (`depth(16)`).
    /// JPEG, WebP, AVIF and GIF are always 8.
    pub depth: u8,
    /// JPEG chroma: `"420"` (the default: 4:2:0 below quality 90, 4:4:4
    /// from it, as libjpeg, libvips and Pillow write) or `"444"` (always
    /// full). Lossy WebP is always 4:2:0, AVIF always 4:4:4 (`AVIF_CHROMA`). The original dialect and `input_quality` keep the source's
    /// sampling, as imaginator 2018 did.
    pub chroma: Chroma,
}

/// Raised whenever an encoder setting changes what a plan writes, so that a
/// result cached before (memory, disk or the bucket) is not served for the
/// new one. 2: JPEG 4:2:0 below q90, AVIF at the plan's quality (it was
/// libheif's 50) with 4:4:4 at speed 7, PNG at zlib level 4, and the
/// `auto` resize filter Lanczos (it was Catmull-Rom).
pub const ENCODERS_REVISION: u32 = 2;

/// libwebp's method (0 fastest .. 6 smallest) lossy WebP is written with,
/// by both engines: 4, libwebp's default, as Pillow, sharp and imgproxy use.
pub const WEBP_METHOD: u8 = 4;

/// libaom's speed (0 slowest .. 9 fastest) AVIF is written with, by both
/// engines. Measured on the benchmark photos against thumbor (libavif speed
/// 6) and sharp (speed 5), bytes at equal PSNR against the worse of the two
/// and misses per second against the faster: speed 6 (libheif's default)
/// 0.96x the bytes but 1.03x the speed; 8 (imgproxy's default) 2.35x the
/// speed but 1.06x the bytes; 7 1.02x the bytes at 1.77x the speed
/// (docs/benchmarks.md).
pub const AVIF_SPEED: &str = "7";

/// zlib level PNG is written with, by both engines, with libpng's adaptive
/// filters: on photos level 4 is as small as ImageMagick's default (7) to
/// within 0.5% in a fraction of the deflate time; 3 and below add 10%.
pub const PNG_LEVEL: u8 = 4;

/// AVIF's chroma, by both engines, whatever the quality: 4:4:4, as sharp
/// writes it. AV1 predicts chroma from luma; on the benchmark photos 4:4:4
/// needs 17-25% fewer bytes than 4:2:0 for the same PSNR (docs/benchmarks.md).
pub const AVIF_CHROMA: &str = "444";

/// JPEG chroma subsampling (`OutputSpec::chroma`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Chroma {
    #[default]
    #[serde(rename = "420")]
    Subsampled,
    #[serde(rename = "444")]
    Full,
}

impl Chroma {
    /// Whether a lossy image of `quality` is written with 4:2:0 chroma.
    pub fn subsampled(self, quality: u8) -> bool {
        self == Chroma::Subsampled && quality < 90
    }

    /// ImageMagick's `jpeg:sampling-factor` for a JPEG of `quality`.
    pub fn sampling_factor(self, quality: u8) -> &'static str {
        match self.subsampled(quality) {
            true => "2x2,1x1,1x1",
            false => "1x1,1x1,1x1",
        }
    }
}

impl Default for OutputSpec {
    fn default() -> Self {
        OutputSpec {
            format: ImageFormat::Jpeg,
            quality: 85,
            input_quality: false,
            keep: Vec::new(),
            strip: true,
            auto_orient: true,
            negotiate: false,
            png_for_alpha: false,
            interlace: false,
            keep_copyright: true,
            keep_icc: false,
            depth: 8,
            chroma: Chroma::Subsampled,
        }
    }
}

/// An alias file's `[output]` table: `format` also takes `"auto"` (format
/// negotiation) and `"jpg"`/`"tif"`; `progressive` is `interlace`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct OutputFile {
    format: FormatName,
    quality: u8,
    input_quality: bool,
    keep: Vec<ImageFormat>,
    strip: bool,
    auto_orient: bool,
    #[serde(alias = "progressive")]
    interlace: bool,
    keep_copyright: bool,
    keep_icc: bool,
    depth: u8,
    chroma: Chroma,
}

impl Default for OutputFile {
    fn default() -> Self {
        let d = OutputSpec::default();
        OutputFile {
            format: FormatName::Fixed(d.format),
            quality: d.quality,
            input_quality: d.input_quality,
            keep: d.keep,
            strip: d.strip,
            auto_orient: d.auto_orient,
            interlace: d.interlace,
            keep_copyright: d.keep_copyright,
            keep_icc: d.keep_icc,
            depth: d.depth,
            chroma: d.chroma,
        }
    }
}

/// `format` in an alias file: `auto`, or a format this service writes.
enum FormatName {
    Auto,
    Fixed(ImageFormat),
}

impl<'de> Deserialize<'de> for FormatName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        if name.eq_ignore_ascii_case("auto") {
            return Ok(FormatName::Auto);
        }
        ImageFormat::parse(&name)
            .filter(|f| *f != ImageFormat::Heic)
            .map(FormatName::Fixed)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "format `{name}` is not one of auto, jpeg (jpg), png, gif, webp, tiff (tif), avif"
                ))
            })
    }
}

impl From<OutputFile> for OutputSpec {
    fn from(f: OutputFile) -> OutputSpec {
        let (format, negotiate) = match f.format {
            FormatName::Auto => (ImageFormat::Jpeg, true),
            FormatName::Fixed(format) => (format, false),
        };
        OutputSpec {
            format,
            quality: f.quality,
            input_quality: f.input_quality,
            keep: f.keep,
            strip: f.strip,
            auto_orient: f.auto_orient,
            negotiate,
            png_for_alpha: false,
            interlace: f.interlace,
            keep_copyright: f.keep_copyright,
            keep_icc: f.keep_icc,
            depth: f.depth,
            chroma: f.chroma,
        }
    }
}

/// A validated, fully bound list of operations and the output to write.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub ops: Vec<Op>,
    pub output: OutputSpec,
    /// The images `compose` steps lay over the input: `Compose::input` 1 is
    /// the first of these (0 is the input).
    pub overlays: Vec<chain::SourceSpec>,
    /// How the whole plan decodes, treats colour and writes its output.
    pub dialect: Dialect,
}

/// The rules a plan follows besides its operations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// This service's: decode reduced where the steps allow, convert to
    /// sRGB, write by `OutputSpec`.
    #[default]
    Native,
    /// imaginator 2018's (the compat profile): the first frame decoded
    /// whole, no orientation and no colour conversion, metadata kept, the
    /// input's format and ImageMagick's own quality written unless a
    /// `format()` step chose (`format_set`; TIFF then with 2 rows a strip,
    /// as the original wrote it).
    Original { format_set: bool },
}

impl Plan {
    /// The size the image has after every operation, from its (oriented) input size.
    pub fn output_size(&self, input: Size) -> Size {
        self.ops.iter().fold(input, |size, op| op.output_size(size))
    }

    /// The linear scale (< 1) at which the source may be decoded without losing
    /// anything the pipeline needs: the first operation's scale times
    /// `headroom` (1.0: decode at least at the target size; 2.0: twice it).
    /// Aspect-aware by construction (one factor for both sides).
    pub fn decode_scale(&self, input: Size, headroom: f64) -> Option<f64> {
        decode_scale(&self.ops, input, headroom, Dpi::DEFAULT)
    }

    /// Whether the plan converts colour itself (`profile(src,dst)`), so the
    /// automatic conversion to sRGB stays out of its way.
    pub fn manages_colour(&self) -> bool {
        self.output.keep_icc
            || self.dialect != Dialect::Native
            || self.ops.iter().any(|op| matches!(op, Op::Profile(_)))
    }

    /// A canonical text form of the work: cache-key material.
    pub fn canonical(&self) -> String {
        self.canonical_with(&self.ops)
    }

    /// The canonical text of this plan as it renders a source of `source`
    /// pixels (as displayed), when a device pixel ratio makes it differ:
    /// `dpr` resolved, and a `fit-in` that keeps its input whole named by
    /// that input (`ops::dpr::key_steps`), so that two ratios that make the
    /// same image have the same key. `None` without `dpr`, or when the
    /// steps do not see the displayed size (no auto-orientation).
    pub fn keyed_for(&self, source: Size) -> Option<String> {
        if !self.output.auto_orient || !self.ops.iter().any(|op| matches!(op, Op::Dpr(_))) {
            return None;
        }
        Some(self.canonical_with(&ops::dpr::key_steps(&self.ops, source)))
    }

    fn canonical_with(&self, ops: &[Op]) -> String {
        let ops: Vec<String> = ops.iter().map(ToString::to_string).collect();
        let overlays: Vec<String> = self.overlays.iter().map(ToString::to_string).collect();
        let o = &self.output;
        format!(
            "{}|{}|{}{}:q{}{}:strip={}{}:orient={}:interlace={}:keep={:?}:icc={}:depth={}:enc={}",
            ops.join(":"),
            overlays.join(","),
            o.format,
            if o.png_for_alpha { "/png-for-alpha" } else { "" },
            o.quality,
            if o.input_quality { "/input" } else { "" },
            o.strip,
            if o.strip && o.keep_copyright {
                "/but-copyright"
            } else {
                ""
            },
            o.auto_orient,
            o.interlace,
            o.keep,
            if o.keep_icc { "keep" } else { "srgb" },
            o.depth,
            ENCODERS_REVISION
        ) + if o.chroma == Chroma::Full { ":chroma=444" } else { "" }
    }
}

/// The linear scale (< 1) at which an image of `input` pixels and `dpi`
/// resolution may be decoded for `ops`: the first operation's scale times
/// `headroom`. See `Plan::decode_scale`.
pub fn decode_scale(ops: &[Op], input: Size, headroom: f64, dpi: Dpi) -> Option<f64> {
    let target = ops.first()?.in_pixels(dpi).scaled_size(input)?;
    let sx = f64::from(target.width) / f64::from(input.width);
    let sy = f64::from(target.height) / f64::from(input.height);
    let scale = sx.max(sy) * headroom;
    (scale < 1.0).then_some(scale)
}
