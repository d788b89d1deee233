//! A small RAII wrapper over the raw MagickWand C API. magick_rust's safe
//! wrapper keeps its pointer private, and a deadline needs
//! `MagickSetProgressMonitor` on that pointer, so this module owns its wands.
//! Every call on a wand is here; the process-wide calls (genesis, resource
//! limits and counters, version) are in `magick/mod.rs` and the security
//! policy in `magick/policy.rs`.

use crate::pipeline::ops::{Color, Dpi, Size};
use magick_rust::bindings as im;
use std::ffi::{CStr, CString, c_char, c_void};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// Set by the progress monitor, which ImageMagick may call from any
    /// thread it runs the operation on.
    hit: AtomicBool,
}

/// An image's mirror images (`Wand::mirrors`).
pub struct Mirrors {
    flopped: Wand,
    flipped: Wand,
    both: Wand,
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
        deadline.hit.store(true, Ordering::Relaxed);
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
            hit: AtomicBool::new(false),
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

    /// Points the progress monitor of the wand and of every image it holds at
    /// this wand's deadline. Images copied from another wand carry that wand's
    /// monitor and client data; after this they no longer refer to it.
    fn own_monitors(&mut self) {
        let client = &*self.deadline as *const Deadline as *mut c_void;
        // SAFETY: valid wand; `client` lives as long as `self` (boxed, dropped after the wand).
        unsafe {
            im::MagickSetProgressMonitor(self.raw(), Some(progress), client);
            im::MagickResetIterator(self.raw());
            while ok(im::MagickNextImage(self.raw())) {
                im::MagickSetImageProgressMonitor(self.raw(), Some(progress), client);
            }
            im::MagickResetIterator(self.raw());
        }
    }

    /// An independent copy of the wand and its images, with its own deadline
    /// state (same deadline).
    pub fn duplicate(&self) -> Wand {
        // SAFETY: valid wand; the copy is owned by the returned value.
        let ptr = NonNull::new(unsafe { im::CloneMagickWand(self.raw()) }).expect("CloneMagickWand returned null");
        let mut copy = Wand {
            ptr,
            deadline: Box::new(Deadline {
                at: self.deadline.at,
                hit: AtomicBool::new(false),
            }),
        };
        copy.own_monitors();
        copy
    }

