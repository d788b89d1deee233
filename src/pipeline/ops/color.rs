//! Colours as arguments (`bg(navy)`, `rotate(30,'#00000080')`), parsed into
//! an RGBA value at the edge: ImageMagick's names, `#rgb[a]`,
//! `#rrggbb[aa]`, `#rrrrggggbbbb[aaaa]`, `rgb()`/`rgba()`/`srgb()`/`srgba()`
//! (0-255 or percentages, alpha 0-1 or a percentage), `gray()`/`graya()` and
//! `hsl()`/`hsla()`. Anything else is refused, naming the argument. The
//! canonical form is `#rrggbbaa`, so `red` and `#ff0000` are one cache key.

use super::color_names::NAMES;
use std::fmt;

/// An sRGB colour with alpha, 8 bits a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Color(pub [u8; 4]);

impl Color {
    pub const WHITE: Color = Color([255, 255, 255, 255]);

    pub fn parse(text: &str) -> Option<Color> {
        let t: String = text.trim().to_ascii_lowercase().chars().filter(|c| *c != ' ').collect();
        if t.len() > 64 {
            return None;
        }
        if let Some(hex) = t.strip_prefix('#') {
            return hex_color(hex);
        }
        if let Some((name, rest)) = t.split_once('(') {
            let args: Vec<&str> = rest.strip_suffix(')')?.split(',').collect();
            return function_color(name, &args);
        }
        NAMES
            .binary_search_by(|(name, _)| (*name).cmp(t.as_str()))
            .ok()
            .map(|i| Color(NAMES[i].1))
    }
}

fn hex_color(hex: &str) -> Option<Color> {
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits: Vec<u32> = hex.chars().filter_map(|c| c.to_digit(16)).collect();
    let (width, channels) = match digits.len() {
        3 => (1, 3),
        4 => (1, 4),
        6 => (2, 3),
        8 => (2, 4),
        12 => (4, 3),
        16 => (4, 4),
        _ => return None,
    };
    let mut rgba = [255u8; 4];
    for (i, chunk) in digits.chunks(width).take(channels).enumerate() {
        let value = chunk.iter().fold(0u32, |v, d| v * 16 + d);
        let max = 16u32.pow(width as u32) - 1;
        rgba[i] = ((value as f64) * 255.0 / max as f64).round() as u8;
    }
    Some(Color(rgba))
}

/// A channel: 0-255, or a percentage of 255.
fn channel(s: &str) -> Option<f64> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().ok()? * 255.0 / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (v.is_finite() && (0.0..=255.0).contains(&v)).then_some(v)
}

/// Alpha: 0-1, or a percentage.
fn alpha(s: &str) -> Option<f64> {
    let v = match s.strip_suffix('%') {
        Some(p) => p.parse::<f64>().ok()? / 100.0,
        None => s.parse::<f64>().ok()?,
    };
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v * 255.0)
}

fn percent(s: &str) -> Option<f64> {
    let v = s.strip_suffix('%')?.parse::<f64>().ok()? / 100.0;
    (v.is_finite() && (0.0..=1.0).contains(&v)).then_some(v)
}

fn function_color(name: &str, args: &[&str]) -> Option<Color> {
    let byte = |v: f64| v.round().clamp(0.0, 255.0) as u8;
    match (name, args) {
        ("rgb" | "srgb", [r, g, b]) => Some(Color([byte(channel(r)?), byte(channel(g)?), byte(channel(b)?), 255])),
        ("rgba" | "srgba", [r, g, b, a]) => Some(Color([
            byte(channel(r)?),
            byte(channel(g)?),
            byte(channel(b)?),
            byte(alpha(a)?),
        ])),
        ("gray" | "grey", [v]) => {
            let v = byte(channel(v)?);
            Some(Color([v, v, v, 255]))
        }
        ("graya" | "greya", [v, a]) => {
            let v = byte(channel(v)?);
            Some(Color([v, v, v, byte(alpha(a)?)]))
        }
        ("hsl", [h, s, l]) => hsl(h, s, l, 255.0),
        ("hsla", [h, s, l, a]) => hsl(h, s, l, alpha(a)?),
        _ => None,
    }
}

fn hsl(h: &str, s: &str, l: &str, a: f64) -> Option<Color> {
    let h = h.parse::<f64>().ok().filter(|h| h.is_finite())?.rem_euclid(360.0) / 60.0;
    let (s, l) = (percent(s)?, percent(l)?);
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - (h % 2.0 - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = l - c / 2.0;
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Some(Color([byte(r), byte(g), byte(b), a.round().clamp(0.0, 255.0) as u8]))
}

impl fmt::Display for Color {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [r, g, b, a] = self.0;
        write!(f, "#{r:02x}{g:02x}{b:02x}{a:02x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_hex_and_functions_parse_to_one_canonical_form() {
        let red = Color([255, 0, 0, 255]);
        for text in [
            "red",
            "RED",
            "#f00",
            "#ff0000",
            "#FF0000FF",
            "#ffff00000000",
            "rgb(255,0,0)",
            "rgb(100%, 0%, 0%)",
            "srgba(255,0,0,1)",
            "hsl(0,100%,50%)",
        ] {
            assert_eq!(Color::parse(text), Some(red), "{text}");
        }
        assert_eq!(red.to_string(), "#ff0000ff");
        assert_eq!(Color::parse("navy"), Some(Color([0, 0, 128, 255])));
        assert_eq!(
            Color::parse("green"),
            Some(Color([0, 128, 0, 255])),
            "SVG's green, as ImageMagick"
        );
        assert_eq!(Color::parse("none"), Some(Color([0, 0, 0, 0])));
        assert_eq!(Color::parse("rgba(0,0,0,0.5)"), Some(Color([0, 0, 0, 128])));
        assert_eq!(Color::parse("gray(50%)"), Some(Color([128, 128, 128, 255])));
        assert_eq!(Color::parse("hsl(120,100%,25%)"), Some(Color([0, 128, 0, 255])));
    }

    #[test]
    fn anything_else_is_refused() {
        for text in [
            "nonsense",
            "",
            "#12",
            "#ggg",
            "rgb(1,2)",
            "rgb(300,0,0)",
            "rgba(0,0,0,2)",
            "hsl(0,1,1)",
            "red(",
            "url(x)",
            "-1",
        ] {
            assert_eq!(Color::parse(text), None, "{text}");
        }
    }

    #[test]
    fn the_name_table_is_sorted_for_binary_search() {
        assert!(NAMES.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
