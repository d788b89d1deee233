//! Signed URLs: `/{signature}/{chain}`, where the signature is the unpadded
//! base64url of HMAC-SHA256(secret, the rest of the path exactly as sent).
//! Several secrets may be valid at once (rotation). The original imaginator's
//! 28-character base64 HMAC-SHA1 is accepted when configured. Comparisons are
//! constant-time; secrets and signatures are never logged.

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
}
