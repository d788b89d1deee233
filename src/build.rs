//! Compiles the fast path's JPEG, WebP, AVIF and PNG layers
//! (`src/fast/jpeg.c`, `webp.c`, `avif.c`, `png.c`) against the system's
//! libjpeg, libwebp, libheif and libpng: the shared libraries ImageMagick
//! links, so the process has one copy of every jpeg_*, WebP*, heif_* and
//! png_* symbol.

fn main() {
    println!("cargo:rerun-if-changed=src/fast/jpeg.c");
    println!("cargo:rerun-if-changed=src/fast/webp.c");
    println!("cargo:rerun-if-changed=src/fast/avif.c");
    println!("cargo:rerun-if-changed=src/fast/png.c");
    let mut build = cc::Build::new();
    build
        .file("src/fast/jpeg.c")
        .file("src/fast/webp.c")
        .file("src/fast/avif.c")
        .file("src/fast/png.c")
        .warnings(true)
        .extra_warnings(true)
        .opt_level(2);
    // JPEG_INCLUDE_DIR, WEBP_INCLUDE_DIR, HEIF_INCLUDE_DIR, PNG_INCLUDE_DIR:
    // where jpeglib.h, webp/, libheif/ and png.h live when not in the default
    // path (a Nix build, say).
    for var in [
        "JPEG_INCLUDE_DIR",
        "WEBP_INCLUDE_DIR",
        "HEIF_INCLUDE_DIR",
        "PNG_INCLUDE_DIR",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        if let Ok(dir) = std::env::var(var) {
            build.include(dir);
        }
    }
    build.compile("imaginator_jpeg");
    println!("cargo:rustc-link-lib=dylib=jpeg");
    println!("cargo:rustc-link-lib=dylib=webp");
    println!("cargo:rustc-link-lib=dylib=heif");
    println!("cargo:rustc-link-lib=dylib=png16");
}
