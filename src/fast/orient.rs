//! EXIF orientation and crops on packed 8-bit pixels (1 or 3 components).

use crate::pipeline::ops::Size;

/// The pixels turned upright for EXIF `orientation` (1-8), and their size.
pub fn apply(pixels: &[u8], size: Size, components: u32, orientation: u16) -> (Vec<u8>, Size) {
    let (w, h, c) = (size.width as usize, size.height as usize, components as usize);
    let swaps = (5..=8).contains(&orientation);
    let out_size = if swaps {
        Size::new(size.height, size.width)
    } else {
        size
    };
    let (ow, oh) = (out_size.width as usize, out_size.height as usize);
    let mut out = vec![0u8; pixels.len()];
    for y in 0..oh {
        for x in 0..ow {
            // Where the displayed pixel (x, y) is stored.
            let (sx, sy) = match orientation {
                2 => (w - 1 - x, y),
                3 => (w - 1 - x, h - 1 - y),
                4 => (x, h - 1 - y),
                5 => (y, x),
                6 => (y, h - 1 - x),
                7 => (w - 1 - y, h - 1 - x),
                8 => (w - 1 - y, x),
                _ => (x, y),
            };
            let from = (sy * w + sx) * c;
            let to = (y * ow + x) * c;
            out[to..to + c].copy_from_slice(&pixels[from..from + c]);
        }
    }
    (out, out_size)
}

/// The `to`-sized window at (x, y), clipped to the image.
pub fn crop(pixels: &[u8], size: Size, components: u32, x: u32, y: u32, to: Size) -> Vec<u8> {
    let c = components as usize;
    let x = x.min(size.width) as usize;
    let y = y.min(size.height) as usize;
    let w = (to.width as usize).min(size.width as usize - x);
    let h = (to.height as usize).min(size.height as usize - y);
    let stride = size.width as usize * c;
    let mut out = Vec::with_capacity(w * h * c);
    for row in y..y + h {
        let start = row * stride + x * c;
        out.extend_from_slice(&pixels[start..start + w * c]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3x2 image whose pixels are their own indexes, one component.
    fn grid() -> Vec<u8> {
        vec![0, 1, 2, 3, 4, 5]
    }

    #[test]
    fn every_orientation_puts_the_top_left_pixel_where_exif_says() {
        let size = Size::new(3, 2);
        // Stored:  0 1 2      Orientation 6 (rotate 90 clockwise to display):
        //          3 4 5      3 0 / 4 1 / 5 2
        let cases: [(u16, &[u8], (u32, u32)); 8] = [
            (1, &[0, 1, 2, 3, 4, 5], (3, 2)),
            (2, &[2, 1, 0, 5, 4, 3], (3, 2)),
            (3, &[5, 4, 3, 2, 1, 0], (3, 2)),
            (4, &[3, 4, 5, 0, 1, 2], (3, 2)),
            (5, &[0, 3, 1, 4, 2, 5], (2, 3)),
            (6, &[3, 0, 4, 1, 5, 2], (2, 3)),
            (7, &[5, 2, 4, 1, 3, 0], (2, 3)),
            (8, &[2, 5, 1, 4, 0, 3], (2, 3)),
        ];
        for (orientation, expected, (w, h)) in cases {
            let (out, out_size) = apply(&grid(), size, 1, orientation);
            assert_eq!(out, expected, "orientation {orientation}");
            assert_eq!(out_size, Size::new(w, h), "orientation {orientation}");
        }
    }

    #[test]
    fn crops_are_clipped_to_the_image() {
        let size = Size::new(3, 2);
        assert_eq!(crop(&grid(), size, 1, 1, 0, Size::new(2, 2)), [1, 2, 4, 5]);
        assert_eq!(crop(&grid(), size, 1, 2, 1, Size::new(5, 5)), [5]);
    }
}
