use super::*;
use std::io::Write;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::load(None, env(pairs)).map(|(s, _)| s)
}

#[test]
fn defaults_match_the_documented_contract() {
    let s = load_env(&[]).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
    assert!(s.data_dir.ends_with("data"));
    assert!(s.aliases_dir.ends_with("aliases"));
    assert!(s.data_dir.is_absolute(), "paths are resolved once at start-up");
    assert!(s.workers >= 1);
    assert_eq!(s.queue_capacity(), 4 * s.workers);
    assert_eq!(s.job_deadline.0, Duration::from_secs(30));
}

#[test]
fn environment_overrides_top_level_and_nested_keys() {
    let s = load_env(&[
        ("IMAGINATOR_LISTEN", "127.0.0.1:0"),
        ("IMAGINATOR_WORKERS", "3"),
        ("IMAGINATOR_DATA_DIR", "/tmp/imaginator-test-data"),
        ("IMAGINATOR_LIMITS__MAX_WIDTH", "1000"),
        ("IMAGINATOR_JOB_DEADLINE", "250ms"),
        ("IMAGINATOR_MAX_BODY", "1MiB"),
    ])
    .unwrap();
    assert_eq!(s.listen.port(), 0);
    assert_eq!(s.workers, 3);
    assert_eq!(s.queue_capacity(), 12, "queue follows workers when unset");
    assert_eq!(s.data_dir, PathBuf::from("/tmp/imaginator-test-data"));
    assert_eq!(s.limits.max_width, 1000);
    assert_eq!(s.job_deadline.0, Duration::from_millis(250));
    assert_eq!(s.max_body, ByteSize(1 << 20));
}

#[test]
fn queue_can_be_set_explicitly_even_to_zero() {
    let s = load_env(&[("IMAGINATOR_QUEUE", "0")]).unwrap();
    assert_eq!(s.queue_capacity(), 0);
}

#[test]
fn environment_wins_over_the_file() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "workers = 5\nqueue = 7\n[limits]\nmax_height = 99").unwrap();
    let (s, _) = Settings::load(Some(file.path()), env(&[("IMAGINATOR_WORKERS", "2")])).unwrap();
    assert_eq!(s.workers, 2);
    assert_eq!(s.queue_capacity(), 7);
    assert_eq!(s.limits.max_height, 99);
}

#[test]
fn config_file_can_come_from_the_environment() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "workers = 6").unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let s = load_env(&[("IMAGINATOR_CONFIG", &path)]).unwrap();
    assert_eq!(s.workers, 6);
}

#[test]
fn invalid_values_name_the_variable_and_the_problem() {
    let err = load_env(&[("IMAGINATOR_WORKERS", "many")]).unwrap_err().to_string();
    assert!(
        err.contains("IMAGINATOR_WORKERS") && err.contains("not a whole number"),
        "{err}"
    );

    let err = load_env(&[("IMAGINATOR_WORKERS", "0")]).unwrap_err().to_string();
    assert!(err.contains("workers") && err.contains("between 1 and 256"), "{err}");

    let err = load_env(&[("IMAGINATOR_LISTEN", "not-an-address")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("listen"), "{err}");

    let err = load_env(&[("IMAGINATOR_JOB_DEADLINE", "soon")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("job_deadline") && err.contains("not a duration"), "{err}");

    let err = load_env(&[("IMAGINATOR_LIMITS__MAGICK_MEMORY", "12 parsecs")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("limits.magick_memory") && err.contains("unknown size unit"),
        "{err}"
    );

    assert_eq!(err.lines().count(), 1, "one line: {err}");
}

#[test]
fn unknown_keys_in_the_file_are_errors_naming_the_key() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "[limits]\nmax_widht = 10").unwrap();
    let err = Settings::load(Some(file.path()), vec![]).unwrap_err().to_string();
    assert!(err.contains("max_widht"), "{err}");
}

#[test]
fn unknown_environment_variables_are_warnings_not_errors() {
    let (_, warnings) = Settings::load(None, env(&[("IMAGINATOR_PORT", "tcp://10.0.0.1:80")])).unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].contains("IMAGINATOR_PORT"));
}

