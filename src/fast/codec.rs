//! Safe wrappers over `jpeg.c`: a decoder that reads the header (markers
//! included) and then the pixels at a reduced scale, and an encoder with
//! ImageMagick's JPEG settings.

use std::ffi::{CStr, c_char, c_int, c_long, c_uchar, c_uint, c_ulong};

#[repr(C)]
struct RawDecoder {
    _private: [u8; 0],
}

#[repr(C)]
struct RawHeader {
    width: c_uint,
    height: c_uint,
    out_width: c_uint,
    out_height: c_uint,
    components: c_int,
    jpeg_color_space: c_int,
    saw_jfif: c_int,
    density_unit: c_int,
    x_density: c_int,
    y_density: c_int,
    saw_adobe: c_int,
    progressive: c_int,
    exif: *const c_uchar,
    exif_len: c_uint,
    icc: *const c_uchar,
    icc_len: c_uint,
    samp: [c_int; 6],
    photoshop: *const c_uchar,
    photoshop_len: c_uint,
    photoshop_count: c_int,
    xmp_tiff: c_int,
}

unsafe extern "C" {
    fn imj_decoder_new() -> *mut RawDecoder;
    fn imj_decoder_free(d: *mut RawDecoder);
    fn imj_decoder_message(d: *const RawDecoder) -> *const c_char;
    fn imj_decoder_warnings(d: *const RawDecoder) -> c_long;
    fn imj_decoder_header(d: *mut RawDecoder, data: *const c_uchar, len: c_ulong, h: *mut RawHeader) -> c_int;
    fn imj_decoder_scale(d: *mut RawDecoder, scale_denom: c_uint, width: *mut c_uint, height: *mut c_uint) -> c_int;
    fn imj_decoder_pixels(d: *mut RawDecoder, pixels: *mut c_uchar, len: c_ulong) -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn imj_encode(
        pixels: *const c_uchar,
        width: c_uint,
        height: c_uint,
        components: c_int,
        quality: c_int,
        progressive: c_int,
        density_unit: c_int,
        x_density: c_int,
        y_density: c_int,
        samp: *const c_int,
        out: *mut *mut c_uchar,
        out_len: *mut c_ulong,
        message: *mut c_char,
    ) -> c_int;
    fn imj_free(p: *mut std::ffi::c_void);
}

