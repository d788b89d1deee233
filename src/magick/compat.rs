//! The compat profile's filters (`crate::compat`), run on a worker the way
//! imaginator 2018 ran them: each filter acts on the image it is given, at
//! its real size, with the original's argument rules (whole pixels, `w`/`h`
//! and physical units computed in `f32` and truncated), its defaults
//! (Lanczos, trim fuzz 15, the image's own background) and its geometry
//! (`fit-in` enlarges, `crop` clips negative offsets, `pattern` resizes the
//! tile exactly). The output keeps the input's format and metadata, with no
//! auto-orientation. Our limits stay: every source header is checked before
//! decoding, every size a filter makes is bounded before it is made, and
//! its pixels are reserved from the pixel-cache budget.

use super::error::{JobError, decode_error, op_error};
use super::estimate::BYTES_PER_PIXEL;
use super::job::{Source, probe_source};
use super::pool::Outcome;
use super::wand::{Wand, WandError};
use crate::compat::grammar::{Node, Unit, Value};
use crate::config::Limits;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::{AlphaMode, ColorspaceName, ComposeOperator, CompressionName, Dpi, MAX_OUTPUT_SIDE};
use magick_rust::bindings as im;
use std::time::Instant;

/// The original's filters: `download` and `cache` are resolved before a
/// job runs, the others here.
pub const NAMES: [&str; 24] = [
    "download",
    "resize",
    "fit-in",
    "compose",
    "trim",
    "crop",
    "extend",
    "format",
    "pattern",
    "repeat",
    "colorspace",
    "profile",
    "compression",
    "resample",
    "canvas",
    "cm",
    "sepia",
    "flip",
    "flop",
    "cache",
    "dpi",
    "alpha",
    "gravity",
    "bg",
];

/// The name of a leaf: an already fetched image (`args[0]` indexes `sources`).
pub const LEAF: &str = "\u{0}source";

pub struct CompatJob {
    /// Filters whose `download`/`cache` calls were replaced by leaves.
    pub tree: Node,
    pub sources: Vec<Source>,
    pub limits: Limits,
    pub deadline: Instant,
    /// `image.max_width` / `image.max_height`: resize targets are clamped.
    pub max_width: Option<i64>,
    pub max_height: Option<i64>,
}

#[derive(Debug)]
pub struct CompatRendered {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
}

#[derive(Debug, thiserror::Error)]
pub enum CompatError {
    /// A filter's arguments or use is wrong (the original answered 500).
    #[error("{0}")]
    Filter(String),
    /// Something the original did that this service does not offer (PDF,
    /// PS and SVG output: their coders are off): 400.
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Job(#[from] JobError),
}

impl Outcome for Result<CompatRendered, CompatError> {
    fn outcome(&self) -> &'static str {
        match self {
            Ok(_) => "ok",
            Err(CompatError::Filter(_) | CompatError::Unsupported(_)) => "invalid",
            Err(CompatError::Job(JobError::Deadline)) => "deadline",
            Err(CompatError::Job(_)) => "error",
        }
    }
}

fn filter_error(message: impl Into<String>) -> CompatError {
    CompatError::Filter(message.into())
}

fn op(e: WandError) -> CompatError {
    CompatError::Job(op_error(e))
}

pub fn run(job: CompatJob) -> Result<CompatRendered, CompatError> {
    let mut run = Run { job: &job };
    // The image's shares are held until it is encoded.
    let Img {
        mut wand,
        grants: _held,
    } = run.eval(&job.tree)?;
    if wand.past_deadline() {
        return Err(JobError::Deadline.into());
    }
    let name = wand.format_name();
    let format = ImageFormat::parse(&name.to_ascii_lowercase())
        .ok_or_else(|| filter_error(format!("Unknown format: {name}")))?;
    let bytes = wand.encode().map_err(op)?;
    Ok(CompatRendered { bytes, format })
}

struct Run<'a> {
    job: &'a CompatJob,
}

type Grant = Option<super::budget::Grant<'static>>;

