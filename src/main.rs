//! Thin binary: read arguments and settings, start telemetry, build, run.

use imaginator::load::load;
use imaginator::{App, Settings, app, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: imaginator [--config FILE] [--print-config]
       imaginator check-aliases [DIR]        validate alias files (default: ./aliases)
       imaginator migrate [--force] imaginator.yml [OUT_DIR]
                                             write the native config and alias files for an
                                             imaginator 2018 YAML file (default OUT_DIR: .), and
                                             list every behaviour that differs natively; files
                                             that exist are replaced only with --force
       imaginator sign [--secret S] PATH     print PATH signed (secret: --secret or the first of `secrets`):
                                             /{signature}/CHAIN for a chain; PATH?...&signature=... for
                                             images/{id}/{alias}?... and transform/{alias}?... (sign_all_routes);
                                             with a YAML config, imaginator 2018's signature

  --config FILE    read settings from FILE (TOML; a .yml/.yaml file in imaginator 2018's
                   schema turns on the compat profile); also IMAGINATOR_CONFIG
  --print-config   print the effective settings and exit
  --version        print the version and exit

Settings come from defaults, then the file, then IMAGINATOR_* variables
(IMAGINATOR_SECTION__KEY for nested keys).";

fn main() -> ExitCode {
    let first = std::env::args().nth(1);
    match first.as_deref() {
        Some("check-aliases") => return check_aliases(std::env::args().nth(2)),
        Some("sign") => return sign(std::env::args().skip(2).collect()),
        Some("migrate") => return migrate(std::env::args().skip(2).collect()),
        _ => {}
    }
    let mut config: Option<PathBuf> = None;
    let mut print_config = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" => match args.next() {
                Some(path) => config = Some(PathBuf::from(path)),
                None => return fail("--config needs a file"),
            },
            "--print-config" => print_config = true,
            "--version" | "-V" => {
                println!("imaginator {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            other => return fail(&format!("unknown argument `{other}`\n{USAGE}")),
        }
    }

    let mut loaded = match load(config.as_deref(), std::env::vars()) {
        Ok(loaded) => loaded,
        Err(e) => return fail(&e.to_string()),
    };
    if print_config {
        print!("{}", loaded.to_toml());
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

/// Validates every alias file of a directory; reports each broken one with
/// its file, line and reason, and exits non-zero if any is broken.
fn check_aliases(dir: Option<String>) -> ExitCode {
    let dir = PathBuf::from(dir.unwrap_or_else(|| "aliases".into()));
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) => return fail(&format!("cannot read {}: {e}", dir.display())),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    paths.sort();
    let mut broken = 0;
    for path in &paths {
        match imaginator::pipeline::alias::Alias::from_file(path) {
            Ok(alias) => println!("ok      {} ({})", path.display(), alias.chain),
            Err(e) => {
                broken += 1;
                eprintln!("broken  {e}");
            }
        }
    }
    println!("{} alias file(s), {broken} broken", paths.len());
    if broken == 0 && !paths.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Writes the native configuration for an imaginator 2018 YAML file.
fn migrate(args: Vec<String>) -> ExitCode {
    let force = args.iter().any(|a| a == "--force");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--force").collect();
    let (yaml, out) = match args.as_slice() {
        [yaml] => (*yaml, "."),
        [yaml, out] => (*yaml, out.as_str()),
        _ => return fail("usage: imaginator migrate [--force] imaginator.yml [OUT_DIR]"),
    };
    let text = match std::fs::read_to_string(yaml) {
        Ok(text) => text,
        Err(e) => return fail(&format!("cannot read {yaml}: {e}")),
    };
    match imaginator::compat::migrate::migrate(&text, std::path::Path::new(out), force) {
        Ok(m) => {
            for path in &m.written {
                println!("wrote {}", path.display());
            }
            println!("\nWhat differs in the native profile:");
            for d in &m.differences {
                println!("- {d}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&format!("{yaml}: {e}")),
    }
}

/// Prints the signed form of a chain path.
fn sign(args: Vec<String>) -> ExitCode {
    let (mut secret, mut path) = (None, None);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--secret" => secret = it.next(),
            other => path = Some(other.trim_start_matches('/').to_string()),
        }
    }
    let Some(path) = path else {
        return fail("sign needs a PATH, e.g. imaginator sign 'download(origin:a.jpg):thumbnail()'");
    };
    let (settings, compat) = match load(None, std::env::vars()) {
        Ok(loaded) => (loaded.settings, loaded.compat),
        Err(e) if secret.is_none() => return fail(&e.to_string()),
        Err(_) => (Settings::default(), None),
    };
    // With a YAML config (IMAGINATOR_CONFIG), the original's scheme: HMAC-SHA1
    // over the decoded path (plus `?query`), padded URL-safe base64.
    let query_signed = path.starts_with("images/") || path.starts_with("transform/") || path.starts_with("info");
    if let Some(compat) = &compat {
        let Some(secret) = secret.or_else(|| compat.secret.clone()) else {
            return fail("no secret: pass --secret or set `secret` in the YAML file");
        };
        if query_signed {
            // The other routes are signed as natively (`require_signature`
            // covers every route): a `signature` query parameter.
            let signature = imaginator::signature::sign(&secret, &path);
            let separator = if path.contains('?') { '&' } else { '?' };
            println!("/{path}{separator}signature={signature}");
            return ExitCode::SUCCESS;
        }
        let decoded = percent_encoding::percent_decode_str(&path).decode_utf8_lossy();
        println!("/{}/{path}", imaginator::compat::http::sign(&secret, &decoded));
        return ExitCode::SUCCESS;
    }
    let secret = match secret.or_else(|| settings.secrets.first().cloned()) {
        Some(s) => s,
        None => return fail("no secret: pass --secret or configure `secrets`"),
    };
    let signature = imaginator::signature::sign(&secret, &path);
    if query_signed {
        let separator = if path.contains('?') { '&' } else { '?' };
        println!("/{path}{separator}signature={signature}");
    } else {
        println!("/{signature}/{path}");
    }
    ExitCode::SUCCESS
}

fn fail(message: &str) -> ExitCode {
    eprintln!("imaginator: {message}");
    ExitCode::from(2)
}