    /// Replaces the wand's images with those of `ptr` (a wand ImageMagick
    /// returned), destroying the old ones.
    fn adopt(&mut self, ptr: *mut im::MagickWand) -> Result<(), WandError> {
        let Some(ptr) = NonNull::new(ptr) else {
            return Err(self.error());
        };
        // SAFETY: the old pointer came from ImageMagick and is destroyed once.
        unsafe { im::DestroyMagickWand(self.raw()) };
        self.ptr = ptr;
        self.own_monitors();
        Ok(())
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
            deadline: self.deadline.hit.load(Ordering::Relaxed),
        }
    }

    fn check(&self, status: im::MagickBooleanType) -> Result<(), WandError> {
        if ok(status) { Ok(()) } else { Err(self.error()) }
    }

    /// Whether the deadline has passed (checked between steps).
    pub fn past_deadline(&self) -> bool {
        self.deadline.hit.load(Ordering::Relaxed) || Instant::now() >= self.deadline.at
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
        self.set_filename(&format!("{coder}:"))
    }

    fn set_filename(&mut self, name: &str) -> Result<(), WandError> {
        let name = cstring(name);
        // SAFETY: valid wand and string.
        self.check(unsafe { im::MagickSetFilename(self.raw(), name.as_ptr()) })
    }

    /// Reads only the header(s): dimensions, frames and orientation, no pixels.
    pub fn ping(&mut self, blob: &[u8], coder: &str) -> Result<(), WandError> {
        self.set_coder(coder)?;
        // SAFETY: `blob` is valid for its length during the call.
        self.check(unsafe { im::MagickPingImageBlob(self.raw(), blob.as_ptr() as *const c_void, blob.len()) })?;
        // Reading leaves the wand at its last frame; the facts callers ask
        // for (size, orientation) are the first frame's.
        // SAFETY: valid wand.
        unsafe { im::MagickResetIterator(self.raw()) };
        Ok(())
    }

    /// Reads only the first frame or page (`CODER:[0]`: coders stop after
    /// the scenes asked for, so later frames cost nothing).
    pub fn read_first_frame(&mut self, blob: &[u8], coder: &str) -> Result<(), WandError> {
        self.set_filename(&format!("{coder}:[0]"))?;
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

    /// The EXIF orientation as ImageMagick read it (1-8; 0 when undefined).
    pub fn orientation(&self) -> u32 {
        // SAFETY: valid wand.
        unsafe { im::MagickGetImageOrientation(self.raw()) as u32 }
    }

    /// Bits per channel as stored.
    pub fn depth(&self) -> usize {
        // SAFETY: valid wand.
        unsafe { im::MagickGetImageDepth(self.raw()) }
    }

    /// The current frame's pixels as 8-bit RGBA, row by row.
    pub fn export_rgba8(&self) -> Result<Vec<u8>, WandError> {
        let size = self.size();
        let mut pixels = vec![0u8; size.width as usize * size.height as usize * 4];
        let map = cstring("RGBA");
        // SAFETY: valid wand; `pixels` holds width x height x 4 bytes, what
        // an 8-bit RGBA export of the whole frame writes.
        self.check(unsafe {
            im::MagickExportImagePixels(
                self.raw(),
                0,
                0,
                size.width as usize,
                size.height as usize,
                map.as_ptr(),
                im::StorageType::CharPixel,
                pixels.as_mut_ptr() as *mut c_void,
            )
        })?;
        Ok(pixels)
    }

    /// Whether the EXIF orientation swaps width and height (orientations 5-8).
    pub fn orientation_swaps_sides(&self) -> bool {
        // SAFETY: valid wand.
        let o = unsafe { im::MagickGetImageOrientation(self.raw()) } as u32;
        (5..=8).contains(&o)
    }

    /// Reads every frame or page.
    pub fn read_all(&mut self, blob: &[u8], coder: &str) -> Result<(), WandError> {
        self.set_coder(coder)?;
        // SAFETY: as for `ping`.
        self.check(unsafe { im::MagickReadImageBlob(self.raw(), blob.as_ptr() as *const c_void, blob.len()) })
    }

    /// Replaces the frames with full-canvas frames: each one as it is shown,
    /// after the previous frames' disposal (ImageMagick's `-coalesce`).
    pub fn coalesce(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand; the returned wand is adopted.
        let coalesced = unsafe { im::MagickCoalesceImages(self.raw()) };
        self.adopt(coalesced)
    }

    /// Replaces full-canvas frames with the smallest changed rectangles
    /// (`-layers optimize`), for GIF output.
    pub fn optimize_layers(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand; the returned wand is adopted.
        let optimized = unsafe { im::MagickOptimizeImageLayers(self.raw()) };
        self.adopt(optimized)?;
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickOptimizeImageTransparency(self.raw()) })
    }

    /// Reduces every frame to at most `colors` colours with one palette for
    /// the whole list, dithered once, then marks each frame so that an
    /// encoder that quantizes again (GIF's writer does, frame by frame)
    /// does it without dithering. ImageMagick's dither cache is 128 MiB
    /// (2^24 entries) cleared on every quantization: allocated per frame it
    /// cost about 0.09 s of mostly kernel time per frame, whatever the size.
    pub fn quantize_all(&mut self, colors: usize) -> Result<(), WandError> {
        // SAFETY: valid wand; plain values.
        self.check(unsafe {
            im::MagickQuantizeImages(
                self.raw(),
                colors,
                im::ColorspaceType::sRGB,
                0,
                im::DitherMethod::Riemersma,
                im::MagickBooleanType::MagickFalse,
            )
        })?;
        self.undithered()
    }

    /// Marks every frame so that a later quantization does not dither (and
    /// allocates no dither cache).
    pub fn undithered(&mut self) -> Result<(), WandError> {
        self.each_frame(|f| f.set_artifact("dither", "None"))
    }

    /// A new wand holding a copy of frame `index`, with its own deadline state.
    pub fn frame(&self, index: usize) -> Result<Wand, WandError> {
        // SAFETY: valid wand; the index is checked by ImageMagick; the copy
        // is owned by the returned value.
        unsafe {
            self.check(im::MagickSetIteratorIndex(self.raw(), index as isize))?;
            let Some(ptr) = NonNull::new(im::MagickGetImage(self.raw())) else {
                return Err(self.error());
            };
            let mut copy = Wand {
                ptr,
                deadline: Box::new(Deadline {
                    at: self.deadline.at,
                    hit: AtomicBool::new(false),
                }),
            };
            copy.own_monitors();
            Ok(copy)
        }
    }

    /// Appends copies of `other`'s images after this wand's.
    pub fn append(&mut self, other: &Wand) -> Result<(), WandError> {
        // SAFETY: both wands are valid; ImageMagick copies the images.
        unsafe {
            im::MagickSetLastIterator(self.raw());
            self.check(im::MagickAddImage(self.raw(), other.raw()))?;
        }
        // The copies carry `other`'s progress monitor, whose client data
        // (`other`'s deadline) dies with `other`: point them at ours.
        self.own_monitors();
        Ok(())
    }

    /// The current frame's delay, in ticks per second of its ticks-per-second.
    pub fn delay(&self) -> (usize, usize) {
        // SAFETY: valid wand.
        unsafe {
            (
                im::MagickGetImageDelay(self.raw()),
                im::MagickGetImageTicksPerSecond(self.raw()),
            )
        }
    }

    pub fn set_delay(&mut self, (delay, ticks): (usize, usize)) -> Result<(), WandError> {
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetImageDelay(self.raw(), delay))?;
            self.check(im::MagickSetImageTicksPerSecond(self.raw(), ticks as isize))
        }
    }

    /// The loop count (0: forever) of the current frame (GIF and WebP keep it on the first).
    pub fn iterations(&self) -> usize {
        // SAFETY: valid wand.
        unsafe { im::MagickGetImageIterations(self.raw()) }
    }

    /// Sets the loop count on every frame.
    pub fn set_iterations(&mut self, iterations: usize) -> Result<(), WandError> {
        self.each_frame(|frame| {
            // SAFETY: valid wand.
            frame.check(unsafe { im::MagickSetImageIterations(frame.raw(), iterations) })
        })
    }

    /// Drops the current frame's virtual canvas offset (`+repage`).
    pub fn repage(&mut self) -> Result<(), WandError> {
        let size = self.size();
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImagePage(self.raw(), size.width as usize, size.height as usize, 0, 0) })
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
        self.reset_page(size)
    }

    /// Forgets the virtual canvas of a `size` image, so later offsets and
    /// GIF/PNG output start at 0,0.
    fn reset_page(&mut self, size: Size) -> Result<(), WandError> {
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

    pub fn rotate(&mut self, degrees: f64, background: Color) -> Result<(), WandError> {
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

    /// Records a resolution in pixels per inch.
    pub fn set_resolution(&mut self, dpi: Dpi) -> Result<(), WandError> {
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetImageUnits(self.raw(), im::ResolutionType::PixelsPerInch))?;
            self.check(im::MagickSetImageResolution(self.raw(), dpi.x, dpi.y))
        }
    }

    /// Records a resolution in the image's own units (`-density` on a read).
    pub fn set_resolution_keeping_units(&mut self, dpi: Dpi) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImageResolution(self.raw(), dpi.x, dpi.y) })
    }

    /// The recorded resolution in dots per inch; 72 when none is recorded.
    pub fn resolution(&self) -> Dpi {
        let (mut x, mut y) = (0.0, 0.0);
        // SAFETY: valid wand and out-pointers.
        let (found, units) = unsafe {
            (
                ok(im::MagickGetImageResolution(self.raw(), &mut x, &mut y)),
                im::MagickGetImageUnits(self.raw()),
            )
        };
        if !(found && x > 0.0 && y > 0.0 && x.is_finite() && y.is_finite()) {
            return Dpi::DEFAULT;
        }
        let scale = if units == im::ResolutionType::PixelsPerCentimeter {
            2.54
        } else {
            1.0
        };
        Dpi {
            x: x * scale,
            y: y * scale,
        }
    }

    /// Scales the pixels to a new resolution, keeping the printed size.
    pub fn resample(&mut self, dpi: Dpi, filter: im::FilterType) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickResampleImage(self.raw(), dpi.x, dpi.y, filter) })
    }

    /// Sets the colour that extending and alpha removal fill with.
    pub fn set_background(&mut self, color: Color) -> Result<(), WandError> {
        // SAFETY: valid wand and a live pixel wand.
        let status = self.with_color(color, |w, pixel| unsafe {
            im::MagickSetImageBackgroundColor(w.raw(), pixel)
        })?;
        self.check(status)
    }

    /// A `size` canvas in the background colour whose top-left corner lies at
    /// (`x`,`y`) in the image's coordinates, the image kept in place.
    pub fn extent(&mut self, size: Size, x: i64, y: i64, background: Color) -> Result<(), WandError> {
        self.set_background(background)?;
        // SAFETY: valid wand.
        self.check(unsafe {
            im::MagickExtentImage(
                self.raw(),
                size.width as usize,
                size.height as usize,
                x as isize,
                y as isize,
            )
        })?;
        self.reset_page(size)
    }

    /// Lays `source` over this image at (`x`,`y`) with `operator`.
    pub fn composite(
        &mut self,
        source: &Wand,
        operator: im::CompositeOperator,
        x: i64,
        y: i64,
    ) -> Result<(), WandError> {
        // SAFETY: two valid wands; `source` is only read.
        self.check(unsafe {
            im::MagickCompositeImage(
                self.raw(),
                source.raw(),
                operator,
                im::MagickBooleanType::MagickTrue,
                x as isize,
                y as isize,
            )
        })
    }

    /// Mirror images of this one, for a bleed laid around it (`lay_mirrors`).
    pub fn mirrors(&self) -> Result<Mirrors, WandError> {
        let mut flopped = self.duplicate();
        flopped.flop()?;
        let mut flipped = self.duplicate();
        flipped.flip()?;
        let mut both = flipped.duplicate();
        both.flop()?;
        Ok(Mirrors { flopped, flipped, both })
    }

    /// Lays `m` (mirrors of an `inner`-sized image that now sits at
    /// (`bx`,`by`)) around it: flopped left and right, flipped above and
    /// below, both at the corners.
    pub fn lay_mirrors(
        &mut self,
        m: &Mirrors,
        inner: Size,
        (bx, by): (i64, i64),
        operator: im::CompositeOperator,
    ) -> Result<(), WandError> {
        let (w, h) = (i64::from(inner.width), i64::from(inner.height));
        for (image, x, y) in [
            (&m.flopped, bx - w, by),
            (&m.flopped, bx + w, by),
            (&m.flipped, bx, by - h),
            (&m.flipped, bx, by + h),
            (&m.both, bx - w, by - h),
            (&m.both, bx + w, by - h),
            (&m.both, bx - w, by + h),
            (&m.both, bx + w, by + h),
        ] {
            self.composite(image, operator, x, y)?;
        }
        Ok(())
    }

    /// Fills the image with `tile` repeated from the top-left corner.
    pub fn texture(&mut self, tile: &Wand) -> Result<(), WandError> {
        // SAFETY: two valid wands; the result is a new wand we adopt.
        let result = unsafe { im::MagickTextureImage(self.raw(), tile.raw()) };
        self.adopt(result)
    }

    /// Removes `x` columns and `y` rows from every edge.
    pub fn shave(&mut self, x: u32, y: u32) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickShaveImage(self.raw(), x as usize, y as usize) })?;
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickResetImagePage(self.raw(), std::ptr::null()) })
    }

    pub fn set_alpha(&mut self, mode: im::AlphaChannelOption) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImageAlphaChannel(self.raw(), mode) })
    }

    pub fn transform_colorspace(&mut self, space: im::ColorspaceType) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickTransformImageColorspace(self.raw(), space) })
    }

    pub fn colorspace(&self) -> im::ColorspaceType {
        // SAFETY: valid wand.
        unsafe { im::MagickGetImageColorspace(self.raw()) }
    }

    /// Sets the compression on the image and on the wand's write settings
    /// (coders read one or the other).
    pub fn set_compression(&mut self, compression: im::CompressionType) -> Result<(), WandError> {
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetCompression(self.raw(), compression))?;
            self.check(im::MagickSetImageCompression(self.raw(), compression))
        }
    }

    /// Progressive JPEG, interlaced PNG/GIF.
    pub fn set_interlace(&mut self) -> Result<(), WandError> {
        // SAFETY: valid wand.
        unsafe {
            self.check(im::MagickSetInterlaceScheme(self.raw(), im::InterlaceType::Plane))?;
            self.check(im::MagickSetImageInterlaceScheme(self.raw(), im::InterlaceType::Plane))
        }
    }

    /// Applies an ICC profile: converts from the current (embedded or assumed)
    /// profile to `icc`, or assigns it when the image has none.
    pub fn apply_profile(&mut self, icc: &[u8]) -> Result<(), WandError> {
        let name = cstring("icc");
        // SAFETY: valid wand; `icc` is valid for its length during the call.
        self.check(unsafe {
            im::MagickProfileImage(self.raw(), name.as_ptr(), icc.as_ptr() as *const c_void, icc.len())
        })
    }

    /// A copy of the embedded ICC profile, if any.
    pub fn icc_profile(&self) -> Option<Vec<u8>> {
        self.profile("icc")
    }

    /// A copy of an embedded profile (`icc`, `exif`, `xmp`, ...), if any.
    pub fn profile(&self, name: &str) -> Option<Vec<u8>> {
        let name = cstring(name);
        let mut len = 0usize;
        // SAFETY: valid wand; the returned buffer is copied then relinquished.
        unsafe {
            let data = im::MagickGetImageProfile(self.raw(), name.as_ptr(), &mut len);
            if data.is_null() {
                return None;
            }
            let bytes = std::slice::from_raw_parts(data, len).to_vec();
            im::MagickRelinquishMemory(data as *mut c_void);
            (!bytes.is_empty()).then_some(bytes)
        }
    }

    /// Removes an embedded profile without touching the pixels.
    pub fn remove_profile(&mut self, name: &str) {
        let name = cstring(name);
        let mut len = 0usize;
        // SAFETY: valid wand; the removed profile's copy is relinquished.
        unsafe {
            let data = im::MagickRemoveImageProfile(self.raw(), name.as_ptr(), &mut len);
            if !data.is_null() {
                im::MagickRelinquishMemory(data as *mut c_void);
            }
        }
    }

    /// Bits per channel the image is written with.
    pub fn set_depth(&mut self, depth: u8) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImageDepth(self.raw(), usize::from(depth)) })
    }

    /// Runs `f` on every frame in turn (ImageMagick's per-image calls act on
    /// the current frame), then rewinds.
    pub fn each_frame(&mut self, mut f: impl FnMut(&mut Wand) -> Result<(), WandError>) -> Result<(), WandError> {
        // SAFETY: valid wand; iterating its image list.
        unsafe { im::MagickResetIterator(self.raw()) };
        let mut result = Ok(());
        // SAFETY: as above.
        while result.is_ok() && ok(unsafe { im::MagickNextImage(self.raw()) }) {
            result = f(self);
        }
        // SAFETY: as above.
        unsafe { im::MagickResetIterator(self.raw()) };
        result
    }

    /// Embeds an ICC profile without converting the pixels.
    pub fn set_icc_profile(&mut self, icc: &[u8]) -> Result<(), WandError> {
        self.set_profile("icc", icc)
    }

    /// Embeds a profile (`exif`, `icc`, ...) as it is.
    pub fn set_profile(&mut self, name: &str, data: &[u8]) -> Result<(), WandError> {
        let name = cstring(name);
        // SAFETY: valid wand; `data` is valid for its length during the call.
        self.check(unsafe {
            im::MagickSetImageProfile(self.raw(), name.as_ptr(), data.as_ptr() as *const c_void, data.len())
        })
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
        color: Color,
        f: impl FnOnce(&mut Self, *mut im::PixelWand) -> T,
    ) -> Result<T, WandError> {
        let fail = |message: &str| WandError {
            severity: 0,
            message: message.into(),
            deadline: false,
        };
        // `#rrggbbaa`: parsed and validated by the pipeline.
        let c = cstring(&color.to_string());
        // SAFETY: the pixel wand lives for the duration of `f` only.
        unsafe {
            let pixel = im::NewPixelWand();
            if pixel.is_null() {
                return Err(fail("out of memory"));
            }
            if !ok(im::PixelSetColor(pixel, c.as_ptr())) {
                im::DestroyPixelWand(pixel);
                return Err(fail("ImageMagick refused a colour"));
            }
            let result = f(self, pixel);
            im::DestroyPixelWand(pixel);
            Ok(result)
        }
    }

    /// Composes the image over `color` and drops alpha (for formats without it).
    pub fn flatten_onto(&mut self, color: Color) -> Result<(), WandError> {
        self.set_background(color)?;
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

    /// Sets the quality the encoder reads. Coders differ in where they read
    /// it: JPEG and WebP take the image's, AVIF/HEIC (libheif) and PNG only
    /// the wand's `ImageInfo` (without it libheif used its own default, 50,
    /// whatever the plan said), so both are set.
    pub fn set_quality(&mut self, quality: u8) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetImageCompressionQuality(self.raw(), usize::from(quality)) })?;
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetCompressionQuality(self.raw(), usize::from(quality)) })
    }

    // The original dialect's calls (`magick::original`): ImageMagick's own
    // behaviour, with no repage or background choice of ours.

    /// `MagickCropImage` as it is: negative offsets clip, the page is kept.
    pub fn crop_raw(&mut self, width: usize, height: usize, x: i64, y: i64) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickCropImage(self.raw(), width, height, x as isize, y as isize) })
    }

    /// `MagickExtentImage` in the image's own background colour.
    pub fn extent_raw(&mut self, width: usize, height: usize, x: i64, y: i64) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickExtentImage(self.raw(), width, height, x as isize, y as isize) })
    }

    /// `MagickTrimImage` with a fuzz in quantum units; the page is kept.
    pub fn trim_fuzz(&mut self, fuzz: f64) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickTrimImage(self.raw(), fuzz) })
    }

    pub fn set_gravity(&mut self, gravity: im::GravityType) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSetGravity(self.raw(), gravity) })
    }

    /// The background colour from any colour ImageMagick knows by name or
    /// notation (`red`, `#ff000080`, `rgb(1,2,3)`); an unknown one is an error.
    pub fn set_background_text(&mut self, color: &str) -> Result<(), WandError> {
        let c = cstring(color);
        // SAFETY: the pixel wand lives for this block only.
        unsafe {
            let pixel = im::NewPixelWand();
            if pixel.is_null() {
                return Err(self.error());
            }
            if !ok(im::PixelSetColor(pixel, c.as_ptr())) {
                im::DestroyPixelWand(pixel);
                return Err(WandError {
                    severity: 0,
                    message: format!("unrecognized color `{color}`"),
                    deadline: false,
                });
            }
            let status = im::MagickSetImageBackgroundColor(self.raw(), pixel);
            im::DestroyPixelWand(pixel);
            self.check(status)
        }
    }

    /// `MagickSepiaToneImage` with a threshold in quantum units.
    pub fn sepia_threshold(&mut self, threshold: f64) -> Result<(), WandError> {
        // SAFETY: valid wand.
        self.check(unsafe { im::MagickSepiaToneImage(self.raw(), threshold) })
    }

    /// The resolution as recorded (0 when none), in the recorded units.
    pub fn raw_resolution(&self) -> (f64, f64) {
        let (mut x, mut y) = (0.0, 0.0);
        // SAFETY: valid wand and out-pointers.
        unsafe { im::MagickGetImageResolution(self.raw(), &mut x, &mut y) };
        (x, y)
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