/// An image and the pixel-cache shares reserved for it: a step that makes
/// a new size reserves it before it runs and lets the old share go after,
/// so a job holds its peak, not the sum of its steps.
struct Img {
    wand: Wand,
    grants: Vec<Grant>,
}

impl Run<'_> {
    /// Checks a size a filter is about to make and reserves its pixels.
    fn admit(&mut self, width: i64, height: i64, what: &str) -> Result<(usize, usize, Grant), CompatError> {
        if width < 1 || height < 1 {
            return Err(filter_error(format!("{what}: {width}x{height} is not a size")));
        }
        let limit = MAX_OUTPUT_SIDE as i64;
        let pixels = (width as u64).saturating_mul(height as u64);
        if width > limit || height > limit || pixels > self.job.limits.max_pixels {
            return Err(JobError::TooLarge(format!(
                "{what}: {width}x{height} is larger than the limits ({limit} px a side, {} pixels)",
                self.job.limits.max_pixels
            ))
            .into());
        }
        let grant = super::budget::reserve_for_job(pixels.saturating_mul(BYTES_PER_PIXEL), self.job.deadline)?;
        Ok((width as usize, height as usize, grant))
    }

    fn image(&mut self, node: &Node, i: usize) -> Result<Img, CompatError> {
        match node.args.get(i) {
            Some(Value::Image(inner)) => self.eval(inner),
            _ => Err(filter_error(format!(
                "Argument {} to `{}` must be an image",
                i + 1,
                node.name
            ))),
        }
    }

    fn eval(&mut self, node: &Node) -> Result<Img, CompatError> {
        if node.name == LEAF {
            return self.decode(node);
        }
        let Img {
            wand: mut img,
            mut grants,
        } = self.image(node, 0)?;
        // The share for a step's new size, kept once the step has run.
        let mut replace = |grant: Grant| grants = vec![grant];
        if img.past_deadline() {
            return Err(JobError::Deadline.into());
        }
        let a = Args { node, img: &img };
        match node.name.as_str() {
            "resize" => {
                let (w, h) = (a.int(1)?, a.int(2)?);
                let filter = match node.args.get(3) {
                    None => im::FilterType::Lanczos,
                    Some(_) => filter_type(a.text(3, "Filter")?)?,
                };
                let (w, h) = self.target(&img, w, h);
                let (w, h, grant) = self.admit(w, h, "resize")?;
                img.resize(size(w, h), filter).map_err(op)?;
                replace(grant);
            }
            "fit-in" => {
                let (w, h) = (a.int(1)?, a.int(2)?);
                let (w, h) = self.target(&img, w, h);
                // magick_rust's `fit`: the smaller ratio wins, the other side truncated.
                let s = img.size();
                let (iw, ih) = (f64::from(s.width), f64::from(s.height));
                let (rw, rh) = (w as f64 / iw, h as f64 / ih);
                let (w, h) = if rw < rh {
                    (w, (ih * rw) as i64)
                } else {
                    ((iw * rh) as i64, h)
                };
                let (w, h, grant) = self.admit(w, h, "fit-in")?;
                img.resize(size(w, h), im::FilterType::Lanczos).map_err(op)?;
                replace(grant);
            }
            "compose" => {
                let operator = composite(a.text(2, "CompositeOperator")?)?;
                let (x, y) = (a.int(3)?, a.int(4)?);
                let src = self.image(node, 1)?;
                img.composite(&src.wand, operator, x, y).map_err(op)?;
            }
            "trim" => img.trim_fuzz(15.0).map_err(op)?,
            "crop" => {
                let (x, y, w, h) = (a.int(1)?, a.int(2)?, a.int(3)?, a.int(4)?);
                if w < 0 || h < 0 {
                    return Err(filter_error(format!("crop: {w}x{h} is not a size")));
                }
                img.crop_raw(w as usize, h as usize, x, y).map_err(op)?;
            }
            "extend" => {
                let (x, y, w, h) = (a.int(1)?, a.int(2)?, a.int(3)?, a.int(4)?);
                let (w, h, grant) = self.admit(w - x, h - y, "extend")?;
                img.extent_raw(w, h, x, y).map_err(op)?;
                replace(grant);
            }
            "format" => {
                let name = a.text(1, "ImageFormat")?;
                let format = crate::compat::config::OriginalFormat::parse(name)
                    .ok_or_else(|| filter_error(format!("Unknown format: {name}")))?;
                let native = format.native().ok_or_else(|| {
                    CompatError::Unsupported(format!(
                        "format: `{name}` output is not offered: its coder is disabled by the security policy"
                    ))
                })?;
                img.set_format(native.coder()).map_err(op)?;
                if native == ImageFormat::Tiff {
                    // As the original: some editors need short strips.
                    img.set_option("tiff:rows-per-strip", "2").map_err(op)?;
                }
            }
            "pattern" => {
                let (w, h) = (a.int(1)?, a.int(2)?);
                if w < 1 || h < 1 {
                    return Err(filter_error("Pattern width/height is less than 1px!"));
                }
                let s = img.size();
                let (iw, ih) = (i64::from(s.width), i64::from(s.height));
                let (qx, qy) = (
                    (iw as f64 / w as f64).ceil() as i64,
                    (ih as f64 / h as f64).ceil() as i64,
                );
                // resize(w,h):extend(0,0,iw,ih):repeat(qx,qy,w,h), as the original chained them.
                let (tw, th) = self.target(&img, w, h);
                let (tw, th, tile) = self.admit(tw, th, "pattern")?;
                img.resize(size(tw, th), im::FilterType::Lanczos).map_err(op)?;
                let (ew, eh, grant) = self.admit(iw, ih, "pattern")?;
                img.extent_raw(ew, eh, 0, 0).map_err(op)?;
                drop(tile);
                replace(grant);
                repeat(&mut img, qx, qy, w, h)?;
            }
            "repeat" => {
                let (cx, cy, ox, oy) = (a.int(1)?, a.int(2)?, a.int(3)?, a.int(4)?);
                if cx.saturating_add(cy) > 256 {
                    return Err(filter_error("repeat: at most 256 copies"));
                }
                repeat(&mut img, cx, cy, ox, oy)?;
            }
            "colorspace" => {
                let name = a.text(1, "Colorspace")?;
                let space =
                    ColorspaceName::parse(name).ok_or_else(|| filter_error(format!("Unknown colorspace: {name}")))?;
                img.transform_colorspace(space.into()).map_err(op)?;
            }
            "alpha" => {
                let name = a.text(1, "AlphaChannel")?;
                let mode = known(ALPHA, name)
                    .then(|| AlphaMode::parse(name))
                    .flatten()
                    .ok_or_else(|| filter_error(format!("Unknown alpha channel option: {name}")))?;
                img.set_alpha(mode.into()).map_err(op)?;
            }
            "compression" => {
                let name = a.text(1, "CompressionType")?;
                let c = known(COMPRESSION, name)
                    .then(|| CompressionName::parse(name))
                    .flatten()
                    .ok_or_else(|| filter_error(format!("Unknown compression type: {name}")))?;
                img.set_compression(c.into()).map_err(op)?;
            }
            "gravity" => {
                let g = gravity(a.text(1, "Gravity")?)?;
                img.set_gravity(g).map_err(op)?;
            }
            "profile" => {
                use crate::pipeline::ops::IccProfile;
                let profile = |i| -> Result<(IccProfile, im::ColorspaceType), CompatError> {
                    let name = a.text(i, "ColorProfile")?;
                    match name.to_ascii_lowercase().as_str() {
                        "srgb" => Ok((IccProfile::Srgb, im::ColorspaceType::sRGB)),
                        "fogra39" => Ok((IccProfile::Fogra39, im::ColorspaceType::CMYK)),
                        _ => Err(filter_error(format!("Unknown color profile: {name}"))),
                    }
                };
                let ((src, space), (dst, _)) = (profile(1)?, profile(2)?);
                if img.colorspace() != space {
                    return Err(filter_error(format!(
                        "profile: The image cannot be converted, because the image is in {:?} colorspace instead of {space:?}.",
                        img.colorspace()
                    )));
                }
                img.apply_profile(super::profiles::icc(src)).map_err(op)?;
                img.apply_profile(super::profiles::icc(dst)).map_err(op)?;
            }
            "resample" => {
                let (x, y) = (f64::from(a.float(1)?), f64::from(a.float(2)?));
                let filter = match node.args.get(3) {
                    None => im::FilterType::Lanczos,
                    Some(_) => filter_type(a.text(3, "Filter")?)?,
                };
                let (ox, oy) = img.raw_resolution();
                let s = img.size();
                let w = f64::from(s.width) * x / ox;
                let h = f64::from(s.height) * y / oy;
                if let Some(max) = self.job.max_width
                    && w as i64 > max
                {
                    return Err(filter_error(format!(
                        "Cannot resample image to horizontal resolution {x}, because it would exceed the maximum width of {max} pixels."
                    )));
                }
                if let Some(max) = self.job.max_height
                    && h as i64 > max
                {
                    return Err(filter_error(format!(
                        "Cannot resample image to vertical resolution {y}, because it would exceed the maximum height of {max} pixels."
                    )));
                }
                if !(w.is_finite() && h.is_finite()) {
                    return Err(filter_error("resample: the image records no resolution"));
                }
                let (_, _, grant) = self.admit(w.ceil() as i64, h.ceil() as i64, "resample")?;
                img.resample(Dpi { x, y }, filter).map_err(op)?;
                replace(grant);
            }
            "canvas" => {
                let (bx, by) = (f64::from(a.float(1)?), f64::from(a.float(2)?));
                let grant = self.canvas(&mut img, bx, by)?;
                replace(grant);
            }
            "cm" => {
                let (x, y) = (a.float(1)? * 0.393_700_8, a.float(2)? * 0.393_700_8);
                let s = img.size();
                let (xd, yd) = (s.width as f32 / x, s.height as f32 / y);
                set_dpi(&mut img, f64::from(xd), f64::from(yd))?;
            }
            "dpi" => {
                let (x, y) = (a.float(1)?, a.float(2)?);
                set_dpi(&mut img, f64::from(x), f64::from(y))?;
            }
            "sepia" => {
                let t = a.float(1)?;
                img.sepia_threshold(f64::from(t)).map_err(op)?;
            }
            "flip" => img.flip().map_err(op)?,
            "flop" => img.flop().map_err(op)?,
            "bg" => {
                let color = a.text(1, "string")?.to_string();
                img.set_background_text(&color).map_err(|e| filter_error(e.message))?;
            }
            other => return Err(filter_error(format!("no such filter: {other}"))),
        }
        Ok(Img { wand: img, grants })
    }

    /// A source: its header against the limits, then its first frame.
    fn decode(&mut self, node: &Node) -> Result<Img, CompatError> {
        let Some(Value::Int(i, _)) = node.args.first() else {
            return Err(filter_error("internal: a source without an index"));
        };
        let source = &self.job.sources[*i as usize];
        let header = probe_source(
            &source.bytes,
            source.format,
            source.density,
            &self.job.limits,
            self.job.deadline,
        )?;
        if let Some(budget) = super::budget::get() {
            super::estimate::check_decode_fits(source.format, header.largest, budget.total())?;
        }
        let grant = super::budget::reserve_for_job(header.largest.saturating_mul(BYTES_PER_PIXEL), self.job.deadline)?;
        let mut wand = Wand::new(self.job.deadline);
        wand.read_first_frame(&source.bytes, source.format.coder())
            .map_err(decode_error)?;
        wand.keep_first_frame().map_err(op)?;
        if let Some(dpi) = source.density {
            wand.set_resolution(Dpi { x: dpi, y: dpi }).map_err(op)?;
        }
        Ok(Img {
            wand,
            grants: vec![grant],
        })
    }

    /// Resize targets: clamped to `image.max_*`, a 0 side from the aspect
    /// ratio, truncated (the original's `resize` and `fit-in`).
    fn target(&self, img: &Wand, mut w: i64, mut h: i64) -> (i64, i64) {
        if let Some(max) = self.job.max_width {
            w = w.min(max);
        }
        if let Some(max) = self.job.max_height {
            h = h.min(max);
        }
        let s = img.size();
        let ratio = f64::from(s.width) / f64::from(s.height);
        if w == 0 {
            w = (h as f64 * ratio) as i64;
        }
        if h == 0 {
            h = (w as f64 / ratio) as i64;
        }
        (w, h)
    }

    /// The original's `canvas(bx, by)`: a mirrored bleed of `bx` x `by` cm.
    fn canvas(&mut self, img: &mut Wand, bx: f64, by: f64) -> Result<Grant, CompatError> {
        let s = img.size();
        if s.width < 3 || s.height < 3 {
            return Err(filter_error("canvas: the image is too small"));
        }
        // Drop a 1 px border that may hold artefacts of earlier steps.
        img.extent_raw(s.width as usize - 2, s.height as usize - 2, 1, 1)
            .map_err(op)?;
        let mirrors = img.mirrors().map_err(op)?;
        let (xd, yd) = img.raw_resolution();
        let s = img.size();
        let (w, h) = (i64::from(s.width), i64::from(s.height));
        let xb = (xd * bx * 0.393_700_8) as i64;
        let yb = (yd * by * 0.393_700_8) as i64;
        if xb < 0 || yb < 0 || xb > w || yb > h {
            return Err(filter_error("canvas: the bleed must be between 0 and the image's size"));
        }
        // The canvas, and the three mirrored copies laid around the image.
        let (cw, ch, grant) = self.admit(w + 2 * xb, h + 2 * yb, "canvas")?;
        let _copies = self.admit(w, 3 * h, "canvas")?;
        img.extent_raw(cw, ch, -xb, -yb).map_err(op)?;
        img.lay_mirrors(&mirrors, s, (xb, yb), im::CompositeOperator::Over)
            .map_err(op)?;
        Ok(grant)
    }
}

