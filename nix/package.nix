# The imaginator binary, built with nixpkgs' Rust tooling against the
# ImageMagick of nix/imagemagick.nix, with the same Cargo features (jemalloc
# unprefixed, heap profiling compiled in) as `cargo build --release`.
{ lib
, rustPlatform
, pkg-config
, imagemagick
, libjpeg
, libwebp
, libheif
, libpng
, garage
, haproxy
, src
}:

let
  manifest = (lib.importTOML ../Cargo.toml).package;
in
rustPlatform.buildRustPackage {
  pname = manifest.name;
  version = manifest.version;

  src = lib.cleanSourceWith {
    inherit src;
    filter = path: type:
      let base = baseNameOf path; in
      !(lib.elem base [ "target" "data" ".git" "result" ".work" ]);
  };

  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [
    pkg-config
    # magick_rust generates its bindings with bindgen (needs libclang).
    rustPlatform.bindgenHook
  ];
  # libjpeg, libwebp, libheif, libpng: the fast path (src/fast/*.c) links
  # the libraries ImageMagick itself uses.
  buildInputs = [ imagemagick libjpeg libwebp libheif libpng ];

  # Tests start real servers on 127.0.0.1, a Garage S3 server and HAProxy
  # (tests/it/replicas.rs); `checks.tests` turns them on. The plain package
  # build stays fast.
  doCheck = false;
  nativeCheckInputs = [ garage haproxy ];
  preCheck = ''
    export GARAGE_BIN=${garage}/bin/garage
    export HOME=$TMPDIR
  '';

  meta = {
    description = manifest.description;
    mainProgram = "imaginator";
    license = lib.licenses.mit;
    platforms = lib.platforms.linux;
  };
}
