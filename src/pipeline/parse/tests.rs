use super::*;

fn parse(text: &str) -> Result<Chain, ParseError> {
    parse_chain(text, ParseLimits::default())
}

fn px(value: f64) -> Arg {
    Arg::Number(Number { value, unit: Unit::Px })
}

#[test]
fn a_single_step_with_numbers() {
    let chain = parse("resize(400,300)").unwrap();
    assert_eq!(
        chain,
        Chain(vec![Step {
            name: "resize".into(),
            args: vec![px(400.0), px(300.0)]
        }])
    );
}

#[test]
fn steps_are_joined_by_colons_and_may_have_no_arguments() {
    let chain = parse("fit-in(100, 100) : flip() :strip()").unwrap();
    let names: Vec<_> = chain.0.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["fit-in", "flip", "strip"]);
    assert!(chain.0[1].args.is_empty());
}

#[test]
fn numbers_carry_units() {
    let chain = parse("resize(0.5w,0.25h):crop(10px,-2,3.5,4)").unwrap();
    assert_eq!(
        chain.0[0].args[0],
        Arg::Number(Number {
            value: 0.5,
            unit: Unit::W
        })
    );
    assert_eq!(
        chain.0[0].args[1],
        Arg::Number(Number {
            value: 0.25,
            unit: Unit::H
        })
    );
    assert_eq!(chain.0[1].args[0], px(10.0));
    assert_eq!(chain.0[1].args[1], px(-2.0));

    let physical = parse("resize(10hcm,2.5vcm):crop(1hin,1vin,2hin,0.5vin)").unwrap();
    let units: Vec<Unit> = physical
        .0
        .iter()
        .flat_map(|s| &s.args)
        .map(|a| match a {
            Arg::Number(n) => n.unit,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        units,
        [Unit::Hcm, Unit::Vcm, Unit::Hin, Unit::Vin, Unit::Hin, Unit::Vin]
    );
    assert_eq!(physical.to_string(), "resize(10hcm,2.5vcm):crop(1hin,1vin,2hin,0.5vin)");
    // A word that merely ends like a unit stays a word.
    assert_eq!(parse("x(thin)").unwrap().0[0].args[0], Arg::Word("thin".into()));
}

#[test]
fn words_strings_and_placeholders() {
    let chain = parse("cover({size},{0},center):bg('rgb(1,2,3)'):format(\"png\")").unwrap();
    assert_eq!(chain.0[0].args[0], Arg::Placeholder("size".into()));
    assert_eq!(chain.0[0].args[1], Arg::Placeholder("0".into()));
    assert_eq!(chain.0[0].args[2], Arg::Word("center".into()));
    assert_eq!(chain.0[1].args[0], Arg::Word("rgb(1,2,3)".into()));
    assert_eq!(chain.0[2].args[0], Arg::Word("png".into()));
}

#[test]
fn nested_image_arguments_may_contain_colons_in_words() {
    let chain = parse("compose(download(origin:a.jpg),download(b.png),over,0,0)").unwrap();
    let Arg::Call(inner) = &chain.0[0].args[0] else {
        panic!("expected a call")
    };
    assert_eq!(inner.name, "download");
    assert_eq!(inner.args[0], Arg::Word("origin:a.jpg".into()));
}

#[test]
fn malformed_chains_are_rejected_with_a_position() {
    for bad in [
        "",
        "resize",
        "resize(1,2",
        "resize(1,,2)",
        "(1)",
        "1x(2)",
        "a(b):",
        "a({})",
        "a('x)",
    ] {
        let err = parse(bad).unwrap_err();
        assert!(err.position <= bad.len(), "{bad}: {err}");
    }
}

#[test]
fn multibyte_whitespace_and_text_never_split_a_character() {
    // Found by the chain_parser fuzz target: U+00A0 used to panic the parser.
    assert!(parse("\u{a0}resize(1,2)\u{a0}").is_ok());
    assert!(parse("\u{a0}").is_err());
    assert!(parse("résumé(1)").is_err());
    assert_eq!(parse("bg(\u{2003}'é',ü)").unwrap().0[0].args.len(), 2);
}

#[test]
fn limits_are_enforced_while_parsing() {
    let limits = ParseLimits {
        max_len: 30,
        max_steps: 3,
        max_depth: 2,
    };
    assert!(parse_chain(&"a()".repeat(20), limits).is_err(), "too long");
    assert!(
        parse_chain("a():b():c():d()", limits)
            .unwrap_err()
            .message
            .contains("steps")
    );
    assert!(
        parse_chain("a(b(c()))", limits)
            .unwrap_err()
            .message
            .contains("nesting")
    );
    assert!(parse_chain("a(b())", limits).is_ok());
}

#[test]
fn printing_then_parsing_gives_the_same_chain() {
    let samples = [
        "resize(400,300)",
        "fit-in(0.5w,100px):flip():strip()",
        "compose(download(origin:a.jpg),download('b,c.png'),over,-3,4.25)",
        "cover({size},{size},north-east):bg('rgb(0,0,0)')",
        "format(\"it's\")",
        "text('12')",
    ];
    for text in samples {
        let chain = parse(text).unwrap();
        let printed = chain.to_string();
        assert_eq!(parse(&printed).unwrap(), chain, "{text} -> {printed}");
    }
}

/// A deterministic pseudo-random generator of chains, so the round-trip
/// property is exercised on many shapes without an extra dependency.
#[test]
fn round_trip_holds_for_generated_chains() {
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let words = [
        "center",
        "origin:x.jpg",
        "a b",
        "it's",
        "1x",
        "0.5",
        "rgb(1,2,3)",
        "",
        "-",
    ];
    for _ in 0..2000 {
        let mut steps = Vec::new();
        for _ in 0..=next(4) {
            let mut args = Vec::new();
            for _ in 0..next(4) {
                args.push(match next(5) {
                    0 => Arg::Number(Number {
                        value: (next(20000) as f64 - 10000.0) / 8.0,
                        unit: Unit::SUFFIXES[next(7) as usize].1,
                    }),
                    1 => Arg::Word(words[next(words.len() as u64) as usize].to_string()),
                    2 => Arg::Placeholder(format!("p{}", next(3))),
                    3 => Arg::Call(Step {
                        name: "download".into(),
                        args: vec![Arg::Word("origin:a.jpg".into())],
                    }),
                    _ => Arg::Word("north-west".into()),
                });
            }
            steps.push(Step {
                name: format!("op-{}", next(9)),
                args,
            });
        }
        let chain = Chain(steps);
        let printed = chain.to_string();
        match parse(&printed) {
            Ok(again) => assert_eq!(again, chain, "{printed}"),
            // Empty words cannot be written unquoted; everything else must round-trip.
            Err(e) => panic!("{printed}: {e}"),
        }
    }
}