fn size(w: usize, h: usize) -> crate::pipeline::ops::Size {
    crate::pipeline::ops::Size::new(w as u32, h as u32)
}

fn set_dpi(img: &mut Wand, x: f64, y: f64) -> Result<(), CompatError> {
    if !(x.is_finite() && y.is_finite()) || x <= 0.0 || y <= 0.0 {
        return Err(filter_error(format!("{x}x{y} is not a resolution")));
    }
    // As the original: Photoshop's resolution block would contradict it.
    img.remove_profile("8bim");
    img.set_resolution(Dpi { x, y }).map_err(op)
}

/// The original's `repeat`: the image laid over itself `cx` times to the
/// right and `cy` times down (ImageMagick composes from a copy).
fn repeat(img: &mut Wand, cx: i64, cy: i64, ox: i64, oy: i64) -> Result<(), CompatError> {
    let over = im::CompositeOperator::Over;
    for x in 1..cx {
        let copy = img.duplicate();
        img.composite(&copy, over, x * ox, 0).map_err(op)?;
    }
    for y in 1..cy {
        let copy = img.duplicate();
        img.composite(&copy, over, 0, y * oy).map_err(op)?;
    }
    Ok(())
}

/// Argument access with the original's rules.
struct Args<'a> {
    node: &'a Node,
    img: &'a Wand,
}

