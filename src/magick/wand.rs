//! A small RAII wrapper over the raw MagickWand C API. magick_rust's safe
//! wrapper keeps its pointer private, and a deadline needs
//! `MagickSetProgressMonitor` on that pointer, so this module owns its wands.
//! Every `unsafe` block of the crate that touches ImageMagick is here.

use crate::pipeline::ops::Size;
use magick_rust::bindings as im;
use std::cell::Cell;
use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::time::Instant;

/// An ImageMagick failure: its severity code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (severity {severity})")]
pub struct WandError {
    pub severity: u32,
    pub message: String,
    /// The progress monitor stopped the operation at the deadline.
    pub deadline: bool,
}

/// State the progress monitor reads; boxed so its address is stable while
/// ImageMagick holds it.
struct Deadline {
    at: Instant,
    hit: Cell<bool>,
}

pub struct Wand {
    ptr: NonNull<im::MagickWand>,
    deadline: Box<Deadline>,
}

// SAFETY: a MagickWand may move between threads; it is never shared (not Sync).
unsafe impl Send for Wand {}

/// Called by ImageMagick for every row or chunk of a long operation; answering
/// false makes the operation stop with an error. This is how a job meets its
/// deadline without ImageMagick's process-wide `time` limit.
unsafe extern "C" fn progress(
    _tag: *const c_char,
    _offset: im::MagickOffsetType,
    _extent: im::MagickSizeType,
    client: *mut c_void,
) -> im::MagickBooleanType {
    // SAFETY: `client` is the `Deadline` box owned by the wand that registered
    // this monitor; it lives as long as the wand and its images.
    let deadline = unsafe { &*(client as *const Deadline) };
    if Instant::now() >= deadline.at {
        deadline.hit.set(true);
        im::MagickBooleanType::MagickFalse
    } else {
        im::MagickBooleanType::MagickTrue
    }
}

fn ok(b: im::MagickBooleanType) -> bool {
    b == im::MagickBooleanType::MagickTrue
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).expect("NULs removed")
}

impl Wand {
    /// A new wand whose long operations stop at `deadline`.
    pub fn new(deadline: Instant) -> Wand {
        // SAFETY: NewMagickWand has no preconditions beyond genesis (done in `magick::init`).
        let ptr = NonNull::new(unsafe { im::NewMagickWand() }).expect("NewMagickWand returned null (out of memory)");
        let deadline = Box::new(Deadline {
            at: deadline,
            hit: Cell::new(false),
        });
        // SAFETY: the wand is valid; the client data outlives it (dropped after DestroyMagickWand).
        unsafe {
            im::MagickSetProgressMonitor(
                ptr.as_ptr(),
                Some(progress),
                &*deadline as *const Deadline as *mut c_void,
            );
        }
        Wand { ptr, deadline }
    }

    fn raw(&self) -> *mut im::MagickWand {
        self.ptr.as_ptr()
    }

    /// The wand's pending exception, cleared.
    fn error(&self) -> WandError {
        let mut severity = im::ExceptionType::UndefinedException;
        // SAFETY: valid wand; the returned string is owned by us and relinquished below.
        let message = unsafe {
            let text = im::MagickGetException(self.raw(), &mut severity);
            let message = if text.is_null() {
                String::new()
            } else {
                let m = CStr::from_ptr(text).to_string_lossy().into_owned();
                im::MagickRelinquishMemory(text as *mut c_void);
                m
            };
            im::MagickClearException(self.raw());
            message
        };
        WandError {
            severity: severity as u32,
            message: if message.is_empty() {
                "ImageMagick failed without a message".into()
            } else {
                message
            },
            deadline: self.deadline.hit.get(),
        }
    }

    fn check(&self, status: im::MagickBooleanType) -> Result<(), WandError> {
        if ok(status) { Ok(()) } else { Err(self.error()) }
    }

    /// Whether the deadline has passed (checked between steps).
    pub fn past_deadline(&self) -> bool {
        self.deadline.hit.get() || Instant::now() >= self.deadline.at
    }

    /// Sets a coder option such as `jpeg:size`; must precede reading.
    pub fn set_option(&mut self, key: &str, value: &str) -> Result<(), WandError> {
        let (k, v) = (cstring(key), cstring(value));
        // SAFETY: valid wand and NUL-terminated strings that outlive the call.
        self.check(unsafe { im::MagickSetOption(self.raw(), k.as_ptr(), v.as_ptr()) })
    }

