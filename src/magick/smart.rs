//! Smart crop: where to place a crop window so it keeps what matters.
//!
//! The image is scaled down to at most `WORK_SIDE` pixels on its long side
//! and every pixel gets a saliency score: edge energy (detail: the subject
//! is usually sharper and busier than its background), skin tones (people)
//! and saturation (colourful objects against dull surroundings). The window
//! with the highest total wins, found exactly over every position with a
//! summed-area table; ties go to the position nearest the centre, so the
//! choice is deterministic for the same pixels and falls back to a centred
//! crop on a featureless image.

use super::wand::{Wand, WandError};
use crate::pipeline::ops::Size;
use magick_rust::bindings as im;

/// The long side of the copy the scores are computed on.
const WORK_SIDE: u32 = 160;

const EDGE_WEIGHT: f64 = 4.0;
const SKIN_WEIGHT: f64 = 0.6;
const SATURATION_WEIGHT: f64 = 0.25;

/// Offset of a `window` inside the wand's current image, chosen by saliency.
pub fn window(wand: &Wand, window: Size) -> Result<(u32, u32), WandError> {
    let full = wand.size();
    if window.width >= full.width && window.height >= full.height {
        return Ok((0, 0));
    }
    let scale = (f64::from(WORK_SIDE) / f64::from(full.width.max(full.height))).min(1.0);
    let small = Size::new(
        ((f64::from(full.width) * scale).round() as u32).max(1),
        ((f64::from(full.height) * scale).round() as u32).max(1),
    );
    let mut copy = wand.duplicate();
    if small != full {
        copy.resize(small, im::FilterType::Triangle)?;
    }
    let rgba = copy.export_rgba8()?;
    drop(copy);
    let scores = saliency(&rgba, small.width as usize, small.height as usize);
    let win = (
        ((f64::from(window.width) * scale).round() as usize).clamp(1, small.width as usize),
        ((f64::from(window.height) * scale).round() as usize).clamp(1, small.height as usize),
    );
    let (bx, by) = best_window(&scores, small.width as usize, small.height as usize, win);
    let place = |b: usize, room: u32| ((b as f64 / scale).round() as u32).min(room);
    Ok((
        place(bx, full.width.saturating_sub(window.width)),
        place(by, full.height.saturating_sub(window.height)),
    ))
}

/// Per-pixel saliency of 8-bit RGBA pixels.
pub fn saliency(rgba: &[u8], width: usize, height: usize) -> Vec<f64> {
    let luma: Vec<f64> = rgba
        .chunks_exact(4)
        .map(|p| (0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])) / 255.0)
        .collect();
    let mut out = vec![0.0; width * height];
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let p = &rgba[i * 4..i * 4 + 4];
            let alpha = f64::from(p[3]) / 255.0;
            if alpha == 0.0 {
                continue;
            }
            let dx = if x > 0 && x + 1 < width {
                (luma[i + 1] - luma[i - 1]).abs()
            } else {
                0.0
            };
            let dy = if y > 0 && y + 1 < height {
                (luma[i + width] - luma[i - width]).abs()
            } else {
                0.0
            };
            let (r, g, b) = (f64::from(p[0]), f64::from(p[1]), f64::from(p[2]));
            let (max, min) = (r.max(g).max(b), r.min(g).min(b));
            let saturation = if max > 0.0 { (max - min) / max } else { 0.0 };
            let cb = 128.0 - 0.168_736 * r - 0.331_264 * g + 0.5 * b;
            let cr = 128.0 + 0.5 * r - 0.418_688 * g - 0.081_312 * b;
            let skin = (77.0..=127.0).contains(&cb) && (133.0..=173.0).contains(&cr) && luma[i] > 0.2;
            out[i] = alpha
                * (EDGE_WEIGHT * (dx + dy) + SATURATION_WEIGHT * saturation + if skin { SKIN_WEIGHT } else { 0.0 });
        }
    }
    out
}

/// The top-left corner of the `win`-sized window with the highest total
/// score; among equals, the one nearest the centre.
pub fn best_window(scores: &[f64], width: usize, height: usize, win: (usize, usize)) -> (usize, usize) {
    let (ww, wh) = (win.0.min(width), win.1.min(height));
    // Summed-area table with a zero row and column in front.
    let stride = width + 1;
    let mut sat = vec![0.0; stride * (height + 1)];
    for y in 0..height {
        let mut row = 0.0;
        for x in 0..width {
            row += scores[y * width + x];
            sat[(y + 1) * stride + x + 1] = sat[y * stride + x + 1] + row;
        }
    }
    let sum = |x: usize, y: usize| {
        sat[(y + wh) * stride + x + ww] - sat[y * stride + x + ww] - sat[(y + wh) * stride + x] + sat[y * stride + x]
    };
    let centre = ((width - ww) as f64 / 2.0, (height - wh) as f64 / 2.0);
    let distance = |x: usize, y: usize| (x as f64 - centre.0).powi(2) + (y as f64 - centre.1).powi(2);
    let mut best = (0, 0);
    let mut best_score = f64::NEG_INFINITY;
    for y in 0..=height - wh {
        for x in 0..=width - ww {
            let s = sum(x, y);
            // Scores are sums of floats: compare with a tolerance so equal
            // windows are equal whatever the summation order.
            let better =
                s > best_score + 1e-9 || ((s - best_score).abs() <= 1e-9 && distance(x, y) < distance(best.0, best.1));
            if better {
                best = (x, y);
                best_score = s;
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_featureless_image_is_cropped_in_the_centre() {
        let scores = vec![0.0; 40 * 10];
        assert_eq!(best_window(&scores, 40, 10, (10, 10)), (15, 0));
    }

    #[test]
    fn the_window_goes_where_the_detail_is() {
        let (w, h) = (60, 20);
        let mut rgba = vec![128u8; w * h * 4];
        // A checkerboard of 3-pixel squares on the right quarter, flat grey elsewhere.
        for y in 0..h {
            for x in 45..w {
                let v = if (x / 3 + y / 3) % 2 == 0 { 250 } else { 5 };
                let i = (y * w + x) * 4;
                rgba[i..i + 3].copy_from_slice(&[v, v, v]);
            }
        }
        let scores = saliency(&rgba, w, h);
        let (x, _) = best_window(&scores, w, h, (20, 20));
        assert!(x >= 40, "the window covers the detailed part: x = {x}");
    }
}
