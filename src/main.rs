//! Thin binary: read arguments and settings, start telemetry, build, run.

use clap::{Parser, Subcommand};
use imaginator::load::{Loaded, load};
use imaginator::{App, app, telemetry};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A fast, safe HTTP interface to ImageMagick.
///
/// Settings come from defaults, then the config file, then IMAGINATOR_*
/// variables (IMAGINATOR_SECTION__KEY for nested keys).
#[derive(Parser)]
#[command(name = "imaginator", version, propagate_version = true)]
struct Cli {
    /// Settings file: TOML, or a .yml/.yaml file in imaginator 2018's schema
    /// (the compat profile). Also IMAGINATOR_CONFIG. Accepted before or after
    /// a subcommand.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective settings (credentials left out) and exit.
    #[arg(long)]
    print_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service (what `imaginator` alone does).
    Serve,
    /// Validate alias files with the rules the server applies at start-up.
    CheckAliases {
        /// An alias file or a directory of them (default: the configured
        /// `aliases_dir`).
        path: Option<PathBuf>,
    },
    /// Write the native config and alias files for an imaginator 2018 YAML
    /// file, and list every behaviour that differs natively.
    Migrate {
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
        /// The imaginator 2018 YAML file.
        yaml: PathBuf,
        /// Where to write imaginator.toml and aliases/.
        #[arg(default_value = ".")]
        out_dir: PathBuf,
    },
    /// Print PATH signed with the configured secret (or --secret).
    ///
    /// A chain is printed as /{signature}/CHAIN; images/{id}/{alias}?... and
    /// transform/{alias}?... as PATH?...&signature=... (checked when
    /// `sign_all_routes` is on); with a YAML config, imaginator 2018's
    /// signature.
    Sign {
        /// The secret to sign with (default: the first of `secrets`).
        #[arg(long)]
        secret: Option<String>,
        /// The path to sign, e.g. 'download(origin:a.jpg):thumbnail()'.
        path: String,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout; a reader that closed the pipe
            // (`imaginator --help | head -1`) is no failure.
            let _ = e.print();
            return ExitCode::from(e.exit_code().clamp(0, 255) as u8);
        }
    };
    let config = cli.config.as_deref();
    match cli.command {
        Some(Command::CheckAliases { path }) => check_aliases(config, path),
        Some(Command::Migrate { force, yaml, out_dir }) => migrate(&yaml, &out_dir, force),
        Some(Command::Sign { secret, path }) => sign(config, secret, &path),
        Some(Command::Serve) | None => serve(config, cli.print_config),
    }
}

/// Writes `text` to stdout; a closed pipe ends the output quietly.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

fn fail(message: &str) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "imaginator: {message}");
    ExitCode::from(2)
}

fn settings(config: Option<&Path>) -> Result<Loaded, ExitCode> {
    load(config, std::env::vars()).map_err(|e| fail(&e.to_string()))
}

