//! Compiles the fast path's JPEG layer (`src/fast/jpeg.c`) against the
//! system's libjpeg: the libjpeg-turbo shared library ImageMagick links, so
//! the process has one copy of every jpeg_* symbol.

fn main() {
    println!("cargo:rerun-if-changed=src/fast/jpeg.c");
    let mut build = cc::Build::new();
    build
        .file("src/fast/jpeg.c")
        .warnings(true)
        .extra_warnings(true)
        .opt_level(2);
    // JPEG_INCLUDE_DIR: where jpeglib.h lives when not in the default path
    // (a Nix build, say).
    println!("cargo:rerun-if-env-changed=JPEG_INCLUDE_DIR");
    if let Ok(dir) = std::env::var("JPEG_INCLUDE_DIR") {
        build.include(dir);
    }
    build.compile("imaginator_jpeg");
    println!("cargo:rustc-link-lib=dylib=jpeg");
}