/// The message a C layer wrote into its 200-byte buffer (NUL-terminated:
/// libjpeg's format_message and snprintf both terminate it).
fn c_message(message: &[c_char; 200]) -> String {
    // SAFETY: the buffer is NUL-terminated within its 200 bytes (above), and
    // was zeroed before the call.
    unsafe { CStr::from_ptr(message.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// What a C encoder returned: on `rc` 0 a copy of its `len`-byte output,
/// which `free` then releases; else the message it wrote.
///
/// # Safety
/// With `rc` 0, `out` must point at `len` readable bytes that `free`
/// releases and nothing else uses afterwards.
unsafe fn take_output(
    rc: c_int,
    out: *mut c_uchar,
    len: usize,
    message: &[c_char; 200],
    free: impl FnOnce(*mut c_uchar),
) -> Result<Vec<u8>, String> {
    if rc != 0 {
        return Err(c_message(message));
    }
    // SAFETY: the caller's promise.
    let bytes = unsafe { std::slice::from_raw_parts(out, len) }.to_vec();
    free(out);
    Ok(bytes)
}

/// libjpeg's colour space numbers (`J_COLOR_SPACE`).
pub const JCS_GRAYSCALE: i32 = 1;
pub const JCS_RGB: i32 = 2;
pub const JCS_YCBCR: i32 = 3;

/// What a JPEG's header says, borrowed from the decoder.
#[derive(Debug)]
pub struct Header<'d> {
    /// Stored size, full resolution.
    pub width: u32,
    pub height: u32,
    /// Components of the decoded pixels: 1 (gray) or 3 (RGB); others for
    /// colour spaces this path does not take.
    pub components: u32,
    pub jpeg_color_space: i32,
    /// The JFIF resolution, when the file has a JFIF marker.
    pub jfif_density: Option<(u8, u16, u16)>,
    /// The APP1 EXIF payload (with its `Exif\0\0` prefix).
    pub exif: Option<&'d [u8]>,
    /// The ICC profile reassembled from APP2 markers.
    pub icc: Option<&'d [u8]>,
    /// The first APP13 Photoshop resource block (its 8BIM resources), and
    /// how many such markers there are.
    pub photoshop: Option<&'d [u8]>,
    pub photoshop_markers: u32,
    /// An XMP packet names `tiff:` properties (resolution, orientation).
    pub xmp_tiff: bool,
}

/// One JPEG being decoded; `data` must outlive it.
pub struct Decoder<'a> {
    raw: *mut RawDecoder,
    data: &'a [u8],
}

// SAFETY: the decoder owns its libjpeg state; it is used by one thread at a
// time (it is not Sync), and libjpeg keeps no thread-local state.
unsafe impl Send for Decoder<'_> {}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8]) -> Result<Decoder<'a>, String> {
        // SAFETY: plain constructor; null on allocation failure.
        let raw = unsafe { imj_decoder_new() };
        if raw.is_null() {
            return Err("cannot create a JPEG decoder".into());
        }
        Ok(Decoder { raw, data })
    }

    fn message(&self) -> String {
        // SAFETY: the message buffer lives in the decoder and is NUL-terminated
        // (zeroed at creation, written by libjpeg's format_message).
        unsafe { CStr::from_ptr(imj_decoder_message(self.raw)) }
            .to_string_lossy()
            .into_owned()
    }

    /// Warnings libjpeg emitted so far (corrupt data it recovered from).
    pub fn warnings(&self) -> std::os::raw::c_long {
        // SAFETY: valid decoder.
        unsafe { imj_decoder_warnings(self.raw) }
    }

    /// Reads the header (once), for a full-size decode.
    pub fn header(&mut self) -> Result<Header<'_>, String> {
        // SAFETY: plain C data; all-zero is a valid value (null pointers).
        let mut h: RawHeader = unsafe { std::mem::zeroed() };
        // SAFETY: valid decoder; `data` outlives it (the lifetime says so).
        let rc = unsafe { imj_decoder_header(self.raw, self.data.as_ptr(), self.data.len() as c_ulong, &mut h) };
        if rc != 0 {
            return Err(self.message());
        }
        // SAFETY: the marker and ICC buffers live until the decoder is freed,
        // which the returned borrow of `self` outlasts.
        let slice = |p: *const c_uchar, len: c_uint| {
            (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, len as usize) })
        };
        Ok(Header {
            width: h.width,
            height: h.height,
            components: h.components.max(0) as u32,
            jpeg_color_space: h.jpeg_color_space,
            jfif_density: (h.saw_jfif != 0).then_some((h.density_unit as u8, h.x_density as u16, h.y_density as u16)),
            exif: slice(h.exif, h.exif_len),
            icc: slice(h.icc, h.icc_len),
            photoshop: slice(h.photoshop, h.photoshop_len),
            photoshop_markers: h.photoshop_count.max(0) as u32,
            xmp_tiff: h.xmp_tiff != 0,
        })
    }

    /// Asks for a decode at 1/`denom` (libjpeg picks the smallest M/8 at
    /// least that large); returns the size the pixels will have.
    pub fn scale(&mut self, denom: u32) -> Result<(u32, u32), String> {
        let (mut w, mut h) = (0, 0);
        // SAFETY: valid decoder after a successful header(); out-pointers valid.
        let rc = unsafe { imj_decoder_scale(self.raw, denom, &mut w, &mut h) };
        if rc != 0 {
            return Err(self.message());
        }
        Ok((w, h))
    }

    /// Decodes into `pixels` (out_height rows of out_width x components).
    pub fn pixels(&mut self, pixels: &mut [u8]) -> Result<(), String> {
        // SAFETY: valid decoder after a successful header(); the C side checks
        // the buffer's length against the output size.
        let rc = unsafe { imj_decoder_pixels(self.raw, pixels.as_mut_ptr(), pixels.len() as c_ulong) };
        if rc != 0 {
            return Err(self.message());
        }
        Ok(())
    }
}

