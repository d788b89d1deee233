//! ImageMagick's option names (compose operators, alpha operations, colour
//! spaces, compression types) as Rust enums, so a chain names one of them or
//! is refused with a 400 when it is compiled, and `magick` converts each to
//! ImageMagick's own enum with a plain `match`. The names and aliases are
//! ImageMagick 7.1.1's (MagickCore/option.c), matched without regard to case,
//! `-` or `_` (`soft-light`, `soft_light` and `SoftLight` are one).

/// Looks `word` up in a name table sorted by name.
fn lookup<T: Copy>(table: &[(&str, T)], word: &str) -> Option<T> {
    let normal: String = word
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    table
        .binary_search_by(|(name, _)| (*name).cmp(normal.as_str()))
        .ok()
        .map(|i| table[i].1)
}

/// A composition operator (`compose(dst, src, OP, x, y)`), by ImageMagick's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ComposeOperator {
    Undefined,
    Atop,
    Blend,
    Blur,
    Bumpmap,
    ChangeMask,
    Clear,
    ColorBurn,
    ColorDodge,
    Colorize,
    CopyAlpha,
    CopyBlack,
    CopyBlue,
    Copy,
    CopyCyan,
    CopyGreen,
    CopyMagenta,
    CopyRed,
    CopyYellow,
    Darken,
    DarkenIntensity,
    Difference,
    Displace,
    Dissolve,
    Distort,
    DivideDst,
    DivideSrc,
    DstAtop,
    Dst,
    DstIn,
    DstOut,
    DstOver,
    Exclusion,
    Freeze,
    HardLight,
    HardMix,
    Hue,
    In,
    Intensity,
    Interpolate,
    LightenIntensity,
    Lighten,
    LinearBurn,
    LinearDodge,
    LinearLight,
    Luminize,
    Mathematics,
    MinusDst,
    MinusSrc,
    Modulate,
    ModulusAdd,
    ModulusSubtract,
    Multiply,
    Negate,
    NoOp,
    Out,
    Overlay,
    Over,
    PegtopLight,
    PinLight,
    Plus,
    Reflect,
    Replace,
    Rmse,
    Saturate,
    Screen,
    SaliencyBlend,
    SeamlessBlend,
    SoftBurn,
    SoftDodge,
    SoftLight,
    SrcAtop,
    SrcIn,
    SrcOut,
    SrcOver,
    Src,
    Stamp,
    Stereo,
    VividLight,
    Xor,
    Threshold,
}

