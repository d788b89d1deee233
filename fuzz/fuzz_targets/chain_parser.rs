//! The filter-chain parser on arbitrary text: it must never panic, must
//! respect its limits, and whatever it accepts must print and parse back to
//! the same chain (the round-trip property), and every step must either bind
//! to an operation or be refused with an error. Chains that compile (with
//! every built-in allowed, `compose` sources included) must give geometry
//! without panicking.
#![no_main]

use imaginator::pipeline::alias::AliasSet;
use imaginator::pipeline::chain::compile;
use imaginator::pipeline::ops::{Dpi, Op, Size};
use imaginator::pipeline::parse::{ParseLimits, parse_chain};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let limits = ParseLimits::default();
    if let Ok(chain) = parse_chain(text, limits) {
        assert!(chain.0.len() <= limits.max_steps);
        let printed = chain.to_string();
        let again = parse_chain(&printed, ParseLimits { max_len: usize::MAX, ..limits })
            .unwrap_or_else(|e| panic!("printed chain {printed:?} does not parse: {e}"));
        assert_eq!(again, chain, "round trip of {text:?} via {printed:?}");
        for step in &chain.0 {
            let _ = Op::from_step(step);
        }
        if let Ok(compiled) = compile(&chain, &AliasSet::default(), true) {
            let _ = compiled.plan.canonical();
            for input in [Size::new(1, 1), Size::new(800, 500), Size::new(16_384, 3)] {
                for dpi in [Dpi::DEFAULT, Dpi { x: 10_000.0, y: 1.0 }] {
                    let mut size = input;
                    for op in &compiled.plan.ops {
                        size = op.in_pixels(dpi).output_size(size);
                        assert!(size.width >= 1 && size.height >= 1, "{op}: {size:?}");
                    }
                }
            }
        }
    }
});