    /// Tells ImageMagick which coder to use for the next read, so it never
    /// guesses from content or a name.
    fn set_coder(&mut self, coder: &str) -> Result<(), WandError> {
        let name = cstring(&format!("{coder}:"));
        // SAFETY: valid wand and string.
        self.check(unsafe { im::MagickSetFilename(self.raw(), name.as_ptr()) })
    }

    /// Reads only the header(s): dimensions, frames and orientation, no pixels.
    pub fn ping(&mut self, blob: &[u8], coder: &str) -> Result<(), WandError> {
        self.set_coder(coder)?;
        // SAFETY: `blob` is valid for its length during the call.
        self.check(unsafe { im::MagickPingImageBlob(self.raw(), blob.as_ptr() as *const c_void, blob.len()) })
    }

    pub fn read(&mut self, blob: &[u8], coder: &str) -> Result<(), WandError> {
        self.set_coder(coder)?;
        // SAFETY: as for `ping`.
        self.check(unsafe { im::MagickReadImageBlob(self.raw(), blob.as_ptr() as *const c_void, blob.len()) })
    }

    pub fn frames(&self) -> usize {
        // SAFETY: valid wand.
        unsafe { im::MagickGetNumberImages(self.raw()) }
    }

    /// Size of the current frame as stored (before orientation).
    pub fn size(&self) -> Size {
        // SAFETY: valid wand; 0 when it holds no image.
        let (w, h) = unsafe {
            (
                im::MagickGetImageWidth(self.raw()),
                im::MagickGetImageHeight(self.raw()),
            )
        };
        Size::new(w.min(u32::MAX as usize) as u32, h.min(u32::MAX as usize) as u32)
    }

    /// Whether the EXIF orientation swaps width and height (orientations 5-8).
    pub fn orientation_swaps_sides(&self) -> bool {
        // SAFETY: valid wand.
        let o = unsafe { im::MagickGetImageOrientation(self.raw()) } as u32;
        (5..=8).contains(&o)
    }

    /// Keeps only the first frame.
    pub fn keep_first_frame(&mut self) -> Result<(), WandError> {
        while self.frames() > 1 {
            let last = (self.frames() - 1) as isize;
            // SAFETY: valid wand and an index within the list.
            unsafe {
                self.check(im::MagickSetIteratorIndex(self.raw(), last))?;
                self.check(im::MagickRemoveImage(self.raw()))?;
            }
        }
        // SAFETY: valid wand.
        unsafe { im::MagickResetIterator(self.raw()) };
        Ok(())
    }