impl ComposeOperator {
    /// Every name ImageMagick accepts (lower-case, without `-` and `_`),
    /// deprecated spellings included, sorted for binary search.
    const NAMES: &[(&str, ComposeOperator)] = &[
        ("add", ComposeOperator::ModulusAdd),
        ("atop", ComposeOperator::Atop),
        ("blend", ComposeOperator::Blend),
        ("blur", ComposeOperator::Blur),
        ("bumpmap", ComposeOperator::Bumpmap),
        ("changemask", ComposeOperator::ChangeMask),
        ("clear", ComposeOperator::Clear),
        ("colorburn", ComposeOperator::ColorBurn),
        ("colordodge", ComposeOperator::ColorDodge),
        ("colorize", ComposeOperator::Colorize),
        ("copy", ComposeOperator::Copy),
        ("copyalpha", ComposeOperator::CopyAlpha),
        ("copyblack", ComposeOperator::CopyBlack),
        ("copyblue", ComposeOperator::CopyBlue),
        ("copycyan", ComposeOperator::CopyCyan),
        ("copygreen", ComposeOperator::CopyGreen),
        ("copymagenta", ComposeOperator::CopyMagenta),
        ("copyopacity", ComposeOperator::CopyAlpha),
        ("copyred", ComposeOperator::CopyRed),
        ("copyyellow", ComposeOperator::CopyYellow),
        ("darken", ComposeOperator::Darken),
        ("darkenintensity", ComposeOperator::DarkenIntensity),
        ("difference", ComposeOperator::Difference),
        ("displace", ComposeOperator::Displace),
        ("dissolve", ComposeOperator::Dissolve),
        ("distort", ComposeOperator::Distort),
        ("divide", ComposeOperator::DivideDst),
        ("dividedst", ComposeOperator::DivideDst),
        ("dividesrc", ComposeOperator::DivideSrc),
        ("dst", ComposeOperator::Dst),
        ("dstatop", ComposeOperator::DstAtop),
        ("dstin", ComposeOperator::DstIn),
        ("dstout", ComposeOperator::DstOut),
        ("dstover", ComposeOperator::DstOver),
        ("exclusion", ComposeOperator::Exclusion),
        ("freeze", ComposeOperator::Freeze),
        ("hardlight", ComposeOperator::HardLight),
        ("hardmix", ComposeOperator::HardMix),
        ("hue", ComposeOperator::Hue),
        ("in", ComposeOperator::In),
        ("intensity", ComposeOperator::Intensity),
        ("interpolate", ComposeOperator::Interpolate),
        ("lighten", ComposeOperator::Lighten),
        ("lightenintensity", ComposeOperator::LightenIntensity),
        ("linearburn", ComposeOperator::LinearBurn),
        ("lineardodge", ComposeOperator::LinearDodge),
        ("linearlight", ComposeOperator::LinearLight),
        ("luminize", ComposeOperator::Luminize),
        ("mathematics", ComposeOperator::Mathematics),
        ("minus", ComposeOperator::MinusDst),
        ("minusdst", ComposeOperator::MinusDst),
        ("minussrc", ComposeOperator::MinusSrc),
        ("modulate", ComposeOperator::Modulate),
        ("modulusadd", ComposeOperator::ModulusAdd),
        ("modulussubtract", ComposeOperator::ModulusSubtract),
        ("multiply", ComposeOperator::Multiply),
        ("negate", ComposeOperator::Negate),
        ("none", ComposeOperator::NoOp),
        ("out", ComposeOperator::Out),
        ("over", ComposeOperator::Over),
        ("overlay", ComposeOperator::Overlay),
        ("pegtoplight", ComposeOperator::PegtopLight),
        ("pinlight", ComposeOperator::PinLight),
        ("plus", ComposeOperator::Plus),
        ("reflect", ComposeOperator::Reflect),
        ("replace", ComposeOperator::Replace),
        ("rmse", ComposeOperator::Rmse),
        ("saliencyblend", ComposeOperator::SaliencyBlend),
        ("saturate", ComposeOperator::Saturate),
        ("screen", ComposeOperator::Screen),
        ("seamlessblend", ComposeOperator::SeamlessBlend),
        ("softburn", ComposeOperator::SoftBurn),
        ("softdodge", ComposeOperator::SoftDodge),
        ("softlight", ComposeOperator::SoftLight),
        ("src", ComposeOperator::Src),
        ("srcatop", ComposeOperator::SrcAtop),
        ("srcin", ComposeOperator::SrcIn),
        ("srcout", ComposeOperator::SrcOut),
        ("srcover", ComposeOperator::SrcOver),
        ("stamp", ComposeOperator::Stamp),
        ("stereo", ComposeOperator::Stereo),
        ("subtract", ComposeOperator::ModulusSubtract),
        ("threshold", ComposeOperator::Threshold),
        ("undefined", ComposeOperator::Undefined),
        ("vividlight", ComposeOperator::VividLight),
        ("xor", ComposeOperator::Xor),
    ];

