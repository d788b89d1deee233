# `cargo clippy --all-targets -- -D warnings` and `cargo fmt --check` as a flake check.
{ rustPlatform, clippy, rustfmt, pkg-config, imagemagick, libjpeg, libwebp, libheif, libpng, lib, src }:

rustPlatform.buildRustPackage {
  pname = "imaginator-lints";
  version = (lib.importTOML ../Cargo.toml).package.version;
  inherit src;
  cargoLock.lockFile = ../Cargo.lock;
  nativeBuildInputs = [ pkg-config rustPlatform.bindgenHook clippy rustfmt ];
  buildInputs = [ imagemagick libjpeg libwebp libheif libpng ];
  buildPhase = ''
    cargo fmt --all -- --check
    cargo clippy --all-targets --offline -- -D warnings
  '';
  doCheck = false;
  installPhase = "touch $out";
}
