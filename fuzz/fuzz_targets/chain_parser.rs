//! The filter-chain parser on arbitrary text: it must never panic, must
//! respect its limits, and whatever it accepts must print and parse back to
//! the same chain (the round-trip property), and every step must either bind
//! to an operation or be refused with an error.
#![no_main]

use imaginator::pipeline::ops::Op;
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
    }
});
