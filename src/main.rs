//! Thin binary: read arguments and settings, start telemetry, build, run.

use imaginator::{App, Settings, app, telemetry};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: imaginator [--config FILE] [--print-config]

  --config FILE    read settings from FILE (TOML); also IMAGINATOR_CONFIG
  --print-config   print the effective settings and exit
  --version        print the version and exit

Settings come from defaults, then the file, then IMAGINATOR_* variables
(IMAGINATOR_SECTION__KEY for nested keys).";

fn main() -> ExitCode {
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

    let (settings, warnings) = match Settings::load(config.as_deref(), std::env::vars()) {
        Ok(loaded) => loaded,
        Err(e) => return fail(&e.to_string()),
    };
    if print_config {
        print!("{}", settings.to_toml());
        return ExitCode::SUCCESS;
    }
    telemetry::init(&settings.log);
    for warning in warnings {
        tracing::warn!("{warning}");
    }

    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    let result = runtime.block_on(async {
        let shutdown = app::shutdown_signal()?;
        let app = App::build(settings).await?;
        app.run(shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("imaginator: {message}");
    ExitCode::from(2)
}
