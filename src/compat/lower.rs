//! Lowers the original's filters to a native plan: the compat profile has
//! no interpreter of its own. A tree whose `download` and `cache` calls were
//! replaced by leaves (image `i` of the request) becomes a chain from its
//! first leaf, each filter one step: a native operation where the
//! original's filter behaves alike (flip, flop, colorspace, compression),
//! else one of the original's (`pipeline::ops::original`); a `compose`
//! step carries its second image's chain. The plan's dialect
//! (`Dialect::Original`) gives the original's decoding, colour and output.
//! Everything the original checked before touching pixels (names, argument
//! kinds, a fraction of a pixel) is checked here, with its wording.

use super::grammar::{Node, Unit as OUnit, Value};
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::original::{Amount, MaxSize, Original};
use crate::pipeline::ops::{
    AlphaMode, Colorspace, ColorspaceName, Compression, CompressionName, IccProfile, Mirror, Op,
};
use crate::pipeline::parse::Unit;
use crate::pipeline::{Dialect, OutputSpec, Plan};

/// The name of a leaf: an already fetched image (`args[0]` indexes the request's images).
pub const LEAF: &str = "\u{0}source";

/// The original's filters: `download` and `cache` are resolved before a
/// plan is made, the others lowered here.
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
pub const FILTERS: &str = "undefined point box triangle hermite hann hamming blackman gaussian quadratic cubic \
    catrom mitchell jinc sinc sinc_fast kaiser welch parzen bohman bartlett lagrange lanczos lanczos_sharp lanczos2 \
    lanczos2_sharp robidoux robidoux_sharp cosine spline lanczos_radius cubic_spline";
pub const GRAVITY: &str = "undefined north_west north north_east west center east south_west south south_east";

/// Why a tree cannot become a plan: a filter's own error (the original
/// answered 500), or something it did that this service does not offer
/// (PDF, PS and SVG output: their coders are off; 400).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LowerError {
    #[error("{0}")]
    Filter(String),
    #[error("{0}")]
    Unsupported(String),
}

fn filter_error(message: impl Into<String>) -> LowerError {
    LowerError::Filter(message.into())
}

/// `name` as one of the original's names in `list` (it lowercased its input).
fn known(list: &'static str, name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    list.split_whitespace().find(|n| *n == lower)
}

/// The plan of a resolved tree (its images are leaves), and the index of
/// the image it starts from.
pub fn lower(tree: &Node, max: MaxSize) -> Result<(usize, Plan), LowerError> {
    let mut format = None;
    let (input, ops) = chain(tree, max, Some(&mut format))?;
    let output = OutputSpec {
        format: format.unwrap_or(ImageFormat::Jpeg),
        // Without `format()`, every input is written as itself.
        keep: if format.is_some() {
            Vec::new()
        } else {
            ImageFormat::ALL.to_vec()
        },
        strip: false,
        auto_orient: false,
        keep_icc: true,
        // `encode_original` never sets a quality: this says so in the key.
        input_quality: true,
        ..OutputSpec::default()
    };
    Ok((
        input,
        Plan {
            ops,
            output,
            overlays: Vec::new(),
            dialect: Dialect::Original {
                format_set: format.is_some(),
            },
        },
    ))
}