impl Args<'_> {
    fn missing(&self, i: usize, kind: &str) -> CompatError {
        filter_error(format!("Argument {} to `{}` must be {kind}", i + 1, self.node.name))
    }

    /// A length in `f32`, as the original's `parse_size`.
    fn size(&self, value: f32, unit: Unit) -> f32 {
        let s = self.img.size();
        let (rx, ry) = self.img.raw_resolution();
        match unit {
            Unit::None | Unit::Px => value,
            Unit::W => value * s.width as f32,
            Unit::H => value * s.height as f32,
            Unit::Hcm => value * 0.393_700_8 * rx as f32,
            Unit::Vcm => value * 0.393_700_8 * ry as f32,
            Unit::Hin => value * rx as f32,
            Unit::Vin => value * ry as f32,
        }
    }

    /// Whole pixels: units converted and truncated; a fraction of a pixel is refused.
    fn int(&self, i: usize) -> Result<i64, CompatError> {
        match self.node.args.get(i) {
            Some(Value::Int(v, Unit::None | Unit::Px)) => Ok(*v),
            Some(Value::Int(v, unit)) => Ok(self.size(*v as f32, *unit) as i64),
            Some(Value::Float(_, Unit::None | Unit::Px)) => {
                Err(filter_error("Unit px does not support fractional values."))
            }
            Some(Value::Float(v, unit)) => Ok(self.size(*v as f32, *unit) as i64),
            _ => Err(self.missing(i, "an integer")),
        }
    }

    fn float(&self, i: usize) -> Result<f32, CompatError> {
        match self.node.args.get(i) {
            Some(Value::Int(v, unit)) => Ok(self.size(*v as f32, *unit)),
            Some(Value::Float(v, unit)) => Ok(self.size(*v as f32, *unit)),
            _ => Err(self.missing(i, "a float")),
        }
    }

    fn text(&self, i: usize, kind: &str) -> Result<&str, CompatError> {
        match self.node.args.get(i) {
            Some(Value::Text(t)) => Ok(t),
            _ => Err(self.missing(i, &format!("an {kind}"))),
        }
    }
}

