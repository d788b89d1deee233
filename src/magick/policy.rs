//! ImageMagick's security policy, applied by the service itself at start-up
//! (never relying on a system policy.xml): every coder, delegate and filter is
//! denied, then only the formats imaginator reads and writes are allowed back.
//! Indirect reads (`@file`), URL/HTTP fetches, MSL/MVG scripting, SVG, text
//! and PostScript-family coders are therefore unreachable, whatever a client
//! sends. Inputs are also sniffed from magic bytes and ImageMagick is told the
//! coder explicitly, so it never guesses from content or a name.

use magick_rust::bindings as im;
use std::ffi::{CStr, CString};

/// Coders allowed to read and write: what `ImageFormat` covers.
pub const ALLOWED_CODERS: [&str; 9] = ["JPEG", "JPG", "PNG", "GIF", "WEBP", "TIFF", "TIF", "HEIC", "AVIF"];

/// The policy, in ImageMagick's policy.xml syntax. Later entries win over
/// earlier ones for the names they match (ImageMagick's allow-list idiom).
pub const POLICY: &str = r#"<policymap>
  <policy domain="delegate" rights="none" pattern="*"/>
  <policy domain="filter" rights="none" pattern="*"/>
  <policy domain="path" rights="none" pattern="@*"/>
  <policy domain="coder" rights="none" pattern="*"/>
  <policy domain="coder" rights="read|write" pattern="{JPEG,JPG,PNG,GIF,WEBP,TIFF,TIF,HEIC,AVIF}"/>
  <policy domain="module" rights="none" pattern="{MSL,MVG,SVG,MSVG,PS,PS2,PS3,EPS,EPI,EPSF,EPSI,EPT,PDF,PDFA,XPS,TEXT,TXT,LABEL,CAPTION,URL,HTTP,HTTPS,FTP,EPHEMERAL,SHOW,WIN,X,MIFF,INLINE,PANGO,PWP,SCAN,PLASMA,VID}"/>
  <policy domain="system" name="max-memory-request" value="256MiB"/>
</policymap>"#;

/// Installs `policy` and checks that it is in force: the coders, paths and
/// delegates it must deny are denied and the image coders are allowed. Any
/// failure is an error, and the service refuses to start (fails closed).
pub fn install(policy: &str) -> Result<(), String> {
    let text = CString::new(policy).map_err(|_| "the policy contains a NUL byte".to_string())?;
    // SAFETY: exception info is created, used and destroyed here; the policy
    // string outlives the call.
    let accepted = unsafe {
        let exception = im::AcquireExceptionInfo();
        let ok = im::SetMagickSecurityPolicy(text.as_ptr(), exception);
        im::DestroyExceptionInfo(exception);
        ok == im::MagickBooleanType::MagickTrue
    };
    if !accepted {
        return Err("ImageMagick refused the security policy (it does not parse)".into());
    }
    let still_readable: Vec<&str> = ["SVG", "MVG", "MSL", "PS", "PDF", "URL", "HTTPS", "TEXT", "EPHEMERAL"]
        .into_iter()
        .filter(|coder| coder_readable(coder))
        .collect();
    if !still_readable.is_empty() {
        return Err(format!(
            "the security policy is not in force: {still_readable:?} still readable"
        ));
    }
    if path_readable("@/etc/passwd") || delegate_allowed("gs") {
        return Err("the security policy is not in force: indirect reads or delegates allowed".into());
    }
    if let Some(coder) = ALLOWED_CODERS.iter().find(|c| !coder_readable(c)) {
        return Err(format!("the security policy denies {coder}, which the service needs"));
    }
    Ok(())
}

/// Whether the active policy lets `coder` be read.
pub fn coder_readable(coder: &str) -> bool {
    rights(im::PolicyDomain::Coder, im::PolicyRights::Read, coder)
}

/// Whether the active policy lets a path pattern (e.g. `@/etc/passwd`) be read.
pub fn path_readable(path: &str) -> bool {
    rights(im::PolicyDomain::Path, im::PolicyRights::Read, path)
}

pub fn delegate_allowed(name: &str) -> bool {
    rights(im::PolicyDomain::Delegate, im::PolicyRights::Execute, name)
}

fn rights(domain: im::PolicyDomain, rights: im::PolicyRights, name: &str) -> bool {
    let name = CString::new(name).unwrap_or_default();
    // SAFETY: a read-only query of the policy cache.
    unsafe { im::IsRightsAuthorized(domain, rights, name.as_ptr()) == im::MagickBooleanType::MagickTrue }
}

fn static_str(p: *const std::ffi::c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: ImageMagick returns static NUL-terminated strings here.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// Build facts for `/version`.
pub struct BuildInfo {
    pub version: String,
    pub quantum_depth: String,
    pub features: String,
    pub delegates: String,
}

pub fn build_info() -> BuildInfo {
    let mut n = 0usize;
    // SAFETY: these return static strings owned by ImageMagick.
    unsafe {
        BuildInfo {
            version: static_str(im::MagickGetVersion(&mut n)),
            quantum_depth: static_str(im::GetMagickQuantumDepth(&mut n)),
            features: static_str(im::GetMagickFeatures()),
            delegates: static_str(im::GetMagickDelegates()),
        }
    }
}
