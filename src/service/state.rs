//! The service's shared state, and the one job runner: every plan, upload
//! check and info request of both front ends reaches the worker pool
//! through `Shared::run_job`.

use crate::cache::ResultCache;
use crate::config::Settings;
use crate::error::ApiError;
use crate::magick;
use crate::memory::MemoryState;
use crate::memory::report::{MemoryReport, ResultCacheMemory};
use crate::metrics::Metrics;
use crate::pipeline::Plan;
use crate::pipeline::alias::{Alias, AliasSet};
use crate::pipeline::chain::SourceSpec;
use crate::pipeline::format::ImageFormat;
use crate::pipeline::layers;
use crate::render::{Job, JobResult, Pool, Rendered, Slot, Source};
use crate::storage::{ImageId, Originals};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// The handlers' state: one `Arc`, so a request clones one pointer.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// A bound alias plan and its canonical text (cache-key material).
pub struct BoundPlan {
    pub plan: Plan,
    pub canonical: String,
}

/// Bound plans remembered per (alias, query): the hit path then skips binding,
/// validation and printing. Small: one entry is a plan and a short string.
/// When full it is emptied and refilled (no recency bookkeeping, so lookups
/// take only a shared read lock).
const BOUND_PLANS: usize = 1024;
/// Queries longer than this are bound every time, never remembered: a memo
/// key is a copy of the query, and long ones are not what repeated requests
/// (the hit path) send.
const MEMO_QUERY_MAX: usize = 256;
/// Chain URLs longer than this are compiled every time, never remembered.
const MEMO_CHAIN_MAX: usize = 512;

/// A chain's source, named by content before its bytes are needed.
pub struct NamedSource {
    pub id: ImageId,
    pub format: ImageFormat,
    /// `None`: the source cache names the content without keeping it.
    pub bytes: Option<Bytes>,
    pub hold: Option<crate::inflight::Held>,
    /// How long clients may keep a result made from it (`None`: as long as
    /// they like, an uploaded original never changes).
    pub max_age: Option<Duration>,
    /// Its size as displayed, when known without decoding (an uploaded
    /// original's, from its metadata).
    pub size: Option<(u32, u32)>,
}

pub struct Shared {
    pub settings: Arc<Settings>,
    pub aliases: Arc<AliasSet>,
    pub pool: Arc<Pool>,
    pub metrics: Metrics,
    pub memory: Arc<MemoryState>,
    pub originals: Originals,
    /// Whether `originals` (and the result tier beside it) answer: `/readyz`.
    pub storage_health: Arc<crate::storage::StorageHealth>,
    /// Inputs refused after crashes, and the journal naming those in flight.
    pub quarantine: Arc<crate::crash::Quarantine>,
    pub cache: Arc<ResultCache<ApiError>>,
    /// Engine versions mixed into every cache key.
    pub salt: Arc<str>,
    /// `download(url)` with the origin rules.
    pub fetcher: Arc<crate::fetch::Fetcher>,
    /// Bytes of request bodies and downloads held at once.
    pub inflight: Arc<crate::inflight::InflightBytes>,
    /// Bound alias plans (`bind_alias`); start with `BoundPlans::default()`.
    pub bound: BoundPlans,
    /// Compiled chains (`ChainPlans::get_or_compile`).
    pub chains: ChainPlans,
    /// Originals seen to exist recently (renditions are served only for those).
    pub known: crate::storage::Known,
    /// More result caches whose memory tier is heap (the compat profile's
    /// named caches), for the memory report.
    pub named_caches: Vec<Arc<ResultCache<ApiError>>>,
    /// Who may do what, for every route of both profiles.
    pub policy: crate::service::Policy,
}

/// The memo behind `bind_alias`, keyed by (alias, raw query).
#[derive(Default)]
pub struct BoundPlans(RwLock<HashMap<(String, String), Arc<BoundPlan>>>);

/// Compiled chains remembered by their URL text (after the signature check):
/// a repeated `GET /{chain}` (the hit path) skips decoding, parsing,
/// compiling and printing. Same bounds as `BoundPlans`.
#[derive(Default)]
pub struct ChainPlans(RwLock<HashMap<String, Arc<CompiledChain>>>);

/// A compiled chain and, when its output format does not depend on the
/// request, its canonical text.
pub struct CompiledChain {
    pub compiled: crate::pipeline::chain::Compiled,
    /// Every image it names: its source, then its overlays.
    pub sources: Vec<SourceSpec>,
    pub canonical: Option<String>,
}