#[test]
fn printed_configuration_parses_back_to_the_same_values() {
    let s = load_env(&[("IMAGINATOR_WORKERS", "3"), ("IMAGINATOR_JOB_DEADLINE", "2s")]).unwrap();
    let text = s.to_toml();
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let (again, _) = Settings::load(Some(file.path()), vec![]).unwrap();
    assert_eq!(again.to_toml(), text);
}

#[test]
fn paths_in_a_file_are_relative_to_the_file_and_variables_to_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf").join("imaginator.toml");
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, "aliases_dir = \"aliases\"\ndata_dir = \"/srv/data\"\n").unwrap();
    let (s, _) = Settings::load(Some(&file), env(&[])).unwrap();
    assert_eq!(s.aliases_dir, dir.path().join("conf").join("aliases"));
    assert_eq!(s.data_dir, Path::new("/srv/data"), "absolute paths are kept");
    let (s, _) = Settings::load(Some(&file), env(&[("IMAGINATOR_ALIASES_DIR", "mine")])).unwrap();
    assert_eq!(s.aliases_dir, std::env::current_dir().unwrap().join("mine"));
}

#[test]
fn file_errors_name_line_column_and_the_nearest_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("imaginator.toml");
    std::fs::write(&file, "workers = 2\nlistne = \"127.0.0.1:3000\"\n").unwrap();
    let e = Settings::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(e.contains("line 2, column 1"), "{e}");
    assert!(e.contains("did you mean `listen`?"), "{e}");
    std::fs::write(&file, "workers = \n").unwrap();
    let e = Settings::load(Some(&file), env(&[])).unwrap_err().to_string();
    assert!(e.contains("line 1, column"), "{e}");
    let (_, warnings) = Settings::load(None, env(&[("IMAGINATOR_WORKRES", "2")])).unwrap();
    assert!(
        warnings[0].contains("did you mean `IMAGINATOR_WORKERS`?"),
        "{warnings:?}"
    );
}

#[test]
fn listen_takes_a_port_alone_or_localhost_and_domains_come_from_the_environment() {
    let s = load_env(&[
        ("IMAGINATOR_LISTEN", ":3001"),
        ("IMAGINATOR_DOMAINS__ORIGIN", "http://127.0.0.1:8080/"),
    ])
    .unwrap();
    assert_eq!(s.listen.to_string(), "0.0.0.0:3001");
    assert_eq!(s.domains["origin"], "http://127.0.0.1:8080/");
    let s = load_env(&[("IMAGINATOR_LISTEN", "localhost:3002")]).unwrap();
    assert_eq!(s.listen.to_string(), "127.0.0.1:3002");
    assert!(load_env(&[("IMAGINATOR_DOMAINS__BAD", "ftp://x/")]).is_err());
    assert!(
        load_env(&[("IMAGINATOR_AUTO_FORMATS", "webp,png")])
            .unwrap_err()
            .to_string()
            .contains("auto_formats")
    );
    let s = load_env(&[("IMAGINATOR_AUTO_FORMATS", "webp"), ("IMAGINATOR_CLIENT_HINTS", "on")]).unwrap();
    assert_eq!(s.auto_formats, [ImageFormat::Webp]);
    assert!(s.client_hints);
}

#[test]
fn printed_configuration_has_no_credential_and_loads_back_with_them_given_again() {
    let credentials = [
        ("IMAGINATOR_ADMIN_TOKEN", "admin-token-value"),
        ("IMAGINATOR_SECRETS", "a-secret-of-twenty-chars"),
        ("IMAGINATOR_SIGN_ALL_ROUTES", "true"),
        ("IMAGINATOR_FETCH__PROXY", "http://user:proxy-password@127.0.0.1:3128"),
    ];
    let s = load_env(&credentials).unwrap();
    let text = s.to_toml();
    for secret in ["admin-token-value", "a-secret-of-twenty-chars", "proxy-password"] {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
    assert!(text.contains("#   secrets: 1 (IMAGINATOR_SECRETS)"), "{text}");
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let (alone, _) = Settings::load(Some(file.path()), vec![]).expect("loads back alone");
    assert!(alone.secrets.is_empty() && alone.fetch.proxy == "http://user@127.0.0.1:3128/");
    let (again, _) = Settings::load(Some(file.path()), env(&credentials)).expect("loads back with them");
    assert_eq!(again.to_toml(), text);
}