/// The original's names, from its `FromStr` implementations.
pub const COMPOSITE: &str = "undefined alpha atop blend blur bumpmap change_mask clear color_burn color_dodge \
    colorize copy_black copy_blue copy copy_cyan copy_green copy_magenta copy_alpha copy_red copy_yellow darken \
    darken_intensity difference displace dissolve distort divide_dst divide_src dst_atop dst dst_in dst_out \
    dst_over exclusion hard_light hard_mix hue in intensity lighten lighten_intensity linear_burn linear_dodge \
    linear_light luminize mathematics minus_dst minus_src modulate modulus_add modulus_subtract multiply no out \
    over overlay pegtop_light pin_light plus replace saturate screen soft_light src_atop src src_in src_out \
    src_over threshold vivid_light xor stereo";
pub const COLORSPACE: &str = "undefined cmy cmyk gray hcl hclp hsb hsi hsl hsv hwb lab lch lchab lchuv log lms luv \
    ohta rec601ycbcr rec709ycbcr rgb scrgb srgb transparent xyy xyz ycbcr ycc ydbdr yiq ypbpr yuv lineargray";
pub const COMPRESSION: &str = "undefined b44a b44 bzip dxt1 dxt3 dxt5 fax group4 jbig1 jbig2 jpeg2000 jpeg \
    losslessjpeg lzma lzw no piz pxr24 rle zip zips";