fn serve(config: Option<&Path>, print_config: bool) -> ExitCode {
    let mut loaded = match settings(config) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if print_config {
        out(&loaded.to_toml());
        return ExitCode::SUCCESS;
    }
    telemetry::init(&loaded.settings.log);
    for warning in std::mem::take(&mut loaded.warnings) {
        tracing::warn!("{warning}");
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let shutdown = app::shutdown_signal()?;
        let app = App::from_loaded(loaded).await?;
        app.run(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

/// Validates alias files (one, or every `*.toml` of a directory) with the
/// server's rules; reports each broken one with its file, line and reason,
/// and exits non-zero if any is broken or the server would not start.
fn check_aliases(config: Option<&Path>, path: Option<PathBuf>) -> ExitCode {
    let (path, builtins) = match path {
        Some(path) => (path, false),
        None => match settings(config) {
            Ok(l) => (
                l.settings.aliases_dir.clone(),
                l.settings.allow_builtin_filters || l.compat.is_some(),
            ),
            Err(code) => return code,
        },
    };
    let paths: Vec<PathBuf> = if path.is_dir() {
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) => return fail(&format!("cannot read {}: {e}", path.display())),
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        paths
    } else if path.is_file() {
        vec![path.clone()]
    } else {
        return fail(&format!("{} is neither an alias file nor a directory", path.display()));
    };
    let mut report = String::new();
    let mut broken = 0;
    for p in &paths {
        match imaginator::pipeline::alias::Alias::from_file(p) {
            Ok(alias) => report.push_str(&format!("ok      {} ({})\n", p.display(), alias.chain)),
            Err(e) => {
                broken += 1;
                report.push_str(&format!("broken  {e}\n"));
            }
        }
    }
    report.push_str(&format!("{} alias file(s), {broken} broken\n", paths.len()));
    if paths.is_empty() && !builtins {
        report.push_str("no alias files, and allow_builtin_filters is off: the server would not start\n");
        broken += 1;
    }
    out(&report);
    if broken == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Writes the native configuration for an imaginator 2018 YAML file.
fn migrate(yaml: &Path, out_dir: &Path, force: bool) -> ExitCode {
    let text = match std::fs::read_to_string(yaml) {
        Ok(text) => text,
        Err(e) => return fail(&format!("cannot read {}: {e}", yaml.display())),
    };
    match imaginator::compat::migrate::migrate(&text, out_dir, force) {
        Ok(m) => {
            let mut report = String::new();
            for path in &m.written {
                report.push_str(&format!("wrote {}\n", path.display()));
            }
            report.push_str("\nWhat differs in the native profile:\n");
            for d in &m.differences {
                report.push_str(&format!("- {d}\n"));
            }
            out(&report);
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{}: {e}", yaml.display())),
    }
}

/// Prints the signed form of a path.
fn sign(config: Option<&Path>, secret: Option<String>, path: &str) -> ExitCode {
    let path = path.trim_start_matches('/');
    let loaded = match (settings(config), &secret) {
        (Ok(loaded), _) => Some(loaded),
        (Err(code), None) => return code,
        (Err(_), Some(_)) => None,
    };
    let query_signed = path.starts_with("images/") || path.starts_with("transform/") || path.starts_with("info");
    let query_form = |secret: &str| {
        let signature = imaginator::signature::sign(secret, path);
        let separator = if path.contains('?') { '&' } else { '?' };
        format!("/{path}{separator}signature={signature}\n")
    };
    // With a YAML config, the original's scheme: HMAC-SHA1 over the decoded
    // path (plus `?query`), padded URL-safe base64.
    if let Some(compat) = loaded.as_ref().and_then(|l| l.compat.as_ref()) {
        let Some(secret) = secret.or_else(|| compat.secret.clone()) else {
            return fail("no secret: pass --secret or set `secret` in the YAML file");
        };
        if query_signed {
            // The other routes are signed as natively (`require_signature`
            // covers every route): a `signature` query parameter.
            out(&query_form(&secret));
            return ExitCode::SUCCESS;
        }
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        out(&format!(
            "/{}/{path}\n",
            imaginator::compat::http::sign(&secret, &decoded)
        ));
        return ExitCode::SUCCESS;
    }
    let settings = loaded.map(|l| l.settings);
    let Some(secret) = secret.or_else(|| settings.as_ref().and_then(|s| s.secrets.first().cloned())) else {
        return fail("no secret: pass --secret or configure `secrets`");
    };
    if query_signed {
        if settings.as_ref().is_some_and(|s| !s.signs_every_route()) {
            let _ = writeln!(
                std::io::stderr(),
                "imaginator: warning: this route's signature is checked only with `sign_all_routes = true` \
                 and `secrets` set; as configured, the server accepts it unsigned"
            );
        }
        out(&query_form(&secret));
    } else {
        out(&format!("/{}/{path}\n", imaginator::signature::sign(&secret, path)));
    }
    ExitCode::SUCCESS
}
