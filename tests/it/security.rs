//! ImageMagick's attack surface: the service's own policy is in force.

use crate::common;

use imaginator::magick::policy;

fn init() {
    imaginator::magick::init(&imaginator::config::Limits::default()).expect("the policy is in force");
}

#[test]
fn only_the_image_coders_we_use_are_readable() {
    init();
    for coder in ["JPEG", "PNG", "GIF", "WEBP", "TIFF", "HEIC", "AVIF"] {
        assert!(policy::coder_readable(coder), "{coder} must be readable");
    }
    for coder in [
        "SVG",
        "MVG",
        "MSL",
        "PS",
        "EPS",
        "PDF",
        "XPS",
        "TEXT",
        "LABEL",
        "URL",
        "HTTP",
        "HTTPS",
        "EPHEMERAL",
        "MIFF",
        "BMP",
    ] {
        assert!(!policy::coder_readable(coder), "{coder} must be denied");
    }
}

#[test]
fn indirect_reads_and_delegates_are_denied() {
    init();
    assert!(!policy::path_readable("@/etc/passwd"));
    for delegate in ["gs", "ffmpeg", "curl", "https"] {
        assert!(!policy::delegate_allowed(delegate), "{delegate}");
    }
}

#[tokio::test]
async fn version_reports_the_engine_policy_and_limits() {
    let server = common::TestServer::start().await;
    let v: serde_json::Value = server.get("/version").await.json().await.unwrap();
    assert_eq!(v["imaginator"], env!("CARGO_PKG_VERSION"));
    assert!(
        v["imagemagick"]["version"]
            .as_str()
            .unwrap()
            .contains("ImageMagick 7.1")
    );
    assert_eq!(v["imagemagick"]["quantum_depth"], "Q16");
    assert_eq!(v["imagemagick"]["hdri"], false);
    assert_eq!(v["imagemagick"]["openmp"], false);
    assert!(
        v["imagemagick"]["delegates"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d == "jpeg")
    );
    assert!(v["coders"].as_array().unwrap().iter().any(|c| c == "WEBP"));
    assert!(v["policy"].as_str().unwrap().contains("rights=\"none\" pattern=\"*\""));
    assert_eq!(v["limits"]["max_width"], 16384);
    assert_eq!(v["imagemagick"]["resource_limits"]["thread"], 1);
    server.stop().await;
}

#[test]
fn a_policy_imagemagick_refuses_is_an_error_not_a_warning() {
    init();
    let refused = policy::install("<policymap><policy domain=\"coder\" rights=\"none\"");
    assert!(
        refused.unwrap_err().contains("refused"),
        "a malformed policy fails closed"
    );
    // The policy in force is unchanged.
    assert!(!policy::coder_readable("SVG"));
    assert!(policy::coder_readable("JPEG"));
}