impl Drop for Decoder<'_> {
    fn drop(&mut self) {
        // SAFETY: created by imj_decoder_new, freed once.
        unsafe { imj_decoder_free(self.raw) }
    }
}

/// How to write a JPEG.
#[derive(Debug, Clone, Copy)]
pub struct EncodeSettings {
    pub quality: u8,
    pub progressive: bool,
    /// (unit, x, y) for the JFIF header; `None` for libjpeg's default (1:1,
    /// no unit), as ImageMagick writes when the image has no resolution.
    pub density: Option<(u8, u16, u16)>,
    /// Sampling factors (h, v of the first three components); `None` for
    /// 4:2:0 below quality 90 and 4:4:4 from it.
    pub sampling: Option<[i32; 6]>,
}

/// Encodes 8-bit gray (1 component) or RGB (3) pixels.
pub fn encode(pixels: &[u8], width: u32, height: u32, components: u32, s: EncodeSettings) -> Result<Vec<u8>, String> {
    assert!(components == 1 || components == 3);
    assert!(pixels.len() >= width as usize * height as usize * components as usize);
    let (unit, x, y) = s.density.unwrap_or((0, 0, 0));
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut len: c_ulong = 0;
    let mut message = [0 as c_char; 200];
    // SAFETY: `pixels` holds height rows of width x components bytes (checked
    // above); out-pointers are valid; the message buffer is 200 bytes, as the
    // C side writes at most.
    let rc = unsafe {
        imj_encode(
            pixels.as_ptr(),
            width,
            height,
            components as c_int,
            c_int::from(s.quality),
            c_int::from(s.progressive),
            c_int::from(unit),
            c_int::from(x),
            c_int::from(y),
            s.sampling.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            &mut out,
            &mut len,
            message.as_mut_ptr(),
        )
    };
    // SAFETY: on success `out` points at `len` bytes malloc'ed by libjpeg's
    // memory destination, freed once by `imj_free`.
    unsafe { take_output(rc, out, len as usize, &message, |p| imj_free(p.cast())) }
}

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn imw_encode(
        rgb: *const c_uchar,
        width: c_int,
        height: c_int,
        quality: c_int,
        method: c_int,
        out: *mut *mut c_uchar,
        out_len: *mut usize,
        message: *mut c_char,
    ) -> c_int;
    fn imw_free(bytes: *mut c_uchar);
}

/// Encodes 8-bit RGB as a lossy WebP of `quality` (`webp.c`: ImageMagick's
/// writer settings).
pub fn encode_webp(rgb: &[u8], width: u32, height: u32, quality: u8) -> Result<Vec<u8>, String> {
    assert!(rgb.len() >= width as usize * height as usize * 3);
    let (w, h) = (c_int::try_from(width), c_int::try_from(height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err("image too large for WebP".into());
    };
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut len = 0usize;
    let mut message = [0 as c_char; 200];
    // SAFETY: `rgb` holds height rows of width x 3 bytes (checked above);
    // the out-pointers are valid; the message buffer is the 200 bytes the C
    // side writes at most.
    let rc = unsafe {
        imw_encode(
            rgb.as_ptr(),
            w,
            h,
            c_int::from(quality),
            c_int::from(crate::pipeline::WEBP_METHOD),
            &mut out,
            &mut len,
            message.as_mut_ptr(),
        )
    };
    // SAFETY: on success `out` points at `len` bytes the C side allocated,
    // freed once by `imw_free`.
    unsafe { take_output(rc, out, len, &message, |p| imw_free(p)) }
}

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn ima_encode(
        pixels: *const c_uchar,
        width: c_int,
        height: c_int,
        components: c_int,
        quality: c_int,
        speed: *const c_char,
        chroma: *const c_char,
        out: *mut *mut c_uchar,
        out_len: *mut usize,
        message: *mut c_char,
    ) -> c_int;
    fn ima_free(bytes: *mut c_uchar);
}

