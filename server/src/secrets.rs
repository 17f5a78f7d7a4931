//! Where `serve` takes its secrets (the bearer token, a connection string with a password):
//! a file or the environment, not the command line.
//!
//! Why: every local user can read any process's arguments (`ps`, `/proc/<pid>/cmdline`);
//! a process's environment (`/proc/<pid>/environ`) only its owner and root can, and a mode
//! 0600 file only its owner. The old flags keep working, with a warning on stderr. The dev
//! cluster needs none of this: its gateways run inside its own process and are handed their
//! token and the PostgreSQL password in memory; it writes both to its 0600 state file for
//! clients (see `cluster::state`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A secret and what to warn about how it was passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Secret {
    pub value: String,
    /// Printed to stderr by the caller: an argv secret, or a file others can read.
    pub warning: Option<String>,
}

/// The secret from `file` (surrounding whitespace trimmed), else from `argv` (warned about
/// as `flag`), else from the environment variable `env`; `None` when none is given. Empty
/// values are errors (an empty token would be a typo, not a choice).
pub fn resolve(argv: Option<String>, file: Option<&Path>, env: &str, flag: &str) -> Result<Option<Secret>, String> {
    let secret = if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mode = std::fs::metadata(path).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
        let warning = (mode & 0o077 != 0)
            .then(|| format!("{} is readable by other users (mode {mode:o}); `chmod 600` it", path.display()));
        Secret { value: text.trim().to_string(), warning }
    } else if let Some(value) = argv {
        let warning = Some(format!(
            "{flag} puts a secret on the command line, which every local user can read (ps); \
             use {flag}-file or {env} instead"
        ));
        Secret { value, warning }
    } else if let Some(value) = std::env::var_os(env) {
        let value = value.into_string().map_err(|_| format!("{env} is not UTF-8"))?;
        Secret { value: value.trim().to_string(), warning: None }
    } else {
        return Ok(None);
    };
    if secret.value.is_empty() {
        return Err(format!("the value for {flag} is empty"));
    }
    Ok(Some(secret))
}

/// Whether a libpq connection string carries a password (`password=...`, or `user:pass@` in a URL).
pub fn has_password(conninfo: &str) -> bool {
    conninfo.parse::<tokio_postgres::Config>().is_ok_and(|c| c.get_password().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_wins_and_is_trimmed_and_argv_is_warned_about() {
        let path = std::env::temp_dir().join(format!("replikit-secret-test-{}", std::process::id()));
        std::fs::write(&path, "s3cret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let from_file = resolve(Some("argv".into()), Some(&path), "REPLIKIT_TEST_UNSET", "--auth-token").unwrap();
        assert_eq!(from_file, Some(Secret { value: "s3cret".into(), warning: None }));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = resolve(None, Some(&path), "REPLIKIT_TEST_UNSET", "--auth-token").unwrap().unwrap();
        assert!(open.warning.unwrap().contains("chmod 600"));
        std::fs::write(&path, " \n").unwrap();
        assert!(resolve(None, Some(&path), "REPLIKIT_TEST_UNSET", "--auth-token").is_err());
        std::fs::remove_file(&path).unwrap();
        let argv = resolve(Some("t".into()), None, "REPLIKIT_TEST_UNSET", "--auth-token").unwrap().unwrap();
        assert!(argv.warning.unwrap().contains("--auth-token-file or REPLIKIT_TEST_UNSET"));
        assert_eq!(resolve(None, None, "REPLIKIT_TEST_UNSET", "--auth-token"), Ok(None));
        assert!(resolve(None, Some(Path::new("/nonexistent/x")), "REPLIKIT_TEST_UNSET", "--pg").is_err());
    }

    #[test]
    fn passwords_are_found_in_key_value_and_url_forms() {
        assert!(has_password("host=127.0.0.1 user=app password=pw"));
        assert!(has_password("postgresql://app:pw@127.0.0.1/db"));
        assert!(!has_password("host=127.0.0.1 port=5432 user=postgres dbname=postgres"));
        assert!(!has_password("postgresql://app@127.0.0.1/db"));
    }
}
