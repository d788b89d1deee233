//! PNG in: an 8-bit RGB or gray PNG (interlaced or not) carrying nothing but
//! its pixels (IHDR, IDAT, IEND, and an orNT chunk saying "top-left": no
//! colour, resolution, other orientation, text or transparency chunk, each
//! of which ImageMagick would act on or write back),
//! decoded whole by libpng, resized and cropped as the JPEG path does, and
//! written as PNG with ImageMagick's writer settings (`png.c`) or as WebP.
//! A gray PNG stays a gray PNG (to WebP it goes to ImageMagick). After the resize, colour pixels that are all gray
//! or have 256 colours or fewer go back to ImageMagick, whose writer picks a
//! gray or palette PNG for them.

use super::{Declined, area, codec, orient, placement, rendered, resize, resize_filter};
use crate::pipeline::format::ImageFormat;
use crate::pipeline::ops::{Dpi, Op, Size};
use crate::render::budget;
use crate::render::{Job, JobError, Rendered};

/// The size and component count (3 RGB, 1 gray) of a PNG the fast path
/// reproduces, or why it does not.
fn vet(bytes: &[u8]) -> Result<(Size, u32), Declined> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut rest = bytes.strip_prefix(SIGNATURE).ok_or("not a PNG")?;
    let mut size = None;
    let mut idat = false;
    loop {
        let (Some(len), Some(kind)) = (rest.get(..4), rest.get(4..8)) else {
            return Err("a truncated PNG (ImageMagick words it)");
        };
        let len = u32::from_be_bytes(len.try_into().expect("4 bytes")) as usize;
        let Some(data) = rest.get(8..8 + len) else {
            return Err("a truncated PNG (ImageMagick words it)");
        };
        match kind {
            b"IHDR" if size.is_none() && len == 13 => {
                let be = |at: usize| u32::from_be_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                // Bit depth 8, colour type 2 (RGB) or 0 (gray), deflate,
                // adaptive filtering, any interlace.
                let components = match data[8..12] {
                    [8, 2, 0, 0] => 3,
                    [8, 0, 0, 0] => 1,
                    _ => return Err("a PNG other than 8-bit RGB or gray"),
                };
                if data[12] > 1 {
                    return Err("an unknown PNG interlace method");
                }
                size = Some((Size::new(be(0), be(4)), components));
            }
            // ImageMagick writes orNT; "top-left" changes nothing.
            b"orNT" if size.is_some() && !idat && data == [1] => {}
            b"IDAT" if size.is_some() => idat = true,
            b"IEND" if idat => break,
            _ if size.is_none() => return Err("a PNG without IHDR first (ImageMagick words it)"),
            _ => return Err("a PNG chunk ImageMagick would act on or write back"),
        }
        rest = rest.get(12 + len..).unwrap_or_default();
    }
    size.ok_or("no IHDR")
}