impl ChainPlans {
    /// The chain compiled from `text`, remembered by it; `compile` runs on a miss.
    pub fn get_or_compile(
        &self,
        text: &str,
        compile: impl FnOnce() -> Result<crate::pipeline::chain::Compiled, ApiError>,
    ) -> Result<Arc<CompiledChain>, ApiError> {
        if let Some(c) = self.0.read().unwrap_or_else(|e| e.into_inner()).get(text) {
            return Ok(Arc::clone(c));
        }
        let compiled = compile()?;
        let canonical = (!compiled.plan.output.negotiate).then(|| compiled.plan.canonical());
        let sources = std::iter::once(&compiled.source)
            .chain(&compiled.plan.overlays)
            .cloned()
            .collect();
        let chain = Arc::new(CompiledChain {
            compiled,
            sources,
            canonical,
        });
        if text.len() <= MEMO_CHAIN_MAX {
            let mut memo = self.0.write().unwrap_or_else(|e| e.into_inner());
            if memo.len() >= BOUND_PLANS {
                memo.clear();
            }
            memo.insert(text.to_string(), Arc::clone(&chain));
        }
        Ok(chain)
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Shared {
    /// Looks up alias `name` and binds the request's query parameters to it:
    /// 404 for an unknown alias, 400 naming a bad parameter.
    /// Remembers the result per (alias, raw query), so repeated requests
    /// (the cache-hit path) skip binding and printing.
    pub fn bind_alias(&self, name: &str, query: Option<&str>) -> Result<(&Alias, Arc<BoundPlan>), ApiError> {
        let alias = self.aliases.get(name).ok_or_else(|| {
            let known = self.aliases.aliases.keys().map(String::as_str);
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "unknown_alias",
                format!(
                    "no alias named `{name}`{}",
                    crate::pipeline::suggest::did_you_mean(name, known)
                ),
            )
        })?;
        let query = query.unwrap_or_default();
        let memo_key = (alias.name.clone(), query.to_string());
        if let Some(bound) = self.bound.0.read().unwrap_or_else(|e| e.into_inner()).get(&memo_key) {
            return Ok((alias, Arc::clone(bound)));
        }
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let plan = alias.instantiate(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        let canonical = plan.canonical();
        let bound = Arc::new(BoundPlan { plan, canonical });
        if query.len() > MEMO_QUERY_MAX {
            return Ok((alias, bound));
        }
        let mut memo = self.bound.0.write().unwrap_or_else(|e| e.into_inner());
        if memo.len() >= BOUND_PLANS {
            memo.clear();
        }
        memo.insert(memo_key, Arc::clone(&bound));
        Ok((alias, bound))
    }

    /// Counts a request by alias (known names only) and response status.
    pub fn count_alias(&self, alias: &str, response: &Result<axum::response::Response, ApiError>) {
        let name = if self.aliases.get(alias).is_some() {
            alias
        } else {
            "unknown"
        };
        let status = match response {
            Ok(r) => r.status(),
            Err(e) => e.status,
        };
        self.metrics
            .alias_requests
            .with_label_values(&[name, status.as_str()])
            .inc();
    }

    /// Every memory figure, now.
    pub fn memory_report(&self) -> MemoryReport {
        self.memory
            .report(magick::resources(), self.cache_memory(), self.inflight.held())
    }

    /// One sample for the memory history (the sampler's).
    pub fn memory_sample(&self) -> crate::memory::report::Sample {
        self.memory
            .sample(magick::resources(), self.cache_memory(), self.inflight.held())
    }

    /// What the caches hold: the result cache (and the compat profile's
    /// named caches), and downloaded sources.
    fn cache_memory(&self) -> ResultCacheMemory {
        let (memory_bytes, disk_bytes) = self.cache.bytes();
        let named: u64 = self.named_caches.iter().map(|c| c.bytes().0).sum();
        ResultCacheMemory {
            memory_bytes: memory_bytes + named,
            disk_bytes,
            sources_bytes: self.fetcher.cached_bytes(),
        }
    }

    /// The first, pure check of an input: every size any layer of the file
    /// claims (container, coded stream, each page or frame) against the
    /// limits, before ImageMagick sees a byte. A decompression bomb, or a
    /// container that understates its coded stream, stops here in
    /// microseconds.
    pub fn precheck(&self, input: &[u8], format: ImageFormat) -> Result<(), ApiError> {
        let l = &self.settings.limits;
        layers::precheck(input, format, l.max_width, l.max_height, l.max_pixels, l.max_frames)
            .map_err(|r| ApiError::from(magick::JobError::from(r)))?;
        Ok(())
    }

    /// An animation that stays animated holds every frame at once: one that
    /// cannot fit in the whole pixel budget is refused (413) before queueing.
    fn admit_animation(&self, source: &Source, plan: &Plan) -> Result<(), ApiError> {
        use crate::pipeline::ops::Size;
        let animates = |f: ImageFormat| matches!(f, ImageFormat::Gif | ImageFormat::Webp);
        if !animates(source.format) || !animates(plan.output.format_for(source.format)) {
            return Ok(());
        }
        let Some(claims) = layers::claims(&source.bytes, source.format).filter(|c| c.frames > 1) else {
            return Ok(());
        };
        let Some(budget) = crate::render::budget::get() else {
            return Ok(());
        };
        let canvas = Size::new(claims.max_width.max(1), claims.max_height.max(1));
        let output = plan.ops.iter().fold(canvas, |s, op| op.output_size(s));
        let format = plan.output.format_for(source.format);
        // Its work, frames x pixels of canvas and output, before it queues.
        magick::check_animation_cost(
            claims.frames as usize,
            canvas,
            output,
            format,
            self.settings.job_deadline.0,
        )?;
        let need = magick::animation_need(claims.frames as usize, canvas, output, format);
        if need > budget.total() {
            return Err(magick::JobError::TooLarge(format!(
                "an animation of {} frames of {}x{} needs {} MiB of pixel cache, more than the {} MiB budget",
                claims.frames,
                canvas.width,
                canvas.height,
                need >> 20,
                budget.total() >> 20
            ))
            .into());
        }
        Ok(())
    }

    /// An operation whose work would hold a worker for seconds (a large
    /// `sharpen`) is refused (422) before the job queues, from the size the
    /// header claims; the worker checks again on the decoded image.
    fn admit_cost(&self, source: &Source, plan: &Plan) -> Result<(), ApiError> {
        use crate::pipeline::ops::Size;
        let Some(claims) = layers::claims(&source.bytes, source.format) else {
            return Ok(());
        };
        let input = Size::new(claims.max_width.max(1), claims.max_height.max(1));
        magick::check_plan_cost(&plan.ops, input, self.settings.job_deadline.0)?;
        Ok(())
    }

    /// 422 `quarantined` for an input that was being decoded at repeated crashes.
    pub(crate) fn refuse_quarantined(&self, id: &ImageId) -> Result<(), ApiError> {
        if self.quarantine.is_quarantined(id.as_str()) {
            return Err(ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "quarantined",
                format!(
                    "image {id} was being decoded when the service crashed {} times; it is refused \
                     (an operator can release it: DELETE /admin/quarantine/{id})",
                    self.settings.quarantine.after_crashes
                ),
            ));
        }
        Ok(())
    }

    /// Queues `job` in `slot` (reserved when the request arrived) or in a
    /// slot reserved now.
    fn submit<R, F>(
        &self,
        slot: Option<Slot>,
        deadline: Instant,
        job: F,
    ) -> Result<tokio::sync::oneshot::Receiver<JobResult<R>>, ApiError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: crate::render::Outcome + Send + 'static,
    {
        match slot {
            Some(slot) => self.pool.submit_in(slot, deadline, job),
            None => self.pool.submit(deadline, job),
        }
        .map_err(|e| ApiError::from_submit(e, self.settings.retry_after_secs))
    }

    /// Checks an upload in the worker pool: its headers against the limits,
    /// then a full decode of its first frame within the pixel-cache budget.
    pub async fn validate(
        &self,
        input: Bytes,
        id: &ImageId,
        format: ImageFormat,
        slot: Option<Slot>,
    ) -> Result<magick::Probe, ApiError> {
        self.precheck(&input, format)?;
        self.refuse_quarantined(id)?;
        let deadline = Instant::now() + self.settings.job_deadline.0;
        let limits = self.settings.limits.clone();
        let bytes = input.clone();
        self.run_job(&[(id, &input)], slot, deadline, move || {
            magick::validate(&bytes, format, &limits, deadline)
        })
        .await
    }

    /// What an image is (`magick::info`), in the worker pool: the header's
    /// facts and a ThumbHash from a tiny decode.
    pub async fn image_info(
        &self,
        input: Bytes,
        id: &ImageId,
        format: ImageFormat,
        slot: Option<Slot>,
    ) -> Result<magick::ImageInfo, ApiError> {
        // A failure of the input is remembered as renditions' are: a poison
        // file asked about again fails at once instead of costing a worker.
        let key = crate::cache::CacheKey::new(id, "info", "", &self.salt);
        if let Some(failure) = self.cache.recall_failure(&key) {
            return Err(failure);
        }
        let result = self.compute_info(input, id, format, slot).await;
        if let Err(e) = &result {
            self.cache.note_failure(&key, e);
        }
        result
    }

    async fn compute_info(
        &self,
        input: Bytes,
        id: &ImageId,
        format: ImageFormat,
        slot: Option<Slot>,
    ) -> Result<magick::ImageInfo, ApiError> {
        self.precheck(&input, format)?;
        self.refuse_quarantined(id)?;
        let deadline = Instant::now() + self.settings.job_deadline.0;
        let limits = self.settings.limits.clone();
        let source = Source {
            id: id.clone(),
            bytes: input.clone(),
            format,
            density: None,
            hold: None,
        };
        self.run_job(&[(id, &input)], slot, deadline, move || {
            magick::info(&source, &limits, deadline)
        })
        .await
    }

    /// A source of a chain, its bytes included.
    pub async fn fetch_source(&self, spec: &SourceSpec) -> Result<(Source, Option<Duration>), ApiError> {
        let named = self.resolve_source(spec, true).await?;
        let source = Source {
            id: named.id,
            bytes: named.bytes.expect("asked for the bytes"),
            format: named.format,
            density: spec.dpi(),
            hold: named.hold,
        };
        Ok((source, named.max_age))
    }

    /// What a chain's source is: its content id and format, and its bytes
    /// when `need_bytes` or when they are at hand. A `download()` comes from
    /// the source cache while it is fresh (no origin request), an uploaded
    /// original from the store.
    pub async fn resolve_source(&self, spec: &SourceSpec, need_bytes: bool) -> Result<NamedSource, ApiError> {
        let unsupported = || {
            ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_format",
                "the source is not a JPEG, PNG, GIF, WebP, TIFF, AVIF or HEIC image",
            )
        };
        match spec {
            SourceSpec::Download { url, .. } => {
                let r = self.fetcher.resolve(url, need_bytes).await?;
                Ok(NamedSource {
                    format: r.format.ok_or_else(unsupported)?,
                    id: r.id,
                    bytes: r.bytes,
                    hold: r.held,
                    max_age: Some(r.max_age),
                    size: None,
                })
            }
            SourceSpec::Original { id } => {
                let missing = || {
                    ApiError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "not_found",
                        format!("no uploaded image {id}"),
                    )
                };
                let id = ImageId::parse(id).ok_or_else(missing)?;
                let found = self.originals.get(&id).await.map_err(ApiError::from)?;
                let (meta, bytes) = found.ok_or_else(missing)?;
                // Stored originals were decoded when they were uploaded.
                self.quarantine.prove(id.as_str());
                Ok(NamedSource {
                    format: ImageFormat::sniff(&bytes).ok_or_else(unsupported)?,
                    id,
                    bytes: Some(bytes),
                    hold: None,
                    max_age: None,
                    size: Some((meta.width, meta.height)),
                })
            }
        }
    }

    /// Runs `plan` on `input` in the worker pool, within the job deadline,
    /// after fetching the images its `compose` steps lay over it.
    pub async fn render(
        &self,
        input: Bytes,
        id: Option<ImageId>,
        format: ImageFormat,
        plan: Plan,
        slot: Option<Slot>,
    ) -> Result<Rendered, ApiError> {
        let id = match id {
            Some(id) => id,
            None => ImageId::of_shared(&input).await,
        };
        let mut sources = vec![Source {
            id,
            bytes: input,
            format,
            density: None,
            hold: None,
        }];
        let overlays = futures::future::try_join_all(plan.overlays.iter().map(|s| self.fetch_source(s))).await?;
        sources.extend(overlays.into_iter().map(|(source, _)| source));
        self.render_sources(sources, plan, slot).await
    }

    /// Runs `plan` on the first of `sources` (the others are the images its
    /// `compose` steps lay over it), within the job deadline.
    pub async fn render_sources(
        &self,
        sources: Vec<Source>,
        plan: Plan,
        slot: Option<Slot>,
    ) -> Result<Rendered, ApiError> {
        for source in &sources {
            self.precheck(&source.bytes, source.format)?;
            self.refuse_quarantined(&source.id)?;
        }
        self.admit_animation(&sources[0], &plan)?;
        self.admit_cost(&sources[0], &plan)?;
        let deadline = Instant::now() + self.settings.job_deadline.0;
        let job = Job {
            sources,
            plan,
            limits: self.settings.limits.clone(),
            deadline,
            decode_headroom: self.settings.decode_headroom,
            fast_path: self.settings.fast_path,
        };
        let inputs: Vec<(ImageId, Bytes)> = job.sources.iter().map(|s| (s.id.clone(), s.bytes.clone())).collect();
        let inputs: Vec<(&ImageId, &Bytes)> = inputs.iter().map(|(id, b)| (id, b)).collect();
        let rendered = self.run_job(&inputs, slot, deadline, move || execute(job)).await?;
        self.metrics.renders.with_label_values(&[rendered.engine]).inc();
        Ok(rendered)
    }

    /// The one way a job runs on the worker pool: in `slot` (or one
    /// reserved now), its inputs named in the crash journal while it runs
    /// (each marked proven when the job succeeds), the test hooks, the
    /// deadline (the worker stops at it through ImageMagick's progress
    /// monitor; this side's timeout covers a step that reports no
    /// progress), and its queue and run times for `Server-Timing`.
    async fn run_job<T, E, F>(
        &self,
        inputs: &[(&ImageId, &Bytes)],
        slot: Option<Slot>,
        deadline: Instant,
        work: F,
    ) -> Result<T, ApiError>
    where
        F: FnOnce() -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: Into<ApiError> + Send + 'static,
        Result<T, E>: crate::render::Outcome,
    {
        let ids: Vec<ImageId> = inputs.iter().map(|(id, _)| (*id).clone()).collect();
        let hooked: Vec<Bytes> = if cfg!(debug_assertions) {
            inputs.iter().map(|(_, b)| (*b).clone()).collect()
        } else {
            Vec::new()
        };
        let quarantine = Arc::clone(&self.quarantine);
        let submitted = Instant::now();
        let result = self.submit(slot, deadline, move || {
            let started = Instant::now();
            let _in_flight = quarantine.enter(ids.iter().map(ImageId::as_str));
            for bytes in &hooked {
                crate::crash::test_hooks(bytes);
            }
            let result = work();
            if result.is_ok() {
                for id in &ids {
                    quarantine.prove(id.as_str());
                }
            }
            Ran {
                result,
                queued: started - submitted,
                ran: started.elapsed(),
            }
        })?;
        match tokio::time::timeout_at(deadline.into(), result).await {
            Ok(Ok(JobResult::Done(ran))) => {
                super::timing::record(super::timing::JobTiming {
                    queue: ran.queued,
                    run: ran.ran,
                });
                ran.result.map_err(Into::into)
            }
            Ok(Ok(JobResult::Expired)) | Err(_) => Err(magick::JobError::Deadline.into()),
            Ok(Ok(JobResult::Panicked)) | Ok(Err(_)) => Err(ApiError::internal()),
        }
    }
}

/// The one choice of executor, on the worker: `dpr` steps resolved, then
/// the fast path where it gives ImageMagick's result (it declines
/// everything else), else ImageMagick.
pub fn execute(mut job: Job) -> Result<Rendered, crate::render::JobError> {
    magick::resolve_dpr(&mut job)?;
    if job.fast_path && job.plan.dialect == crate::pipeline::Dialect::Native {
        match crate::fast::try_render(&job) {
            Ok(result) => return result,
            Err(reason) => tracing::trace!(reason, "fast path declined"),
        }
    }
    magick::run(job)
}

/// A job's result with its queue and run times.
struct Ran<R> {
    result: R,
    queued: Duration,
    ran: Duration,
}

impl<R: crate::render::Outcome> crate::render::Outcome for Ran<R> {
    fn outcome(&self) -> &'static str {
        self.result.outcome()
    }
}
