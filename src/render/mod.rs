//! The shared vocabulary of the executors (`magick`, `fast`): a job, what
//! rendering it gives back and how it fails, the worker pool they run on,
//! the pixel-cache budget they reserve from, and the limits they all check.
//! Neither executor calls the other: the service's job runner picks.

pub mod budget;
mod error;
mod job;
mod limits;
pub mod pool;

pub use error::JobError;
pub use job::{Job, Rendered, Source};
pub use limits::{BYTES_PER_PIXEL, area, check_decode_fits, check_limits, check_result_area, decoder_bytes_per_pixel};
pub use pool::{JobResult, Outcome, Pool, Slot, SubmitError};
