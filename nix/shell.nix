# Everything `cargo test` needs: the Rust toolchain, ImageMagick 7 with
# pkg-config and libclang for magick_rust, Garage and HAProxy for the S3 and
# multi-replica tests, Python for
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
, libwebp
, libheif
, libpng
, garage
, haproxy
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
    libwebp # and its WebP layer
    libheif # and its AVIF layer
    libpng # and its PNG layer
    garage
    haproxy # the load balancer of tests/it/replicas.rs
    python3
    jemalloc # jeprof
  ];
  nativeBuildInputs = [ rustPlatform.bindgenHook ];
  GARAGE_BIN = "${garage}/bin/garage";
}