    pub fn parse(word: &str) -> Option<Self> {
        lookup(Self::NAMES, word)
    }

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            ComposeOperator::Undefined => "undefined",
            ComposeOperator::Atop => "atop",
            ComposeOperator::Blend => "blend",
            ComposeOperator::Blur => "blur",
            ComposeOperator::Bumpmap => "bumpmap",
            ComposeOperator::ChangeMask => "changemask",
            ComposeOperator::Clear => "clear",
            ComposeOperator::ColorBurn => "colorburn",
            ComposeOperator::ColorDodge => "colordodge",
            ComposeOperator::Colorize => "colorize",
            ComposeOperator::CopyAlpha => "copyalpha",
            ComposeOperator::CopyBlack => "copyblack",
            ComposeOperator::CopyBlue => "copyblue",
            ComposeOperator::Copy => "copy",
            ComposeOperator::CopyCyan => "copycyan",
            ComposeOperator::CopyGreen => "copygreen",
            ComposeOperator::CopyMagenta => "copymagenta",
            ComposeOperator::CopyRed => "copyred",
            ComposeOperator::CopyYellow => "copyyellow",
            ComposeOperator::Darken => "darken",
            ComposeOperator::DarkenIntensity => "darkenintensity",
            ComposeOperator::Difference => "difference",
            ComposeOperator::Displace => "displace",
            ComposeOperator::Dissolve => "dissolve",
            ComposeOperator::Distort => "distort",
            ComposeOperator::DivideDst => "dividedst",
            ComposeOperator::DivideSrc => "dividesrc",
            ComposeOperator::DstAtop => "dstatop",
            ComposeOperator::Dst => "dst",
            ComposeOperator::DstIn => "dstin",
            ComposeOperator::DstOut => "dstout",
            ComposeOperator::DstOver => "dstover",
            ComposeOperator::Exclusion => "exclusion",
            ComposeOperator::Freeze => "freeze",
            ComposeOperator::HardLight => "hardlight",
            ComposeOperator::HardMix => "hardmix",
            ComposeOperator::Hue => "hue",
            ComposeOperator::In => "in",
            ComposeOperator::Intensity => "intensity",
            ComposeOperator::Interpolate => "interpolate",
            ComposeOperator::LightenIntensity => "lightenintensity",
            ComposeOperator::Lighten => "lighten",
            ComposeOperator::LinearBurn => "linearburn",
            ComposeOperator::LinearDodge => "lineardodge",
            ComposeOperator::LinearLight => "linearlight",
            ComposeOperator::Luminize => "luminize",
            ComposeOperator::Mathematics => "mathematics",
            ComposeOperator::MinusDst => "minusdst",
            ComposeOperator::MinusSrc => "minussrc",
            ComposeOperator::Modulate => "modulate",
            ComposeOperator::ModulusAdd => "modulusadd",
            ComposeOperator::ModulusSubtract => "modulussubtract",
            ComposeOperator::Multiply => "multiply",
            ComposeOperator::Negate => "negate",
            ComposeOperator::NoOp => "none",
            ComposeOperator::Out => "out",
            ComposeOperator::Overlay => "overlay",
            ComposeOperator::Over => "over",
            ComposeOperator::PegtopLight => "pegtoplight",
            ComposeOperator::PinLight => "pinlight",
            ComposeOperator::Plus => "plus",
            ComposeOperator::Reflect => "reflect",
            ComposeOperator::Replace => "replace",
            ComposeOperator::Rmse => "rmse",
            ComposeOperator::Saturate => "saturate",
            ComposeOperator::Screen => "screen",
            ComposeOperator::SaliencyBlend => "saliencyblend",
            ComposeOperator::SeamlessBlend => "seamlessblend",
            ComposeOperator::SoftBurn => "softburn",
            ComposeOperator::SoftDodge => "softdodge",
            ComposeOperator::SoftLight => "softlight",
            ComposeOperator::SrcAtop => "srcatop",
            ComposeOperator::SrcIn => "srcin",
            ComposeOperator::SrcOut => "srcout",
            ComposeOperator::SrcOver => "srcover",
            ComposeOperator::Src => "src",
            ComposeOperator::Stamp => "stamp",
            ComposeOperator::Stereo => "stereo",
            ComposeOperator::VividLight => "vividlight",
            ComposeOperator::Xor => "xor",
            ComposeOperator::Threshold => "threshold",
        }
    }
}

/// An alpha channel operation (`alpha(MODE)`), by ImageMagick's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlphaMode {
    Undefined,
    Activate,
    Associate,
    Background,
    Copy,
    Deactivate,
    Discrete,
    Disassociate,
    Extract,
    Off,
    OffIfOpaque,
    On,
    Opaque,
    Remove,
    Set,
    Shape,
    Transparent,
}