/// The steps from a leaf up to `node`, and the leaf's image index. The
/// output format is read only on the main chain (`format` is then `Some`):
/// a `format()` inside a composed image wrote nothing in the original.
fn chain(
    node: &Node,
    max: MaxSize,
    mut format: Option<&mut Option<ImageFormat>>,
) -> Result<(usize, Vec<Op>), LowerError> {
    if node.name == LEAF {
        return match node.args.first() {
            Some(Value::Int(i, _)) if *i >= 0 => Ok((*i as usize, Vec::new())),
            _ => Err(filter_error("internal: a source without an index")),
        };
    }
    let a = Args { node };
    let image = match node.args.first() {
        Some(Value::Image(inner)) => inner,
        _ => return Err(a.missing(0, "an image")),
    };
    let (input, mut ops) = chain(image, max, format.as_deref_mut())?;
    let step = match node.name.as_str() {
        "resize" => {
            let filter = match node.args.get(3) {
                None => "lanczos",
                Some(_) => {
                    let name = a.text(3, "Filter")?;
                    known(FILTERS, name).ok_or_else(|| filter_error(format!("Unknown resize filter: {name}")))?
                }
            };
            Op::Original(Original::Resize {
                width: a.int(1)?,
                height: a.int(2)?,
                filter,
                max,
            })
        }
        "fit-in" => Op::Original(Original::FitIn {
            width: a.int(1)?,
            height: a.int(2)?,
            max,
        }),
        "compose" => {
            let operator = a.text(2, "CompositeOperator")?;
            let operator = known(COMPOSITE, operator)
                .filter(|n| crate::magick::knows_composite(n))
                .ok_or_else(|| filter_error(format!("Unknown composition operator: {operator}")))?;
            let (x, y) = (a.int(3)?, a.int(4)?);
            let src = match node.args.get(1) {
                Some(Value::Image(inner)) => inner,
                _ => return Err(a.missing(1, "an image")),
            };
            let (src_input, src_ops) = chain(src, max, None)?;
            Op::Original(Original::Compose {
                input: src_input,
                ops: src_ops,
                operator,
                x,
                y,
            })
        }
        "trim" => Op::Original(Original::Trim),
        "crop" => Op::Original(Original::Crop {
            x: a.int(1)?,
            y: a.int(2)?,
            width: a.int(3)?,
            height: a.int(4)?,
        }),
        "extend" => Op::Original(Original::Extend {
            x: a.int(1)?,
            y: a.int(2)?,
            right: a.int(3)?,
            bottom: a.int(4)?,
        }),
        "format" => {
            let name = a.text(1, "ImageFormat")?;
            let original = super::config::OriginalFormat::parse(name)
                .ok_or_else(|| filter_error(format!("Unknown format: {name}")))?;
            let native = original.native().ok_or_else(|| {
                LowerError::Unsupported(format!(
                    "format: `{name}` output is not offered: its coder is disabled by the security policy"
                ))
            })?;
            if let Some(f) = format {
                *f = Some(native);
            }
            return Ok((input, ops));
        }
        "pattern" => Op::Original(Original::Pattern {
            width: a.int(1)?,
            height: a.int(2)?,
            max,
        }),
        "repeat" => Op::Original(Original::Repeat {
            count_x: a.int(1)?,
            count_y: a.int(2)?,
            offset_x: a.int(3)?,
            offset_y: a.int(4)?,
        }),
        "colorspace" => {
            let name = a.text(1, "Colorspace")?;
            let space = known(COLORSPACE, name)
                .and_then(ColorspaceName::parse)
                .ok_or_else(|| filter_error(format!("Unknown colorspace: {name}")))?;
            Op::Colorspace(Colorspace(space))
        }
        "alpha" => {
            let name = a.text(1, "AlphaChannel")?;
            let mode = known(ALPHA, name)
                .and_then(AlphaMode::parse)
                .ok_or_else(|| filter_error(format!("Unknown alpha channel option: {name}")))?;
            Op::Original(Original::Alpha(mode))
        }
        "compression" => {
            let name = a.text(1, "CompressionType")?;
            let c = known(COMPRESSION, name)
                .and_then(CompressionName::parse)
                .ok_or_else(|| filter_error(format!("Unknown compression type: {name}")))?;
            Op::Compression(Compression(c))
        }
        "gravity" => {
            let name = a.text(1, "Gravity")?;
            let g = known(GRAVITY, name).ok_or_else(|| filter_error(format!("Unknown gravity type: {name}")))?;
            Op::Original(Original::Gravity(g))
        }
        "profile" => {
            let profile = |i| -> Result<IccProfile, LowerError> {
                let name = a.text(i, "ColorProfile")?;
                match name.to_ascii_lowercase().as_str() {
                    "srgb" => Ok(IccProfile::Srgb),
                    "fogra39" => Ok(IccProfile::Fogra39),
                    _ => Err(filter_error(format!("Unknown color profile: {name}"))),
                }
            };
            Op::Original(Original::Profile {
                source: profile(1)?,
                target: profile(2)?,
            })
        }
        "resample" => {
            let filter = match node.args.get(3) {
                None => "lanczos",
                Some(_) => {
                    let name = a.text(3, "Filter")?;
                    known(FILTERS, name).ok_or_else(|| filter_error(format!("Unknown resize filter: {name}")))?
                }
            };
            Op::Original(Original::Resample {
                x: a.float(1)?,
                y: a.float(2)?,
                filter,
                max,
            })
        }
        "canvas" => Op::Original(Original::Canvas {
            x: a.float(1)?,
            y: a.float(2)?,
        }),
        "cm" | "dpi" => Op::Original(Original::Resolution {
            x: a.float(1)?,
            y: a.float(2)?,
            per_cm: node.name == "cm",
        }),
        "sepia" => Op::Original(Original::Sepia(a.float(1)?)),
        "flip" => Op::Mirror(Mirror::Flip),
        "flop" => Op::Mirror(Mirror::Flop),
        "bg" => Op::Original(Original::Background(a.text(1, "string")?.to_string())),
        other => return Err(filter_error(format!("no such filter: {other}"))),
    };
    ops.push(step);
    Ok((input, ops))
}

/// Argument access with the original's rules.
struct Args<'a> {
    node: &'a Node,
}

