//! `dpr(n)` (1 to 4): device pixel ratio. The sizes of the `resize`,
//! `fit-in` and `cover` steps that follow are multiplied by `n`, for screens
//! with `n` device pixels per CSS pixel, but never beyond the source's size
//! unless the step enlarges at 1x too (`resolve_dpr`). Every alias takes a
//! `dpr` parameter that applies it to the alias's own steps.

use super::{Args, Length, Op, OpError, Size};
use crate::pipeline::parse::{Number, Unit};
use std::fmt;

pub const MIN: f64 = 1.0;
pub const MAX: f64 = 4.0;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dpr(pub f64);

impl Dpr {
    pub(crate) fn parse(args: &Args) -> Result<Dpr, OpError> {
        args.count(1, 1)?;
        Ok(Dpr(args.number(0, "ratio", MIN, MAX)?))
    }
}

impl fmt::Display for Dpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "dpr({})", self.0)
    }
}

fn scale(length: &mut Length, by: f64, limit: Option<u32>) {
    if length.0.unit == Unit::Px && length.0.value > 0.0 {
        let value = (length.0.value * by).round();
        *length = Length(Number {
            value: limit.map_or(value, |l| value.min(f64::from(l))),
            unit: Unit::Px,
        });
    }
}

/// `op` with its pixel sizes multiplied by `by` (`resize`, `fit-in`,
/// `cover`; other steps are returned as they are), each at most `limit`'s
/// side when given (rounding must not step past the source).
fn scaled(op: &Op, by: f64, limit: Option<Size>) -> Op {
    let (lw, lh) = (limit.map(|l| l.width), limit.map(|l| l.height));
    let mut op = op.clone();
    match &mut op {
        Op::Resize(r) => {
            scale(&mut r.width, by, lw);
            scale(&mut r.height, by, lh);
        }
        Op::FitIn(r) => {
            scale(&mut r.width, by, lw);
            scale(&mut r.height, by, lh);
        }
        Op::Cover(r) => {
            scale(&mut r.width, by, lw);
            scale(&mut r.height, by, lh);
        }
        _ => {}
    }
    op
}

/// The steps with every `dpr(n)` applied and removed, for a source of
/// `source` pixels (as the steps see it: oriented). A sizing step that does
/// not enlarge at 1x is scaled at most up to the source's size: a 2x
/// thumbnail of a small photo is the photo's own size, not an upscale.
pub fn resolve_dpr(ops: &[Op], source: Size) -> Vec<Op> {
    let mut ratio = 1.0;
    let mut logical = Some(source);
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        if let Op::Dpr(d) = op {
            ratio = d.0;
            continue;
        }
        let op = match (op, logical) {
            // A fit-in that never enlarges: its box may grow freely.
            (Op::FitIn(f), _) if ratio != 1.0 && !f.enlarge => scaled(op, ratio, None),
            (Op::Resize(_) | Op::Cover(_) | Op::FitIn(_), Some(input)) if ratio != 1.0 => {
                let at_1x = op.scaled_size(input).unwrap_or(input);
                let (w, h) = (f64::from(input.width), f64::from(input.height));
                let (tw, th) = (f64::from(at_1x.width), f64::from(at_1x.height));
                if tw <= w && th <= h {
                    let by = ratio.min((w / tw).min(h / th)).max(1.0);
                    scaled(op, by, Some(input))
                } else {
                    scaled(op, ratio, None)
                }
            }
            (Op::Resize(_) | Op::Cover(_) | Op::FitIn(_), None) if ratio != 1.0 => scaled(op, ratio, None),
            _ => op.clone(),
        };
        logical = logical.filter(|_| !op.measured_size()).map(|s| op.output_size(s));
        out.push(op);
    }
    out
}

/// The steps as a cache key sees them for a source of `source` pixels:
/// `dpr` resolved (`resolve_dpr`), and a `fit-in` whose box holds its input
/// whole (it never enlarges, so it changes nothing) named by its input's
/// size instead of its box. Only for keys: the steps rendered are
/// `resolve_dpr`'s.
pub fn key_steps(ops: &[Op], source: Size) -> Vec<Op> {
    let mut size = Some(source);
    resolve_dpr(ops, source)
        .into_iter()
        .map(|op| {
            let keyed = match (&op, size) {
                (Op::FitIn(f), Some(input)) if !f.enlarge && op.output_size(input) == input => {
                    let px = |v: u32| {
                        Length(Number {
                            value: f64::from(v),
                            unit: Unit::Px,
                        })
                    };
                    Op::FitIn(super::fit_in::FitIn {
                        width: px(input.width),
                        height: px(input.height),
                        enlarge: false,
                    })
                }
                _ => op.clone(),
            };
            size = size.filter(|_| !op.measured_size()).map(|s| op.output_size(s));
            keyed
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::parse::{ParseLimits, parse_chain};

    #[test]
    fn ratios_that_make_the_same_image_have_the_same_key_steps() {
        let keyed = |dpr: &str, source: Size| {
            let steps = key_steps(&ops(&format!("dpr({dpr}):fit-in(1280,1280)")), source);
            steps.iter().map(ToString::to_string).collect::<Vec<_>>().join(":")
        };
        let small = Size::new(16, 16);
        assert_eq!(keyed("1.01", small), keyed("1.02", small));
        assert_eq!(keyed("1.5", small), keyed("3", small));
        let large = Size::new(4000, 3000);
        assert_ne!(keyed("1.01", large), keyed("1.02", large), "different sizes stay apart");
        let cover = |dpr: &str| {
            let steps = key_steps(&ops(&format!("dpr({dpr}):cover(300,300)")), Size::new(400, 400));
            steps.iter().map(ToString::to_string).collect::<Vec<_>>().join(":")
        };
        assert_eq!(cover("2"), cover("3"), "both capped at the source's 400 px");
        assert_ne!(cover("1"), cover("1.2"));
    }

    fn ops(text: &str) -> Vec<Op> {
        let chain = parse_chain(&format!("download(o:a.jpg):{text}"), ParseLimits::default()).unwrap();
        chain.0[1..].iter().map(|s| Op::from_step(s).unwrap()).collect()
    }

    fn out(text: &str, source: Size) -> Size {
        resolve_dpr(&ops(text), source)
            .iter()
            .fold(source, |s, op| op.output_size(s))
    }

    #[test]
    fn sizes_after_dpr_are_multiplied() {
        let big = Size::new(4000, 2500);
        assert_eq!(out("dpr(2):fit-in(400,400)", big), Size::new(800, 500));
        assert_eq!(out("dpr(2):cover(100,100)", big), Size::new(200, 200));
        // Only what follows.
        assert_eq!(out("fit-in(400,400):dpr(2)", big), Size::new(400, 250));
        // Relative sizes are fractions of the image: unchanged.
        assert_eq!(out("dpr(3):resize(0.5w,0.5h)", big), Size::new(2000, 1250));
    }

    #[test]
    fn never_beyond_the_source_unless_the_step_enlarges_anyway() {
        let small = Size::new(600, 400);
        // 2x of a 400-box would be 800: the source's own 600 x 400 instead.
        assert_eq!(out("dpr(2):fit-in(400,400)", small), Size::new(600, 400));
        // A cover that fits at 1x stops at the source's height.
        assert_eq!(out("dpr(4):cover(256,256)", small), Size::new(400, 400));
        // A resize that enlarges at 1x is multiplied in full.
        assert_eq!(out("dpr(2):resize(1200,800)", small), Size::new(2400, 1600));
    }
}