    pub fn auto_orient(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickAutoOrientImage(self.raw()) })
    }

    pub fn resize(&mut self, size: Size, filter: im::FilterType) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickResizeImage(self.raw(), size.width as usize, size.height as usize, filter) })
    }

    pub fn crop(&mut self, x: u32, y: u32, size: Size) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe {
            im::MagickCropImage(
                self.raw(),
                size.width as usize,
                size.height as usize,
                x as isize,
                y as isize,
            )
        })?;
        // Forget the virtual canvas so later offsets and GIF/PNG output start at 0,0.
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImagePage(self.raw(), size.width as usize, size.height as usize, 0, 0) })
    }

    pub fn flip(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickFlipImage(self.raw()) })
    }

    pub fn flop(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickFlopImage(self.raw()) })
    }

    pub fn rotate(&mut self, degrees: f64, background: &str) -> Result<(), WandError> {
        // SAFETY: valid wand and a live pixel wand.
        let status = self.with_color(background, |w, pixel| unsafe {
            im::MagickRotateImage(w.raw(), pixel, degrees)
        })?;
        self.check(status)?;
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImagePage(self.raw(), 0, 0, 0, 0) })
    }

    pub fn grayscale(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickTransformImageColorspace(self.raw(), im::ColorspaceType::GRAY) })
    }

    pub fn blur(&mut self, sigma: f64) -> Result<(), WandError> {
        // SAFETY: valid wand; radius 0 lets ImageMagick choose it from sigma.
        self.check(unsafe { im::MagickBlurImage(self.raw(), 0.0, sigma) })
    }

    pub fn sharpen(&mut self, sigma: f64) -> Result<(), WandError> {
        // SAFETY: valid wand; radius 0 lets ImageMagick choose it from sigma.
        self.check(unsafe { im::MagickSharpenImage(self.raw(), 0.0, sigma) })
    }

    pub fn sepia(&mut self, percent: f64) -> Result<(), WandError> {
        // Q16 build: QuantumRange is 65535.
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSepiaToneImage(self.raw(), percent / 100.0 * 65535.0) })
    }

    pub fn trim(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickTrimImage(self.raw(), 0.0) })?;
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickResetImagePage(self.raw(), std::ptr::null()) })
    }

    pub fn set_resolution(&mut self, x: f64, y: f64, per_cm: bool) -> Result<(), WandError> {
        let units = if per_cm {
            im::ResolutionType::PixelsPerCentimeter
        } else {
            im::ResolutionType::PixelsPerInch
        };
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetImageUnits(self.raw(), units))?;
            self.check(im::MagickSetImageResolution(self.raw(), x, y))
        }
    }

    /// Sets an image artifact (a per-image coder hint such as `png:exclude-chunk`).
    pub fn set_artifact(&mut self, key: &str, value: &str) -> Result<(), WandError> {
        let (k, v) = (cstring(key), cstring(value));
        // SAFETY: valid wand and strings.
        self.check(unsafe { im::MagickSetImageArtifact(self.raw(), k.as_ptr(), v.as_ptr()) })
    }

    pub fn strip(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickStripImage(self.raw()) })
    }

    /// Whether the current image has an alpha channel.
    pub fn has_alpha(&self) -> bool {
        // SAFETY: valid wand.
        ok(unsafe { im::MagickGetImageAlphaChannel(self.raw()) })
    }

    /// Runs `f` with a pixel wand of `color`, created and destroyed here.
    fn with_color<T>(
        &mut self,
        color: &str,
        f: impl FnOnce(&mut Self, *mut im::PixelWand) -> T,
    ) -> Result<T, WandError> {
        let c = cstring(color);
        // SAFETY: the pixel wand lives for the duration of `f` only.
        unsafe {
            let pixel = im::NewPixelWand();
            if pixel.is_null() {
                return Err(WandError {
                    severity: 0,
                    message: "out of memory".into(),
                    deadline: false,
                });
            }
            im::PixelSetColor(pixel, c.as_ptr());
            let result = f(self, pixel);
            im::DestroyPixelWand(pixel);
            Ok(result)
        }
    }

    /// Composes the image over `color` and drops alpha (for formats without it).
    pub fn flatten_onto(&mut self, color: &str) -> Result<(), WandError> {
        // SAFETY: valid wand and a live pixel wand.
        let status = self.with_color(color, |w, pixel| unsafe {
            im::MagickSetImageBackgroundColor(w.raw(), pixel)
        })?;
        self.check(status)?;
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetImageAlphaChannel(
                self.raw(),
                im::AlphaChannelOption::Remove,
            ))?;
            self.check(im::MagickSetImageAlphaChannel(self.raw(), im::AlphaChannelOption::Off))
        }
    }

    /// Sets the output format. The wand's filename carries the coder used for
    /// reading (`JPEG:`) and would win over the image's format when encoding,
    /// so both are set.
    pub fn set_format(&mut self, coder: &str) -> Result<(), WandError> {
        let f = cstring(coder);
        // SAFETY: valid wand and string.
        self.check(unsafe { im::MagickSetImageFormat(self.raw(), f.as_ptr()) })?;
        self.set_coder(coder)
    }

    pub fn set_quality(&mut self, quality: u8) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImageCompressionQuality(self.raw(), usize::from(quality)) })
    }

    /// Encodes the current image list in its format.
    pub fn encode(&mut self) -> Result<Vec<u8>, WandError> {
        let mut len = 0usize;
        // SAFETY: valid wand; the returned buffer is copied then relinquished.
        unsafe {
            let data = im::MagickGetImagesBlob(self.raw(), &mut len);
            if data.is_null() {
                return Err(self.error());
            }
            let bytes = std::slice::from_raw_parts(data, len).to_vec();
            im::MagickRelinquishMemory(data as *mut c_void);
            Ok(bytes)
        }
    }
}

impl Drop for Wand {
    fn drop(&mut self) {
        // SAFETY: the pointer came from NewMagickWand and is destroyed once.
        unsafe {
            im::DestroyMagickWand(self.raw());
        }
    }
}