pub(super) fn render(
    job: &Job,
    bytes: &[u8],
    op: Option<&Op>,
    out_format: ImageFormat,
) -> Result<Result<Rendered, JobError>, Declined> {
    let output = &job.plan.output;
    if out_format == ImageFormat::Png && (output.interlace || output.depth_for(ImageFormat::Png) != 8) {
        return Err("an interlaced or 16-bit PNG out");
    }
    let (stored, components) = vet(bytes)?;
    if components == 1 && out_format != ImageFormat::Png {
        // Gray sources here are mostly text and line art, where the two
        // resizers' ringing differs most (0.46 dB in a lossy WebP, above the
        // stated bound): ImageMagick's.
        return Err("a gray PNG to a lossy format");
    }
    let limits = &job.limits;
    if let Err(e) = crate::render::check_limits(stored, 1, limits) {
        return Ok(Err(e));
    }
    // No pHYs: the resolution is ImageMagick's default.
    let op = op.map(|op| op.in_pixels(Dpi::DEFAULT));
    let (target, crop) = placement(op.as_ref(), stored);
    if let Some(op) = &op
        && let Err(e) = crate::render::check_result_area(op.output_size(stored), op, limits)
    {
        return Ok(Err(e));
    }
    if target.width > stored.width || target.height > stored.height {
        return Err("enlarging");
    }
    let need = (area(stored) + 2 * area(target)) * u64::from(components);
    let _grant = match budget::reserve_for_job(need, job.deadline) {
        Ok(grant) => grant,
        Err(e) => return Ok(Err(e)),
    };

    let mut pixels = vec![0u8; (area(stored) * u64::from(components)) as usize];
    match codec::decode_png(bytes, stored.width, stored.height, components, &mut pixels) {
        Ok(0) => {}
        // Damage libpng recovered from, or could not: ImageMagick's handling
        // (and wording) is the service's.
        Ok(_) => return Err("libpng warned while decoding"),
        Err(_) => return Err("libpng could not decode it"),
    }
    if std::time::Instant::now() >= job.deadline {
        return Ok(Err(JobError::Deadline));
    }
    let (mut pixels, mut size) = if target != stored {
        match resize(pixels, stored, target, components, resize_filter(op.as_ref())) {
            Ok(p) => (p, target),
            Err(e) => return Ok(Err(JobError::Failed(e))),
        }
    } else {
        (pixels, stored)
    };
    if let Some(((x, y), to)) = crop
        && to != size
    {
        pixels = orient::crop(&pixels, size, components, x, y, to);
        size = to;
    }
    let encoded = match out_format {
        ImageFormat::Png => {
            if components == 3 && super::all_gray(&pixels) {
                return Err("gray pixels (ImageMagick writes a gray PNG)");
            }
            if components == 1 && pixels.iter().all(|v| v % 17 == 0) {
                return Err("gray levels that fit 4 bits (ImageMagick writes a 4-, 2- or 1-bit PNG)");
            }
            if components == 3 && few_colours(&pixels) {
                return Err("256 colours or fewer (ImageMagick writes a palette PNG)");
            }
            // ImageMagick records the orientation its auto-orient step set
            // (top-left) in an orNT chunk.
            codec::encode_png(
                &pixels,
                size.width,
                size.height,
                components,
                output.auto_orient.then_some(1),
            )
        }
        ImageFormat::Webp => codec::encode_webp(&pixels, size.width, size.height, output.quality),
        _ => unreachable!("checked by the caller"),
    };
    Ok(rendered(encoded, out_format, size))
}

/// Whether RGB pixels have 256 distinct colours or fewer (stops at 257).
fn few_colours(rgb: &[u8]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(257);
    for p in rgb.chunks_exact(3) {
        seen.insert([p[0], p[1], p[2]]);
        if seen.len() > 256 {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(kind: &[u8], data: &[u8]) -> Vec<u8> {
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&[0; 4]); // CRC: libpng checks it, not `vet`
        out
    }

    fn png(ihdr_tail: [u8; 5], extra: &[u8]) -> Vec<u8> {
        png_with(ihdr_tail, extra, b"x")
    }

    fn png_with(ihdr_tail: [u8; 5], extra: &[u8], extra_data: &[u8]) -> Vec<u8> {
        let mut ihdr = 640u32.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&480u32.to_be_bytes());
        ihdr.extend_from_slice(&ihdr_tail);
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        out.extend(chunk(b"IHDR", &ihdr));
        out.extend(chunk(extra, extra_data));
        out.extend(chunk(b"IDAT", b"zz"));
        out.extend(chunk(b"IEND", b""));
        out
    }

    #[test]
    fn only_plain_8_bit_rgb_pngs_are_taken() {
        assert_eq!(vet(&png([8, 2, 0, 0, 1], b"IDAT")), Ok((Size::new(640, 480), 3)));
        assert_eq!(vet(&png([8, 0, 0, 0, 0], b"IDAT")), Ok((Size::new(640, 480), 1)));
        assert!(vet(&png([8, 6, 0, 0, 0], b"IDAT")).is_err(), "RGBA");
        assert!(vet(&png([8, 4, 0, 0, 0], b"IDAT")).is_err(), "gray and alpha");
        assert!(vet(&png([16, 2, 0, 0, 0], b"IDAT")).is_err(), "16-bit");
        assert!(vet(&png([8, 3, 0, 0, 0], b"PLTE")).is_err(), "palette");
        for kind in [
            b"gAMA", b"iCCP", b"sRGB", b"pHYs", b"eXIf", b"tRNS", b"tEXt", b"orNT", b"acTL",
        ] {
            assert!(
                vet(&png([8, 2, 0, 0, 0], kind)).is_err(),
                "{}",
                String::from_utf8_lossy(kind)
            );
        }
        assert!(vet(&png_with([8, 2, 0, 0, 0], b"orNT", &[1])).is_ok(), "orNT top-left");
        assert!(vet(&png_with([8, 2, 0, 0, 0], b"orNT", &[6])).is_err(), "orNT rotated");
        let whole = png([8, 2, 0, 0, 0], b"IDAT");
        assert!(vet(&whole[..whole.len() - 13]).is_err(), "no IEND");
    }
}
