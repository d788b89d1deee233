# ImageMagick 7 for imaginator: JPEG, PNG, GIF, WebP, TIFF, HEIC/AVIF and LCMS
# only. Everything that widens the attack surface (Ghostscript for PS/PDF,
# librsvg for SVG, X11, OpenEXR, DjVu, raw camera formats, ...) is left out,
# which also keeps the container image small.
{ imagemagick }:

(imagemagick.override {
  libX11Support = false;
  libXtSupport = false;
  ghostscriptSupport = false;
  librsvgSupport = false;
  openexrSupport = false;
  djvulibreSupport = false;
  openjpegSupport = false;
  libjxlSupport = false;
  librawSupport = false;
  liblqr1Support = false;
  fftwSupport = false;
  potraceSupport = false;
}).overrideAttrs (old: {
  # Same build as scripts/setup on Debian: Q16 without HDRI (magick_rust's
  # `disable-hdri` default) and without OpenMP (one thread per job).
  configureFlags = (old.configureFlags or [ ]) ++ [
    "--disable-hdri"
    "--with-quantum-depth=16"
    "--disable-openmp"
  ];
})