fn unit(u: OUnit) -> Unit {
    match u {
        OUnit::None | OUnit::Px => Unit::Px,
        OUnit::W => Unit::W,
        OUnit::H => Unit::H,
        OUnit::Hcm => Unit::Hcm,
        OUnit::Vcm => Unit::Vcm,
        OUnit::Hin => Unit::Hin,
        OUnit::Vin => Unit::Vin,
    }
}

impl Args<'_> {
    fn missing(&self, i: usize, kind: &str) -> LowerError {
        filter_error(format!("Argument {} to `{}` must be {kind}", i + 1, self.node.name))
    }

    /// Whole pixels: any unit converted and truncated when the step runs;
    /// a fraction of a pixel is refused.
    fn int(&self, i: usize) -> Result<Amount, LowerError> {
        match self.node.args.get(i) {
            Some(Value::Int(v, u)) => Ok(Amount {
                value: *v as f64,
                unit: unit(*u),
            }),
            Some(Value::Float(_, OUnit::None | OUnit::Px)) => {
                Err(filter_error("Unit px does not support fractional values."))
            }
            Some(Value::Float(v, u)) => Ok(Amount {
                value: *v,
                unit: unit(*u),
            }),
            _ => Err(self.missing(i, "an integer")),
        }
    }

    fn float(&self, i: usize) -> Result<Amount, LowerError> {
        match self.node.args.get(i) {
            Some(Value::Int(v, u)) => Ok(Amount {
                value: *v as f64,
                unit: unit(*u),
            }),
            Some(Value::Float(v, u)) => Ok(Amount {
                value: *v,
                unit: unit(*u),
            }),
            _ => Err(self.missing(i, "a float")),
        }
    }

    fn text(&self, i: usize, kind: &str) -> Result<&str, LowerError> {
        match self.node.args.get(i) {
            Some(Value::Text(t)) => Ok(t),
            _ => Err(self.missing(i, &format!("an {kind}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compat::grammar;

    fn leaf(i: i64) -> Value {
        Value::Image(Node {
            name: LEAF.to_string(),
            args: vec![Value::Int(i, OUnit::None)],
        })
    }

    /// The tree of `text` with `download(...)` replaced by leaves, in order.
    fn resolved(text: &str) -> Node {
        fn walk(node: Node, next: &mut i64) -> Node {
            if node.name == "download" {
                let i = *next;
                *next += 1;
                let Value::Image(n) = leaf(i) else { unreachable!() };
                return n;
            }
            Node {
                name: node.name,
                args: node
                    .args
                    .into_iter()
                    .map(|a| match a {
                        Value::Image(inner) => Value::Image(walk(inner, next)),
                        other => other,
                    })
                    .collect(),
            }
        }
        walk(grammar::parse(text).unwrap(), &mut 0)
    }

    #[test]
    fn a_chain_becomes_one_plan_from_its_first_image() {
        let (input, plan) = lower(
            &resolved("download(a):resize(200,0):flip():format(png)"),
            MaxSize::default(),
        )
        .unwrap();
        assert_eq!(input, 0);
        assert_eq!(plan.ops.len(), 2);
        assert!(matches!(
            plan.ops[0],
            Op::Original(Original::Resize { filter: "lanczos", .. })
        ));
        assert!(matches!(plan.ops[1], Op::Mirror(Mirror::Flip)));
        assert_eq!(plan.output.format_for(ImageFormat::Jpeg), ImageFormat::Png);
        assert_eq!(plan.dialect, Dialect::Original { format_set: true });
        let (_, kept) = lower(&resolved("download(a):flop()"), MaxSize::default()).unwrap();
        assert_eq!(
            kept.output.format_for(ImageFormat::Gif),
            ImageFormat::Gif,
            "the input's own format"
        );
    }

    #[test]
    fn compose_carries_its_second_images_chain() {
        let (_, plan) = lower(
            &resolved("compose(download(a):flip(),download(b):resize(10,10),multiply,0,0)"),
            MaxSize::default(),
        )
        .unwrap();
        match &plan.ops[1] {
            Op::Original(Original::Compose {
                input, ops, operator, ..
            }) => {
                assert_eq!((*input, ops.len(), *operator), (1, 1, "multiply"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_originals_checks_are_made_before_any_pixel() {
        for (url, error) in [
            (
                "download(a):resize(10.5,10)",
                "Unit px does not support fractional values.",
            ),
            ("download(a):resize(10,10,wobbly)", "Unknown resize filter: wobbly"),
            (
                "download(a):compose(download(b),sideways,0,0)",
                "Unknown composition operator: sideways",
            ),
            ("download(a):colorspace(purple)", "Unknown colorspace: purple"),
        ] {
            assert_eq!(
                lower(&resolved(url), MaxSize::default()).unwrap_err(),
                LowerError::Filter(error.into()),
                "{url}"
            );
        }
        assert!(matches!(
            lower(&resolved("download(a):format(pdf)"), MaxSize::default()),
            Err(LowerError::Unsupported(_))
        ));
    }
}
