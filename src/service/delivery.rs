//! What a request's headers change about its answer, decided once for every
//! route that renders: the output format `auto` negotiates from `Accept`
//! (within `auto_formats`), and with `client_hints` on the device pixel
//! ratio and width an alias rendition takes from `Sec-CH-DPR`/`DPR` and
//! `Sec-CH-Width`/`Width`, and `Save-Data`. Each header consulted is named
//! in `Vary`, so a shared cache keeps one answer per variant; each change is
//! part of the plan, so the result cache keys it too.

use crate::config::Settings;
use crate::pipeline::Plan;
use crate::pipeline::alias::{Alias, DPR, ParamKind};
use crate::pipeline::format::{ImageFormat, negotiate};
use axum::http::{HeaderMap, HeaderValue, header};

/// `Accept-CH` on image responses when `client_hints` is on.
pub const ACCEPT_CH: &str = "Sec-CH-DPR, Sec-CH-Width, DPR, Width";

/// Quality points `Save-Data: on` takes off, and the floor it stops at.
pub const SAVE_DATA_QUALITY_DROP: u8 = 20;
pub const SAVE_DATA_QUALITY_FLOOR: u8 = 30;

/// The request headers an answer depended on, for `Vary`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Vary(Vec<&'static str>);

impl Vary {
    fn add(&mut self, names: &[&'static str]) {
        for name in names {
            if !self.0.contains(name) {
                self.0.push(name);
            }
        }
    }

    /// Sets `Vary` on a response (nothing when the answer varies on nothing).
    pub fn apply(&self, headers: &mut HeaderMap) {
        if self.0.is_empty() {
            return;
        }
        if let Ok(v) = HeaderValue::from_str(&self.0.join(", ")) {
            headers.insert(header::VARY, v);
        }
    }

    pub fn names(&self) -> &[&'static str] {
        &self.0
    }
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// The first of `names` that carries a positive, finite number.
fn number(headers: &HeaderMap, names: &[&str]) -> Option<f64> {
    names
        .iter()
        .find_map(|n| text(headers, n))
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
}

/// The query an alias rendition binds: the request's, plus `dpr` and `width`
/// from client hints where the request gives neither (`client_hints` on).
/// Hints are clamped to the parameter's bounds: a hint never fails a request.
pub fn hinted_query(
    settings: &Settings,
    alias: &Alias,
    query: Option<&str>,
    headers: &HeaderMap,
) -> (Option<String>, Vary) {
    let mut vary = Vary::default();
    if !settings.client_hints {
        return (query.map(str::to_string), vary);
    }
    let given: Vec<String> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    let mut extra: Vec<(String, String)> = Vec::new();
    let mut dpr = 1.0;
    if !given.iter().any(|k| k == DPR) {
        vary.add(&["Sec-CH-DPR", "DPR"]);
        if let Some(hint) = number(headers, &["sec-ch-dpr", "dpr"]) {
            let bounded = hint.clamp(crate::pipeline::ops::dpr::MIN, crate::pipeline::ops::dpr::MAX);
            // Two decimals: finer ratios make no other image.
            dpr = (bounded * 100.0).round() / 100.0;
            if dpr != 1.0 {
                extra.push((DPR.to_string(), dpr.to_string()));
            }
        }
    }
    let width = alias.params.iter().find(|p| p.name == "width");
    if let Some(param) = width
        && !given.iter().any(|k| k == "width")
    {
        vary.add(&["Sec-CH-Width", "Width"]);
        if let Some(hint) = number(headers, &["sec-ch-width", "width"]) {
            // The hint is in device pixels; the parameter in CSS pixels,
            // which `dpr` scales.
            let css = (hint / dpr).ceil();
            let value = match &param.kind {
                ParamKind::Int { min, max, .. } => Some((css as i64).clamp(*min, *max).to_string()),
                ParamKind::Number { min, max, .. } => Some(css.clamp(*min, *max).to_string()),
                ParamKind::Enum { .. } => None,
            };
            if let Some(v) = value {
                extra.push(("width".to_string(), v));
            }
        }
    }
    if extra.is_empty() {
        return (query.map(str::to_string), vary);
    }
    // `for_suffix(.., 0)`: the request's own pairs come first, joined by `&`.
    let mut out = form_urlencoded::Serializer::for_suffix(query.unwrap_or_default().to_string(), 0);
    for (k, v) in &extra {
        out.append_pair(k, v);
    }
    (Some(out.finish()), vary)
}

/// The plan as this request gets it: the negotiated format when its output
/// is `auto`, and the `Save-Data` quality (`client_hints` on). `None` when
/// nothing changes (the remembered plan and its canonical text stand).
pub fn deliver(settings: &Settings, plan: &Plan, headers: &HeaderMap, vary: &mut Vary) -> Option<Plan> {
    let mut changed: Option<Plan> = None;
    if plan.output.negotiate {
        vary.add(&["Accept"]);
        let accept = text(headers, "accept").unwrap_or("");
        let format = negotiate(accept, plan.output.format, &settings.auto_formats);
        let p = changed.get_or_insert_with(|| plan.clone());
        p.output.format = format;
        // The fallback keeps alpha where the image has it.
        p.output.png_for_alpha = format == ImageFormat::Jpeg;
    }
    if settings.client_hints {
        vary.add(&["Save-Data"]);
        if text(headers, "save-data").is_some_and(|v| v.eq_ignore_ascii_case("on")) {
            let p = changed.get_or_insert_with(|| plan.clone());
            p.output.quality = p
                .output
                .quality
                .saturating_sub(SAVE_DATA_QUALITY_DROP)
                .max(SAVE_DATA_QUALITY_FLOOR)
                .min(p.output.quality);
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn alias() -> Alias {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumb.toml");
        std::fs::write(
            &path,
            "chain = \"fit-in({width},{width})\"\n[[param]]\nname = \"width\"\ntype = \"int\"\ndefault = 400\nmin = 16\nmax = 1200\n[output]\nformat = \"auto\"\n",
        )
        .unwrap();
        Alias::from_file(&path).unwrap()
    }

    fn hinted(query: Option<&str>, pairs: &[(&'static str, &'static str)]) -> (Option<String>, Vary) {
        let settings = Settings {
            client_hints: true,
            ..Settings::default()
        };
        hinted_query(&settings, &alias(), query, &headers(pairs))
    }

    #[test]
    fn hints_fill_what_the_query_leaves_out_within_bounds() {
        let (q, vary) = hinted(None, &[("sec-ch-dpr", "2"), ("sec-ch-width", "640")]);
        assert_eq!(q.as_deref(), Some("dpr=2&width=320"));
        assert_eq!(vary.names(), ["Sec-CH-DPR", "DPR", "Sec-CH-Width", "Width"]);
        let (q, _) = hinted(Some("width=100"), &[("dpr", "9"), ("width", "5000")]);
        assert_eq!(
            q.as_deref(),
            Some("width=100&dpr=4"),
            "the query wins; a hint is clamped"
        );
        let (q, vary) = hinted(Some("dpr=1.5&width=100"), &[("sec-ch-dpr", "3")]);
        assert_eq!(q.as_deref(), Some("dpr=1.5&width=100"));
        assert!(vary.names().is_empty(), "no hint consulted, none named");
        let (q, _) = hinted(None, &[("sec-ch-dpr", "abc"), ("width", "-3")]);
        assert_eq!(q, None, "malformed hints are ignored");
        let off = hinted_query(&Settings::default(), &alias(), None, &headers(&[("dpr", "2")]));
        assert_eq!(off, (None, Vary::default()), "client_hints off: nothing read");
    }

    #[test]
    fn auto_negotiates_within_auto_formats_and_save_data_lowers_quality() {
        let plan = alias().instantiate([]).unwrap();
        let mut settings = Settings::default();
        let mut vary = Vary::default();
        let avif = deliver(
            &settings,
            &plan,
            &headers(&[("accept", "image/avif,image/webp,*/*")]),
            &mut vary,
        )
        .unwrap();
        assert_eq!(avif.output.format, ImageFormat::Avif);
        assert!(!avif.output.png_for_alpha);
        assert_eq!(vary.names(), ["Accept"]);
        settings.auto_formats = vec![ImageFormat::Webp];
        let webp = deliver(
            &settings,
            &plan,
            &headers(&[("accept", "image/avif,image/webp")]),
            &mut vary,
        )
        .unwrap();
        assert_eq!(webp.output.format, ImageFormat::Webp);
        let old = deliver(&settings, &plan, &headers(&[("accept", "*/*")]), &mut vary).unwrap();
        assert_eq!(old.output.format, ImageFormat::Jpeg);
        assert!(old.output.png_for_alpha, "the fallback keeps alpha as PNG");
        assert_ne!(avif.canonical(), old.canonical(), "the negotiated format is in the key");

        settings.client_hints = true;
        let mut vary = Vary::default();
        let saving = deliver(
            &settings,
            &plan,
            &headers(&[("accept", "*/*"), ("save-data", "on")]),
            &mut vary,
        )
        .unwrap();
        assert_eq!(saving.output.quality, plan.output.quality - SAVE_DATA_QUALITY_DROP);
        assert_eq!(vary.names(), ["Accept", "Save-Data"]);
    }
}
