{
  description = "imaginator: a fast, safe HTTP interface to ImageMagick whose memory can be explained";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" ] (system:
      let
        pkgs = import nixpkgs { inherit system; };
        # ImageMagick 7 with only the delegates imaginator uses, Q16, no HDRI
        # (magick_rust's default), no OpenMP (our worker pool owns concurrency).
        imagemagick = pkgs.callPackage ./nix/imagemagick.nix { };
        imaginator = pkgs.callPackage ./nix/package.nix {
          inherit imagemagick;
          src = self;
        };
      in
      {
        packages = {
          default = imaginator;
          inherit imaginator imagemagick;
          # A minimal OCI image: `nix build .#image && docker load < result`.
          image = pkgs.callPackage ./nix/image.nix {
            inherit imaginator;
            aliases = ./aliases;
            config = ./deploy/base/imaginator.toml;
          };
        };

        devShells.default = pkgs.callPackage ./nix/shell.nix { inherit imagemagick; };

        checks = {
          # The whole test suite, S3 test included (Garage from nixpkgs, on loopback).
          tests = imaginator.overrideAttrs (_: { doCheck = true; });
          clippy = pkgs.callPackage ./nix/clippy.nix { inherit imagemagick; src = self; };
        };

        formatter = pkgs.nixpkgs-fmt;
      });
}