impl AlphaMode {
    /// Every name ImageMagick accepts (lower-case, without `-` and `_`),
    /// deprecated spellings included, sorted for binary search.
    const NAMES: &[(&str, AlphaMode)] = &[
        ("activate", AlphaMode::Activate),
        ("associate", AlphaMode::Associate),
        ("background", AlphaMode::Background),
        ("copy", AlphaMode::Copy),
        ("deactivate", AlphaMode::Deactivate),
        ("disassociate", AlphaMode::Disassociate),
        ("discrete", AlphaMode::Discrete),
        ("extract", AlphaMode::Extract),
        ("off", AlphaMode::Off),
        ("offifopaque", AlphaMode::OffIfOpaque),
        ("on", AlphaMode::On),
        ("opaque", AlphaMode::Opaque),
        ("remove", AlphaMode::Remove),
        ("reset", AlphaMode::Set),
        ("set", AlphaMode::Set),
        ("shape", AlphaMode::Shape),
        ("transparent", AlphaMode::Transparent),
        ("undefined", AlphaMode::Undefined),
    ];

    pub fn parse(word: &str) -> Option<Self> {
        lookup(Self::NAMES, word)
    }

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            AlphaMode::Undefined => "undefined",
            AlphaMode::Activate => "activate",
            AlphaMode::Associate => "associate",
            AlphaMode::Background => "background",
            AlphaMode::Copy => "copy",
            AlphaMode::Deactivate => "deactivate",
            AlphaMode::Discrete => "discrete",
            AlphaMode::Disassociate => "disassociate",
            AlphaMode::Extract => "extract",
            AlphaMode::Off => "off",
            AlphaMode::OffIfOpaque => "offifopaque",
            AlphaMode::On => "on",
            AlphaMode::Opaque => "opaque",
            AlphaMode::Remove => "remove",
            AlphaMode::Set => "set",
            AlphaMode::Shape => "shape",
            AlphaMode::Transparent => "transparent",
        }
    }
}

/// A colour space (`colorspace(CS)`), by ImageMagick's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorspaceName {
    Undefined,
    Adobe98,
    CIELab,
    Cmy,
    Cmyk,
    DisplayP3,
    Gray,
    Hcl,
    HCLp,
    Hsb,
    Hsi,
    Hsl,
    Hsv,
    Hwb,
    Jzazbz,
    Lch,
    LCHab,
    LCHuv,
    LinearGray,
    Lms,
    Log,
    Luv,
    Ohta,
    Oklab,
    Oklch,
    ProPhoto,
    Rec601YCbCr,
    Rec709YCbCr,
    Rgb,
    ScRGB,
    Srgb,
    Transparent,
    XyY,
    Xyz,
    YCbCr,
    YDbDr,
    Ycc,
    Yiq,
    YPbPr,
    Yuv,
}

impl ColorspaceName {
    /// Every name ImageMagick accepts (lower-case, without `-` and `_`),
    /// deprecated spellings included, sorted for binary search.
    const NAMES: &[(&str, ColorspaceName)] = &[
        ("adobe98", ColorspaceName::Adobe98),
        ("cielab", ColorspaceName::CIELab),
        ("cmy", ColorspaceName::Cmy),
        ("cmyk", ColorspaceName::Cmyk),
        ("displayp3", ColorspaceName::DisplayP3),
        ("gray", ColorspaceName::Gray),
        ("hcl", ColorspaceName::Hcl),
        ("hclp", ColorspaceName::HCLp),
        ("hsb", ColorspaceName::Hsb),
        ("hsi", ColorspaceName::Hsi),
        ("hsl", ColorspaceName::Hsl),
        ("hsv", ColorspaceName::Hsv),
        ("hwb", ColorspaceName::Hwb),
        ("jzazbz", ColorspaceName::Jzazbz),
        ("lab", ColorspaceName::CIELab),
        ("lch", ColorspaceName::Lch),
        ("lchab", ColorspaceName::LCHab),
        ("lchuv", ColorspaceName::LCHuv),
        ("lineargray", ColorspaceName::LinearGray),
        ("lms", ColorspaceName::Lms),
        ("log", ColorspaceName::Log),
        ("luv", ColorspaceName::Luv),
        ("ohta", ColorspaceName::Ohta),
        ("oklab", ColorspaceName::Oklab),
        ("oklch", ColorspaceName::Oklch),
        ("prophoto", ColorspaceName::ProPhoto),
        ("rec601ycbcr", ColorspaceName::Rec601YCbCr),
        ("rec709ycbcr", ColorspaceName::Rec709YCbCr),
        ("rgb", ColorspaceName::Rgb),
        ("scrgb", ColorspaceName::ScRGB),
        ("srgb", ColorspaceName::Srgb),
        ("transparent", ColorspaceName::Transparent),
        ("undefined", ColorspaceName::Undefined),
        ("xyy", ColorspaceName::XyY),
        ("xyz", ColorspaceName::Xyz),
        ("ycbcr", ColorspaceName::YCbCr),
        ("ycc", ColorspaceName::Ycc),
        ("ydbdr", ColorspaceName::YDbDr),
        ("yiq", ColorspaceName::Yiq),
        ("ypbpr", ColorspaceName::YPbPr),
        ("yuv", ColorspaceName::Yuv),
    ];