/// Encodes 8-bit RGB (or gray, `components` 1) as a lossy AVIF of
/// `quality` (`avif.c`: ImageMagick's writer settings, `pipeline`'s speed
/// and chroma).
pub fn encode_avif(pixels: &[u8], width: u32, height: u32, components: u32, quality: u8) -> Result<Vec<u8>, String> {
    assert!(components == 1 || components == 3);
    assert!(pixels.len() >= width as usize * height as usize * components as usize);
    let (Ok(w), Ok(h)) = (c_int::try_from(width), c_int::try_from(height)) else {
        return Err("image too large for AVIF".into());
    };
    let speed = std::ffi::CString::new(crate::pipeline::AVIF_SPEED).expect("no NUL");
    let chroma = std::ffi::CString::new(crate::pipeline::AVIF_CHROMA).expect("no NUL");
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut len = 0usize;
    let mut message = [0 as c_char; 200];
    // SAFETY: `pixels` holds height rows of width x components bytes
    // (checked above); the strings are NUL-terminated; the out-pointers are
    // valid; the message buffer is the 200 bytes the C side writes at most.
    let rc = unsafe {
        ima_encode(
            pixels.as_ptr(),
            w,
            h,
            components as c_int,
            c_int::from(quality),
            speed.as_ptr(),
            chroma.as_ptr(),
            &mut out,
            &mut len,
            message.as_mut_ptr(),
        )
    };
    // SAFETY: on success `out` points at `len` bytes the C side allocated,
    // freed once by `ima_free`.
    unsafe { take_output(rc, out, len, &message, |p| ima_free(p)) }
}

unsafe extern "C" {
    #[allow(clippy::too_many_arguments)]
    fn imp_decode(
        data: *const c_uchar,
        len: usize,
        width: c_uint,
        height: c_uint,
        components: c_int,
        rgb: *mut c_uchar,
        rgb_len: usize,
        warnings: *mut c_long,
        message: *mut c_char,
    ) -> c_int;
    fn imp_encode(
        rgb: *const c_uchar,
        width: c_uint,
        height: c_uint,
        components: c_int,
        level: c_int,
        orientation: c_int,
        out: *mut *mut c_uchar,
        out_len: *mut usize,
        message: *mut c_char,
    ) -> c_int;
    fn imp_free(bytes: *mut c_uchar);
}

/// Decodes an 8-bit RGB (`components` 3) or gray (1) PNG of `width` x
/// `height` (vetted by the caller) into `rgb`; returns libpng's warning count.
pub fn decode_png(data: &[u8], width: u32, height: u32, components: u32, rgb: &mut [u8]) -> Result<i64, String> {
    assert!(components == 1 || components == 3);
    let mut warnings: c_long = 0;
    let mut message = [0 as c_char; 200];
    // SAFETY: `data` and `rgb` are valid for their lengths, which the C side
    // is told and checks; the message buffer is the 200 bytes it writes at most.
    let rc = unsafe {
        imp_decode(
            data.as_ptr(),
            data.len(),
            width,
            height,
            components as c_int,
            rgb.as_mut_ptr(),
            rgb.len(),
            &mut warnings,
            message.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(c_message(&message));
    }
    Ok(warnings)
}

/// Encodes 8-bit RGB (`components` 3) or gray (1) as a PNG with
/// ImageMagick's writer settings (`png.c`), with an orNT chunk when
/// `orientation` (an EXIF value) is given.
pub fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
    components: u32,
    orientation: Option<u8>,
) -> Result<Vec<u8>, String> {
    assert!(components == 1 || components == 3);
    assert!(rgb.len() >= width as usize * height as usize * components as usize);
    let mut out: *mut c_uchar = std::ptr::null_mut();
    let mut len = 0usize;
    let mut message = [0 as c_char; 200];
    // SAFETY: `rgb` holds height rows of width x 3 bytes (checked above); the
    // out-pointers are valid; the message buffer is 200 bytes.
    let rc = unsafe {
        imp_encode(
            rgb.as_ptr(),
            width,
            height,
            components as c_int,
            c_int::from(crate::pipeline::PNG_LEVEL),
            c_int::from(orientation.unwrap_or(0)),
            &mut out,
            &mut len,
            message.as_mut_ptr(),
        )
    };
    // SAFETY: on success `out` points at `len` bytes the C side allocated,
    // freed once by `imp_free`.
    unsafe { take_output(rc, out, len, &message, |p| imp_free(p)) }
}
