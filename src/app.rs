//! Builds the service from settings (listener bound, pool started, aliases
//! loaded) and runs it until a shutdown future resolves, then drains.

use crate::cache::{ObjectTier, ResultCache, SecondTier};
use crate::compat::Compat;
use crate::config::{Settings, StorageBackend};
use crate::crash::Quarantine;
use crate::http::{self, ChainRoute, Routes};
use crate::inflight::InflightBytes;
use crate::load::Loaded;
use crate::magick;
use crate::memory::{self, MemoryState};
use crate::metrics::Metrics;
use crate::pipeline::alias::AliasSet;
use crate::render::Pool;
use crate::server::{self, ConnectionLimits, Endpoint};
use crate::service::{AppState, BoundPlans, ChainPlans, Shared};
use crate::storage::{LocalOriginals, ObjectOriginals, Originals, StorageHealth};
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where originals, results and crash strikes live, and how to tell whether
/// that place is reachable.
struct Storage {
    originals: Originals,
    tier: SecondTier,
    strikes: Arc<dyn object_store::ObjectStore>,
    strikes_prefix: String,
    health: StorageHealth,
}

/// Opens the configured originals store and the result tier behind memory:
/// both on the local disk, or both in one S3-compatible bucket.
fn open_storage(settings: &Settings) -> anyhow::Result<Storage> {
    let local = LocalOriginals::open(&settings.data_dir)
        .with_context(|| format!("cannot open the originals store in {}", settings.data_dir.display()))?;
    match settings.storage.backend {
        StorageBackend::Local => {
            let tier = SecondTier::disk(&settings.data_dir, settings.cache.disk.0)
                .with_context(|| format!("cannot open the disk cache in {}", settings.data_dir.display()))?;
            let dir = settings.data_dir.join("quarantine");
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            let strikes: Arc<dyn object_store::ObjectStore> = Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(&dir)
                    .with_context(|| format!("cannot open {}", dir.display()))?,
            );
            Ok(Storage {
                originals: Originals::Local(local),
                tier,
                strikes,
                strikes_prefix: String::new(),
                health: StorageHealth::local(&settings.data_dir),
            })
        }
        StorageBackend::S3 => {
            let s3 = &settings.storage.s3;
            let mut builder = object_store::aws::AmazonS3Builder::new()
                .with_bucket_name(&s3.bucket)
                .with_region(&s3.region)
                .with_access_key_id(&s3.access_key_id)
                .with_secret_access_key(&s3.secret_access_key)
                // Client options first: they replace what `with_allow_http` sets.
                .with_client_options(
                    object_store::ClientOptions::new()
                        .with_timeout(s3.timeout.0)
                        .with_connect_timeout(s3.timeout.0.min(std::time::Duration::from_secs(2))),
                )
                .with_allow_http(s3.allow_http)
                .with_retry(object_store::RetryConfig {
                    retry_timeout: s3.timeout.0,
                    ..Default::default()
                });
            if !s3.endpoint.is_empty() {
                builder = builder
                    .with_endpoint(&s3.endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            // Readiness asks once, without retries: the load balancer's own
            // failure threshold absorbs a single lost probe.
            let probe: Arc<dyn object_store::ObjectStore> = Arc::new(
                builder
                    .clone()
                    .with_retry(object_store::RetryConfig {
                        max_retries: 0,
                        ..Default::default()
                    })
                    .build()
                    .context("invalid storage.s3 configuration")?,
            );
            let store: Arc<dyn object_store::ObjectStore> =
                Arc::new(builder.build().context("invalid storage.s3 configuration")?);
            tracing::info!(bucket = %s3.bucket, endpoint = %s3.endpoint, "originals and results in object storage");
            Ok(Storage {
                originals: Originals::Object(ObjectOriginals::new(Arc::clone(&store), &s3.prefix)),
                tier: SecondTier::Object(ObjectTier::new(Arc::clone(&store), &s3.prefix)),
                strikes: Arc::clone(&store),
                strikes_prefix: s3.prefix.clone(),
                health: StorageHealth::object(probe, &s3.prefix, s3.timeout.0),
            })
        }
    }
}

/// Checks once that C allocations (ImageMagick's included) are served and
/// counted by jemalloc, and says so in the log.
fn check_allocator(trend_window: std::time::Duration) -> MemoryState {
    let c = memory::c_malloc_tracked();
    let im = magick::allocations_tracked();
    if c && im {
        tracing::info!("jemalloc serves C malloc: ImageMagick's memory is in heap statistics and profiles");
    } else {
        tracing::error!(
            c_malloc_tracked = c,
            imagemagick_malloc_tracked = im,
            "C allocations bypass jemalloc: heap statistics and profiles miss ImageMagick"
        );
    }
    MemoryState::new(c, im, trend_window)
}

pub struct App {
    listener: TcpListener,
    /// `admin_listen`'s listener, when set.
    admin_listener: Option<TcpListener>,
    state: AppState,
    /// What answers `GET /{*chain}`: the native language, or the compat
    /// profile's front end.
    chains: ChainRoute,
}

impl App {
    /// Everything that can fail at start-up fails here, with a message naming
    /// the culprit: aliases, data directory, listen address.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        App::assemble(settings, None).await
    }

    /// Builds what a configuration file asked for: with a YAML file, the
    /// compat profile's front end on the chain route.
    pub async fn from_loaded(loaded: Loaded) -> anyhow::Result<App> {
        App::assemble(loaded.settings, loaded.compat).await
    }

    async fn assemble(settings: Settings, compat: Option<Arc<Compat>>) -> anyhow::Result<App> {
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data_dir {}", settings.data_dir.display()))?;
        // Aliases are optional where clients have another language: built-in
        // filters, or the compat profile's own aliases.
        let other_language = settings.allow_builtin_filters || compat.is_some();
        let aliases = match (settings.aliases_dir.exists(), other_language) {
            (false, true) => {
                tracing::info!(
                    aliases_dir = %settings.aliases_dir.display(),
                    "no aliases directory: no native aliases"
                );
                AliasSet::default()
            }
            (false, false) => anyhow::bail!(
                "aliases_dir {} does not exist, and allow_builtin_filters is off: clients could ask for nothing. \
                 Point IMAGINATOR_ALIASES_DIR (or `aliases_dir` in the config file) at a directory of alias files \
                 (the repository's aliases/ is one), or set IMAGINATOR_ALLOW_BUILTIN_FILTERS=true for a chains-only service",
                settings.aliases_dir.display()
            ),
            (true, _) => AliasSet::load_dir(&settings.aliases_dir).context("cannot load aliases")?,
        };
        if aliases.aliases.is_empty() && !other_language {
            anyhow::bail!(
                "no aliases (*.toml) found in {}, and allow_builtin_filters is off: clients could ask for nothing. \
                 Add alias files there, or set IMAGINATOR_ALLOW_BUILTIN_FILTERS=true for a chains-only service",
                settings.aliases_dir.display()
            );
        }
        magick::init(&settings.limits).map_err(|e| anyhow::anyhow!("ImageMagick: {e}"))?;
        let memory = Arc::new(check_allocator(settings.memory.trend_window.0));
        let metrics = Metrics::new();
        let pool = Pool::new(settings.workers, settings.queue_capacity(), metrics.clone());
        let listener = server::bind(settings.listen, settings.http.backlog)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let admin_listener = match settings.admin_listen {
            Some(addr) => Some(
                server::bind(addr, settings.http.backlog)
                    .with_context(|| format!("cannot listen on admin_listen {addr}"))?,
            ),
            None => None,
        };
        let admin_addr = admin_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let storage = open_storage(&settings)?;
        let quarantine = Quarantine::open(
            &settings.data_dir,
            storage.strikes,
            &storage.strikes_prefix,
            &settings.quarantine,
            metrics.clone(),
        )
        .await
        .with_context(|| format!("cannot open the crash journal in {}", settings.data_dir.display()))?;
        quarantine.spawn_refresh(settings.quarantine.refresh.0);
        let cache = Arc::new(
            ResultCache::new(settings.cache.memory.0, storage.tier, metrics.clone())
                .context("cannot open the result cache")?,
        );
        let indexing = Arc::clone(&cache);
        tokio::task::spawn_blocking(move || {
            let (entries, bytes, seconds) = indexing.rebuild_disk_index();
            tracing::info!(entries, bytes, seconds, "disk cache index rebuilt");
        });
        let salt: Arc<str> = format!("imaginator {} / {}", env!("CARGO_PKG_VERSION"), magick::version()).into();
        metrics.inflight_bytes_limit.set(settings.inflight_bytes() as i64);
        let inflight = InflightBytes::new(settings.inflight_bytes(), metrics.inflight_bytes.clone());
        let fetcher = Arc::new(
            crate::fetch::Fetcher::new(
                settings.domains.clone(),
                settings.download.clone(),
                &settings.fetch.proxy,
                Arc::clone(&inflight),
                crate::fetch::SourceCacheSettings {
                    entries: settings.cache.sources_entries,
                    memory: settings.cache.sources_memory.0,
                    max_age: settings.cache.download_max_age.0,
                },
                metrics.source_cache.clone(),
            )
            .map_err(|e| anyhow::anyhow!(e))?
            .refuse_listeners(std::iter::once(listener.local_addr()?).chain(admin_addr)),
        );
        let fetcher = match compat.is_some() {
            true => Arc::new(Arc::into_inner(fetcher).expect("not shared yet").compat()),
            false => fetcher,
        };
        let runtime = match compat {
            Some(config) => Some(Arc::new(
                crate::compat::http::Runtime::open((*config).clone(), &metrics)
                    .context("cannot open the named caches of imaginator.yml")?,
            )),
            None => None,
        };
        let named_caches = runtime
            .as_ref()
            .map(|r| r.caches.values().cloned().collect())
            .unwrap_or_default();
        let policy = crate::service::Policy::new(&settings);
        let state = AppState::from(Shared {
            policy,
            settings: Arc::new(settings),
            aliases: Arc::new(aliases),
            pool: Arc::new(pool),
            metrics,
            memory,
            originals: storage.originals,
            storage_health: Arc::new(storage.health),
            quarantine,
            cache,
            salt,
            fetcher,
            inflight,
            bound: BoundPlans::default(),
            chains: ChainPlans::default(),
            known: Default::default(),
            named_caches,
        });
        let source = state.clone();
        state.metrics.register_memory(Box::new(move || source.memory_report()));
        // The memory history: a sample every `sample_every`, whatever else
        // runs (the work in flight, the service's own profiles included, is
        // measured and left out of the heap at rest).
        let sampler = state.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(sampler.memory.history.sample_every());
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let sample = sampler.memory_sample();
                sampler.memory.history.record(sample);
            }
        });
        // Logged once everything is open (the crash journal read, strikes
        // recorded): what tests and operators wait for.
        let bound = listener.local_addr()?;
        // Where a person opens the playground (a wildcard address is reached on loopback).
        let ui = state.settings.ui.enabled.resolve(state.settings.listen).then(|| {
            let host = match bound.ip() {
                ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
                ip if ip.is_unspecified() => "[::1]".to_string(),
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            format!("http://{host}:{}/ui", bound.port())
        });
        tracing::info!(
            listen = %bound,
            ui,
            admin_listen = admin_addr.map(|a| a.to_string()),
            workers = state.settings.workers,
            queue = state.settings.queue_capacity(),
            aliases = state.aliases.aliases.len(),
            profile = if runtime.is_some() { "compat (imaginator 2018 YAML)" } else { "native" },
            access = %state.policy.describe(),
            imagemagick = %magick::version(),
            "imaginator started"
        );
        let chains = match runtime {
            Some(runtime) => crate::compat::http::route(runtime),
            None => http::native_chains(),
        };
        Ok(App {
            listener,
            admin_listener,
            state,
            chains,
        })
    }

    /// The router with its state (every route), for driving requests in-process.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone(), Routes::All, self.chains.clone())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The admin listener's address, when `admin_listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_listener
            .as_ref()
            .map(|l| l.local_addr().expect("a bound listener has an address"))
    }

    /// Serves until `shutdown` resolves; then stops accepting, lets in-flight
    /// requests finish within the grace period, and joins the workers.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let settings = Arc::clone(&self.state.settings);
        let pool = Arc::clone(&self.state.pool);
        let limits = ConnectionLimits {
            max_connections: settings.http.max_connections,
            header_timeout: settings.http.header_timeout.0,
            send_timeout: settings.http.send_timeout.0,
            linger_bytes: settings.max_body.0.saturating_mul(2),
        };
        let endpoints = match self.admin_listener {
            None => vec![Endpoint {
                listener: self.listener,
                router: http::router(self.state.clone(), Routes::All, self.chains),
            }],
            Some(admin) => vec![
                Endpoint {
                    listener: self.listener,
                    router: http::router(self.state.clone(), Routes::Public, self.chains.clone()),
                },
                Endpoint {
                    listener: admin,
                    router: http::router(self.state.clone(), Routes::Admin, self.chains),
                },
            ],
        };
        server::serve(
            endpoints,
            limits,
            self.state.metrics.clone(),
            shutdown,
            settings.shutdown_grace.0,
        )
        .await;
        tokio::task::spawn_blocking(move || pool.shutdown())
            .await
            .context("joining the workers")?;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Registers SIGTERM and SIGINT handlers now (so a signal that arrives while
/// the app is still starting is not lost) and returns a future that resolves
/// on the first of them. Must be called inside the tokio runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}
