//! Image formats: recognised from magic bytes only (never from a name or a
//! Content-Type), with their MIME type and ImageMagick coder name.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    Gif,
    Webp,
    Tiff,
    Avif,
    Heic,
}

impl ImageFormat {
    pub const ALL: [ImageFormat; 7] = [
        ImageFormat::Jpeg,
        ImageFormat::Png,
        ImageFormat::Gif,
        ImageFormat::Webp,
        ImageFormat::Tiff,
        ImageFormat::Avif,
        ImageFormat::Heic,
    ];

    /// Recognises a format from the first bytes of a file.
    pub fn sniff(bytes: &[u8]) -> Option<ImageFormat> {
        match bytes {
            [0xFF, 0xD8, 0xFF, ..] => Some(ImageFormat::Jpeg),
            [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, ..] => Some(ImageFormat::Png),
            [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some(ImageFormat::Gif),
            [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(ImageFormat::Webp),
            [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => Some(ImageFormat::Tiff),
            [_, _, _, _, b'f', b't', b'y', b'p', brand @ ..] if brand.len() >= 4 => match &brand[..4] {
                b"avif" | b"avis" => Some(ImageFormat::Avif),
                b"heic" | b"heix" | b"heim" | b"heis" | b"hevc" | b"hevx" | b"mif1" | b"msf1" => {
                    Some(ImageFormat::Heic)
                }
                _ => None,
            },
            _ => None,
        }
    }

    pub fn parse(name: &str) -> Option<ImageFormat> {
        match name.to_ascii_lowercase().as_str() {
            "jpeg" | "jpg" => Some(ImageFormat::Jpeg),
            "png" => Some(ImageFormat::Png),
            "gif" => Some(ImageFormat::Gif),
            "webp" => Some(ImageFormat::Webp),
            "tiff" | "tif" => Some(ImageFormat::Tiff),
            "avif" => Some(ImageFormat::Avif),
            "heic" | "heif" => Some(ImageFormat::Heic),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "jpeg",
            ImageFormat::Png => "png",
            ImageFormat::Gif => "gif",
            ImageFormat::Webp => "webp",
            ImageFormat::Tiff => "tiff",
            ImageFormat::Avif => "avif",
            ImageFormat::Heic => "heic",
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Png => "image/png",
            ImageFormat::Gif => "image/gif",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Tiff => "image/tiff",
            ImageFormat::Avif => "image/avif",
            ImageFormat::Heic => "image/heic",
        }
    }

    /// The ImageMagick coder that reads and writes this format.
    pub fn coder(self) -> &'static str {
        match self {
            ImageFormat::Jpeg => "JPEG",
            ImageFormat::Png => "PNG",
            ImageFormat::Gif => "GIF",
            ImageFormat::Webp => "WEBP",
            ImageFormat::Tiff => "TIFF",
            ImageFormat::Avif => "AVIF",
            ImageFormat::Heic => "HEIC",
        }
    }

    /// Whether the format can carry an alpha channel.
    pub fn has_alpha(self) -> bool {
        !matches!(self, ImageFormat::Jpeg)
    }
}

/// The output of `format(auto)`: the best of AVIF and WebP (those in
/// `allowed`, the `auto_formats` setting) and `fallback` by the `Accept`
/// header's q-values. AVIF and WebP are chosen only when the client names
/// them (a `*/*` from a tool that decodes nothing modern must still get
/// JPEG), never at q=0; the fallback also counts `image/*` and `*/*`. Ties
/// go to AVIF, then WebP, then the fallback.
pub fn negotiate(accept: &str, fallback: ImageFormat, allowed: &[ImageFormat]) -> ImageFormat {
    let ranges: Vec<(String, f32)> = accept
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.split(';');
            let range = pieces.next()?.trim().to_ascii_lowercase();
            let q = pieces
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|v| v.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (!range.is_empty()).then_some((range, q.clamp(0.0, 1.0)))
        })
        .collect();
    let exact = |mime: &str| ranges.iter().find(|(r, _)| r == mime).map(|(_, q)| *q);
    let fallback_q = exact(fallback.mime())
        .or_else(|| exact("image/*"))
        .or_else(|| exact("*/*"))
        .unwrap_or(0.0);
    let mut best = (fallback, fallback_q);
    for candidate in [ImageFormat::Webp, ImageFormat::Avif] {
        if !allowed.contains(&candidate) {
            continue;
        }
        let q = exact(candidate.mime()).unwrap_or(0.0);
        if q > 0.0 && q >= best.1 {
            best = (candidate, q);
        }
    }
    best.0
}

/// The width and height a file's header declares, read without decoding (a
/// few hundred bytes at most). `None` when the header cannot be read.
pub fn header_dimensions(bytes: &[u8]) -> Option<(u32, u32)> {
    let size = imagesize::blob_size(bytes).ok()?;
    Some((u32::try_from(size.width).ok()?, u32::try_from(size.height).ok()?))
}