    pub fn parse(word: &str) -> Option<Self> {
        lookup(Self::NAMES, word)
    }

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            ColorspaceName::Undefined => "undefined",
            ColorspaceName::Adobe98 => "adobe98",
            ColorspaceName::CIELab => "cielab",
            ColorspaceName::Cmy => "cmy",
            ColorspaceName::Cmyk => "cmyk",
            ColorspaceName::DisplayP3 => "displayp3",
            ColorspaceName::Gray => "gray",
            ColorspaceName::Hcl => "hcl",
            ColorspaceName::HCLp => "hclp",
            ColorspaceName::Hsb => "hsb",
            ColorspaceName::Hsi => "hsi",
            ColorspaceName::Hsl => "hsl",
            ColorspaceName::Hsv => "hsv",
            ColorspaceName::Hwb => "hwb",
            ColorspaceName::Jzazbz => "jzazbz",
            ColorspaceName::Lch => "lch",
            ColorspaceName::LCHab => "lchab",
            ColorspaceName::LCHuv => "lchuv",
            ColorspaceName::LinearGray => "lineargray",
            ColorspaceName::Lms => "lms",
            ColorspaceName::Log => "log",
            ColorspaceName::Luv => "luv",
            ColorspaceName::Ohta => "ohta",
            ColorspaceName::Oklab => "oklab",
            ColorspaceName::Oklch => "oklch",
            ColorspaceName::ProPhoto => "prophoto",
            ColorspaceName::Rec601YCbCr => "rec601ycbcr",
            ColorspaceName::Rec709YCbCr => "rec709ycbcr",
            ColorspaceName::Rgb => "rgb",
            ColorspaceName::ScRGB => "scrgb",
            ColorspaceName::Srgb => "srgb",
            ColorspaceName::Transparent => "transparent",
            ColorspaceName::XyY => "xyy",
            ColorspaceName::Xyz => "xyz",
            ColorspaceName::YCbCr => "ycbcr",
            ColorspaceName::YDbDr => "ydbdr",
            ColorspaceName::Ycc => "ycc",
            ColorspaceName::Yiq => "yiq",
            ColorspaceName::YPbPr => "ypbpr",
            ColorspaceName::Yuv => "yuv",
        }
    }
}

/// A compression type (`compression(TYPE)`), by ImageMagick's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionName {
    Undefined,
    B44a,
    B44,
    BZip,
    Dwaa,
    Dwab,
    Dxt1,
    Dxt3,
    Dxt5,
    Bc7,
    Fax,
    Group4,
    Jbig1,
    Jbig2,
    Jpeg2000,
    Jpeg,
    Lerc,
    LosslessJPEG,
    Lzma,
    Lzw,
    Uncompressed,
    Piz,
    Pxr24,
    Rle,
    WebP,
    ZipS,
    Zip,
    Zstd,
}