pub const ALPHA: &str = "undefined activate associate background copy deactivate discrete disassociate extract off \
    on opaque remove set shape transparent";

/// The 33 resize filters by the original's names.
pub const FILTERS: [(&str, im::FilterType); 33] = [
    ("undefined", im::FilterType::Undefined),
    ("point", im::FilterType::Point),
    ("box", im::FilterType::Box),
    ("triangle", im::FilterType::Triangle),
    ("hermite", im::FilterType::Hermite),
    ("hann", im::FilterType::Hann),
    ("hamming", im::FilterType::Hamming),
    ("blackman", im::FilterType::Blackman),
    ("gaussian", im::FilterType::Gaussian),
    ("quadratic", im::FilterType::Quadratic),
    ("cubic", im::FilterType::Cubic),
    ("catrom", im::FilterType::Catrom),
    ("mitchell", im::FilterType::Mitchell),
    ("jinc", im::FilterType::Jinc),
    ("sinc", im::FilterType::Sinc),
    ("sinc_fast", im::FilterType::SincFast),
    ("kaiser", im::FilterType::Kaiser),
    ("welch", im::FilterType::Welch),
    ("parzen", im::FilterType::Parzen),
    ("bohman", im::FilterType::Bohman),
    ("bartlett", im::FilterType::Bartlett),
    ("lagrange", im::FilterType::Lagrange),
    ("lanczos", im::FilterType::Lanczos),
    ("lanczos_sharp", im::FilterType::LanczosSharp),
    ("lanczos2", im::FilterType::Lanczos2),
    ("lanczos2_sharp", im::FilterType::Lanczos2Sharp),
    ("robidoux", im::FilterType::Robidoux),
    ("robidoux_sharp", im::FilterType::RobidouxSharp),
    ("cosine", im::FilterType::Cosine),
    ("spline", im::FilterType::Spline),
    ("lanczos_radius", im::FilterType::LanczosRadius),
    ("cubic_spline", im::FilterType::CubicSpline),
    ("sentinel", im::FilterType::Sentinel),
];

