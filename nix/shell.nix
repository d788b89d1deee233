# Everything `cargo test` needs: the Rust toolchain, ImageMagick 7 with
# pkg-config and libclang for magick_rust, Garage for the S3 test, Python for
# the benchmarks.
{ mkShell
, cargo
, rustc
, clippy
, rustfmt
, cargo-nextest
, pkg-config
, rustPlatform
, imagemagick
, libjpeg
, garage
, python3
, jemalloc
}:

mkShell {
  packages = [
    cargo
    rustc
    clippy
    rustfmt
    cargo-nextest
    pkg-config
    imagemagick
    libjpeg # the fast path's JPEG layer
    garage
    python3
    jemalloc # jeprof
  ];
  nativeBuildInputs = [ rustPlatform.bindgenHook ];
  GARAGE_BIN = "${garage}/bin/garage";
}