impl CompressionName {
    /// Every name ImageMagick accepts (lower-case, without `-` and `_`),
    /// deprecated spellings included, sorted for binary search.
    const NAMES: &[(&str, CompressionName)] = &[
        ("b44", CompressionName::B44),
        ("b44a", CompressionName::B44a),
        ("bc7", CompressionName::Bc7),
        ("bzip", CompressionName::BZip),
        ("dwaa", CompressionName::Dwaa),
        ("dwab", CompressionName::Dwab),
        ("dxt1", CompressionName::Dxt1),
        ("dxt3", CompressionName::Dxt3),
        ("dxt5", CompressionName::Dxt5),
        ("fax", CompressionName::Fax),
        ("group4", CompressionName::Group4),
        ("jbig1", CompressionName::Jbig1),
        ("jbig2", CompressionName::Jbig2),
        ("jpeg", CompressionName::Jpeg),
        ("jpeg2000", CompressionName::Jpeg2000),
        ("lerc", CompressionName::Lerc),
        ("lossless", CompressionName::LosslessJPEG),
        ("losslessjpeg", CompressionName::LosslessJPEG),
        ("lzma", CompressionName::Lzma),
        ("lzw", CompressionName::Lzw),
        ("no", CompressionName::Uncompressed),
        ("none", CompressionName::Uncompressed),
        ("piz", CompressionName::Piz),
        ("pxr24", CompressionName::Pxr24),
        ("rle", CompressionName::Rle),
        ("runlengthencoded", CompressionName::Rle),
        ("undefined", CompressionName::Undefined),
        ("webp", CompressionName::WebP),
        ("zip", CompressionName::Zip),
        ("zips", CompressionName::ZipS),
        ("zstd", CompressionName::Zstd),
    ];

    pub fn parse(word: &str) -> Option<Self> {
        lookup(Self::NAMES, word)
    }

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            CompressionName::Undefined => "undefined",
            CompressionName::B44a => "b44a",
            CompressionName::B44 => "b44",
            CompressionName::BZip => "bzip",
            CompressionName::Dwaa => "dwaa",
            CompressionName::Dwab => "dwab",
            CompressionName::Dxt1 => "dxt1",
            CompressionName::Dxt3 => "dxt3",
            CompressionName::Dxt5 => "dxt5",
            CompressionName::Bc7 => "bc7",
            CompressionName::Fax => "fax",
            CompressionName::Group4 => "group4",
            CompressionName::Jbig1 => "jbig1",
            CompressionName::Jbig2 => "jbig2",
            CompressionName::Jpeg2000 => "jpeg2000",
            CompressionName::Jpeg => "jpeg",
            CompressionName::Lerc => "lerc",
            CompressionName::LosslessJPEG => "losslessjpeg",
            CompressionName::Lzma => "lzma",
            CompressionName::Lzw => "lzw",
            CompressionName::Uncompressed => "none",
            CompressionName::Piz => "piz",
            CompressionName::Pxr24 => "pxr24",
            CompressionName::Rle => "rle",
            CompressionName::WebP => "webp",
            CompressionName::ZipS => "zips",
            CompressionName::Zip => "zip",
            CompressionName::Zstd => "zstd",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_tables_are_sorted_and_every_variant_round_trips() {
        fn check<T: Copy + PartialEq + std::fmt::Debug>(table: &[(&str, T)], name: impl Fn(T) -> &'static str) {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "sorted for binary search");
            for (_, v) in table {
                assert_eq!(lookup(table, name(*v)), Some(*v), "{v:?}");
            }
        }
        check(ComposeOperator::NAMES, ComposeOperator::name);
        check(AlphaMode::NAMES, AlphaMode::name);
        check(ColorspaceName::NAMES, ColorspaceName::name);
        check(CompressionName::NAMES, CompressionName::name);
    }

    #[test]
    fn spellings_and_aliases_resolve() {
        assert_eq!(ComposeOperator::parse("soft-light"), Some(ComposeOperator::SoftLight));
        assert_eq!(ComposeOperator::parse("Dst_In"), Some(ComposeOperator::DstIn));
        assert_eq!(ComposeOperator::parse("add"), Some(ComposeOperator::ModulusAdd));
        assert_eq!(CompressionName::parse("no"), Some(CompressionName::Uncompressed));
        assert_eq!(CompressionName::parse("RunlengthEncoded"), Some(CompressionName::Rle));
        assert_eq!(ColorspaceName::parse("undefined"), Some(ColorspaceName::Undefined));
        assert_eq!(AlphaMode::parse("remove"), Some(AlphaMode::Remove));
        assert_eq!(ComposeOperator::parse("explode"), None);
    }
}
