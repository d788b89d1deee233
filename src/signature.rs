//! Signed URLs: `/{signature}/{chain}`, where the signature is the unpadded
//! base64url of HMAC-SHA256(secret, the rest of the path exactly as sent).
//! With `sign_all_routes`, renditions and `POST /transform` are signed too,
//! in a `signature` query parameter over the path and the rest of the query
//! (`query_signed`). Several secrets may be valid at once (rotation). The
//! original imaginator's 28-character base64 HMAC-SHA1 is accepted when
//! configured, in either base64 alphabet, over the path as sent or over the
//! percent-decoded path plus `?query` (the original's own scheme).
//! Comparisons are constant-time; secrets and signatures are never logged.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// The signature of `path` (everything after `/{signature}/`).
pub fn sign(secret: &str, path: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(path.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// The original imaginator's form: base64 of HMAC-SHA1, 28 characters.
pub fn sign_legacy(secret: &str, path: &str) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(path.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Whether `signature` signs `path` under any of `secrets`.
pub fn verify(secrets: &[String], legacy: bool, signature: &str, path: &str) -> bool {
    secrets.iter().any(|secret| {
        if same(signature, &sign(secret, path)) {
            return true;
        }
        if legacy {
            let expected = sign_legacy(secret, path);
            // Accept the standard alphabet and the URL-safe one (`+/` -> `-_`).
            let url_safe = URL_SAFE.encode(STANDARD.decode(&expected).unwrap_or_default());
            return same(signature, &expected) || same(signature, &url_safe);
        }
        false
    })
}

/// A `/{signature}/{rest}` path split into its possible (signature, rest)
/// readings: at the first `/`, and, for the original's 28-character
/// signatures in the standard base64 alphabet (which may contain `/`), after
/// 28 characters.
pub fn split_signed(path: &str, legacy: bool) -> Vec<(&str, &str)> {
    let mut out = Vec::new();
    if let Some(pair) = path.split_once('/') {
        out.push(pair);
    }
    if legacy && path.len() > 29 && path.as_bytes()[28] == b'/' && path.is_char_boundary(28) {
        let pair = (&path[..28], &path[29..]);
        if !out.contains(&pair) {
            out.push(pair);
        }
    }
    out
}

/// The query-parameter form: splits `signature=...` out of `query` and
/// checks it against `path?rest-of-query`. `None` when the query carries no
/// signature.
pub fn query_signed(secrets: &[String], path: &str, query: &str) -> Option<bool> {
    let mut signature = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("signature=") {
            Some(value) => {
                signature = Some(value);
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let signature = signature?;
    let message = if rest.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    Some(verify(secrets, false, signature, &message))
}

/// The query without its `signature` parameter (what the handlers bind).
pub fn without_signature(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| !pair.starts_with("signature=") && !pair.is_empty())
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef-secret";

    #[test]
    fn signatures_verify_with_any_current_secret() {
        let path = "download(origin:a.jpg):thumbnail()";
        let sig = sign(SECRET, path);
        assert_eq!(sig.len(), 43, "unpadded base64url of 32 bytes");
        let secrets = vec!["another-secret-0000".to_string(), SECRET.to_string()];
        assert!(verify(&secrets, false, &sig, path));
        assert!(!verify(&secrets, false, &sig, "download(origin:b.jpg):thumbnail()"));
        assert!(!verify(&["wrong-secret-0000000".to_string()], false, &sig, path));
        assert!(!verify(&secrets, false, "", path));
    }

    #[test]
    fn legacy_sha1_signatures_only_when_enabled() {
        let path = "download(origin:a.jpg)";
        let legacy = sign_legacy(SECRET, path);
        assert_eq!(legacy.len(), 28);
        let secrets = vec![SECRET.to_string()];
        assert!(!verify(&secrets, false, &legacy, path));
        assert!(verify(&secrets, true, &legacy, path));
    }

    #[test]
    fn legacy_signatures_with_a_slash_split_after_28_characters() {
        let path = "download(origin:a.jpg):thumbnail(120)";
        // Find a chain whose standard-alphabet signature contains '/'.
        let (path, sig) = (0..500)
            .map(|i| format!("{path}/{i}.jpg"))
            .map(|p| {
                let s = sign_legacy(SECRET, &p);
                (p, s)
            })
            .find(|(_, s)| s.contains('/'))
            .unwrap();
        let full = format!("{sig}/{path}");
        let readings = split_signed(&full, true);
        let secrets = vec![SECRET.to_string()];
        assert!(
            readings.iter().any(|(s, rest)| verify(&secrets, true, s, rest)),
            "{full}"
        );
        assert!(
            split_signed(&full, false)
                .iter()
                .all(|(s, rest)| !verify(&secrets, true, s, rest))
        );
    }

    #[test]
    fn query_signatures_cover_the_path_and_the_rest_of_the_query() {
        let secrets = vec![SECRET.to_string()];
        let sig = sign(SECRET, "images/abc/thumbnail?width=200");
        assert_eq!(
            query_signed(&secrets, "images/abc/thumbnail", &format!("width=200&signature={sig}")),
            Some(true)
        );
        assert_eq!(
            query_signed(&secrets, "images/abc/thumbnail", &format!("signature={sig}&width=200")),
            Some(true)
        );
        assert_eq!(
            query_signed(&secrets, "images/abc/thumbnail", &format!("width=2000&signature={sig}")),
            Some(false)
        );
        assert_eq!(query_signed(&secrets, "images/abc/thumbnail", "width=200"), None);
        assert_eq!(without_signature(&format!("width=200&signature={sig}")), "width=200");
    }
}