/// Whether `name` is in a list of the original's names (it lowercased its input).
fn known(list: &str, name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    list.split_whitespace().any(|n| n == lower)
}

fn filter_type(name: &str) -> Result<im::FilterType, CompatError> {
    let lower = name.to_ascii_lowercase();
    FILTERS
        .iter()
        .find(|(n, _)| *n == lower)
        .map(|(_, f)| *f)
        .filter(|f| *f != im::FilterType::Sentinel)
        .ok_or_else(|| filter_error(format!("Unknown resize filter: {name}")))
}

fn composite(name: &str) -> Result<im::CompositeOperator, CompatError> {
    // The original's names are ImageMagick's in snake_case; two differ.
    if !known(COMPOSITE, name) {
        return Err(filter_error(format!("Unknown composition operator: {name}")));
    }
    let op = match name.to_ascii_lowercase().as_str() {
        "no" => Some(ComposeOperator::NoOp),
        // ImageMagick 7 names it, but its option table does not offer it.
        "alpha" => return Ok(im::CompositeOperator::Alpha),
        other => ComposeOperator::parse(other),
    };
    op.map(Into::into)
        .ok_or_else(|| filter_error(format!("Unknown composition operator: {name}")))
}

fn gravity(name: &str) -> Result<im::GravityType, CompatError> {
    use im::GravityType as G;
    Ok(match name.to_ascii_lowercase().as_str() {
        "undefined" => G::Undefined,
        "north_west" => G::NorthWest,
        "north" => G::North,
        "north_east" => G::NorthEast,
        "west" => G::West,
        "center" => G::Center,
        "east" => G::East,
        "south_west" => G::SouthWest,
        "south" => G::South,
        "south_east" => G::SouthEast,
        _ => return Err(filter_error(format!("Unknown gravity type: {name}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::{ALPHA, COLORSPACE, COMPOSITE, COMPRESSION};

    #[test]
    fn every_name_the_original_knew_is_known() {
        let composite_names: Vec<&str> = COMPOSITE.split_whitespace().collect();
        assert_eq!(composite_names.len(), 72);
        let unknown: Vec<&str> = composite_names.into_iter().filter(|n| composite(n).is_err()).collect();
        assert!(unknown.is_empty(), "composite {unknown:?}");
        assert_eq!(composite("over").unwrap() as u32, im::CompositeOperator::Over as u32);
        for name in COLORSPACE.split_whitespace() {
            assert!(ColorspaceName::parse(name).is_some(), "colorspace {name}");
        }
        let compression: Vec<&str> = COMPRESSION.split_whitespace().collect();
        assert_eq!(compression.len(), 22, "21 types and `undefined`");
        for name in compression {
            assert!(CompressionName::parse(name).is_some(), "compression {name}");
        }
        for name in ALPHA.split_whitespace() {
            assert!(AlphaMode::parse(name).is_some(), "alpha {name}");
        }
        for (name, _) in &FILTERS[..32] {
            assert!(filter_type(name).is_ok(), "filter {name}");
        }
        assert!(filter_type("Lanczos").is_ok(), "case-insensitive, as the original");
        assert!(filter_type("sentinel").is_err());
        assert!(gravity("north_west").is_ok() && gravity("undefined").is_ok());
    }
}