/// Checks declared dimensions against limits; the message names the problem.
pub fn check_dimensions(
    width: u32,
    height: u32,
    max_width: u32,
    max_height: u32,
    max_pixels: u64,
) -> Result<(), String> {
    if width > max_width || height > max_height {
        return Err(format!(
            "image is {width}x{height}, larger than the {max_width}x{max_height} limit"
        ));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(format!("image has {pixels} pixels, more than the {max_pixels} limit"));
    }
    Ok(())
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_each_supported_format_from_magic_bytes() {
        assert_eq!(
            ImageFormat::sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"),
            Some(ImageFormat::Jpeg)
        );
        assert_eq!(ImageFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0"), Some(ImageFormat::Png));
        assert_eq!(ImageFormat::sniff(b"GIF89a\x01\0"), Some(ImageFormat::Gif));
        assert_eq!(ImageFormat::sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(ImageFormat::Webp));
        assert_eq!(ImageFormat::sniff(b"II*\0\x08\0\0\0"), Some(ImageFormat::Tiff));
        assert_eq!(ImageFormat::sniff(b"MM\0*\0\0\0\x08"), Some(ImageFormat::Tiff));
        assert_eq!(ImageFormat::sniff(b"\0\0\0\x1cftypavif\0\0"), Some(ImageFormat::Avif));
        assert_eq!(ImageFormat::sniff(b"\0\0\0\x18ftypheic\0\0"), Some(ImageFormat::Heic));
    }

    #[test]
    fn header_dimensions_need_no_decode_and_limits_name_the_problem() {
        // A PNG signature and IHDR declaring 100000 x 70000.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&100_000u32.to_be_bytes());
        png.extend_from_slice(&70_000u32.to_be_bytes());
        png.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(header_dimensions(&png), Some((100_000, 70_000)));
        assert!(
            check_dimensions(100_000, 70_000, 16_384, 16_384, 50_000_000)
                .unwrap_err()
                .contains("100000x70000")
        );
        assert!(
            check_dimensions(10_000, 10_000, 16_384, 16_384, 50_000_000)
                .unwrap_err()
                .contains("pixels")
        );
        assert!(check_dimensions(4_000, 3_000, 16_384, 16_384, 50_000_000).is_ok());
        assert_eq!(header_dimensions(b"\xFF\xD8\xFF"), None);
    }

    #[test]
    fn format_auto_follows_accept_and_its_q_values() {
        use ImageFormat::*;
        const BOTH: &[ImageFormat] = &[Avif, Webp];
        assert_eq!(negotiate("image/avif,image/webp,*/*", Jpeg, BOTH), Avif);
        assert_eq!(
            negotiate("image/avif,image/webp,*/*", Jpeg, &[Webp]),
            Webp,
            "auto_formats without AVIF"
        );
        assert_eq!(negotiate("image/avif,image/webp,*/*", Jpeg, &[]), Jpeg);
        assert_eq!(negotiate("image/webp,*/*;q=0.8", Jpeg, BOTH), Webp);
        assert_eq!(
            negotiate("image/avif;q=0.5,image/webp;q=0.9,*/*;q=0.1", Jpeg, BOTH),
            Webp
        );
        assert_eq!(negotiate("image/avif;q=0,image/webp;q=0,image/*", Png, BOTH), Png);
        assert_eq!(negotiate("image/*", Jpeg, BOTH), Jpeg, "modern formats only when named");
        assert_eq!(negotiate("*/*", Png, BOTH), Png);
        assert_eq!(
            negotiate("image/avif;q=0.4,image/*;q=0.9", Jpeg, BOTH),
            Jpeg,
            "q-values decide"
        );
        assert_eq!(
            negotiate("text/html", Jpeg, BOTH),
            Jpeg,
            "nothing acceptable: the fallback"
        );
        assert_eq!(negotiate("", Jpeg, BOTH), Jpeg);
        assert_eq!(negotiate("image/jpeg,image/png", Jpeg, BOTH), Jpeg);
    }

    #[test]
    fn refuses_what_is_not_an_allowed_image() {
        assert_eq!(ImageFormat::sniff(b""), None);
        assert_eq!(ImageFormat::sniff(b"\xFF\xD8"), None);
        assert_eq!(ImageFormat::sniff(b"%!PS-Adobe-3.0"), None);
        assert_eq!(ImageFormat::sniff(b"<svg xmlns="), None);
        assert_eq!(ImageFormat::sniff(b"push graphic-context"), None);
        assert_eq!(ImageFormat::sniff(b"\0\0\0\x18ftypmp42\0\0"), None);
        assert_eq!(ImageFormat::sniff(b"BM\x36\0"), None, "BMP is not on the allow list");
    }
}
