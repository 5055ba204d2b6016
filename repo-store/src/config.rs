//! The S3 client's configuration, from the standard AWS chain.
//!
//! In order of precedence:
//! 1. the environment: `AWS_ENDPOINT_URL_S3`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//!    `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//!    and the container / web-identity variables object_store understands;
//! 2. the profile `AWS_PROFILE` (default `default`) in `AWS_SHARED_CREDENTIALS_FILE`
//!    (`~/.aws/credentials`) and `AWS_CONFIG_FILE` (`~/.aws/config`): `aws_access_key_id`,
//!    `aws_secret_access_key`, `aws_session_token`, `region`, `endpoint_url`;
//! 3. instance metadata (EC2, ECS), as object_store does when nothing else gives credentials.
//!
//! A custom endpoint (a local or non-AWS S3 server) is addressed path-style
//! (`ENDPOINT/BUCKET/KEY`), and plain `http://` is allowed for it.

use crate::error::{self, Result};
use object_store::ClientOptions;
use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Settings read from a profile.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url` (or `services`-less `s3 = endpoint_url = …` is not supported).
    pub endpoint_url: Option<String>,
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Parses an INI file into sections of key/value pairs.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut out: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_owned();
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    out
}

fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(error::Error::Profile {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Reads profile `name` from the shared credentials and config files.
pub fn read_profile(name: &str, credentials: &Path, config: &Path) -> Result<Profile> {
    let mut p = Profile::default();
    if let Some(text) = read_optional(credentials)?
        && let Some(s) = parse_ini(&text).get(name)
    {
        p.access_key_id = s.get("aws_access_key_id").cloned();
        p.secret_access_key = s.get("aws_secret_access_key").cloned();
        p.session_token = s.get("aws_session_token").cloned();
    }
    if let Some(text) = read_optional(config)? {
        let sections = parse_ini(&text);
        let section = if name == "default" {
            sections
                .get("default")
                .or_else(|| sections.get("profile default"))
        } else {
            sections.get(&format!("profile {name}"))
        };
        if let Some(s) = section {
            p.region = s.get("region").cloned();
            p.endpoint_url = s.get("endpoint_url").cloned();
            p.access_key_id = p
                .access_key_id
                .or_else(|| s.get("aws_access_key_id").cloned());
            p.secret_access_key = p
                .secret_access_key
                .or_else(|| s.get("aws_secret_access_key").cloned());
            p.session_token = p
                .session_token
                .or_else(|| s.get("aws_session_token").cloned());
        }
    }
    Ok(p)
}

/// The profile named by `AWS_PROFILE` from the usual files.
pub fn env_profile() -> Result<Profile> {
    let name = env("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let aws_dir = home().unwrap_or_default().join(".aws");
    let credentials = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| aws_dir.join("credentials"));
    let config = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| aws_dir.join("config"));
    read_profile(&name, &credentials, &config)
}

/// A client builder for `bucket` from the environment and profile.
pub fn builder(bucket: &str) -> Result<AmazonS3Builder> {
    // object_store reads every AWS_* variable it knows (keys, region, endpoints, tokens).
    let mut b = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_conditional_put(S3ConditionalPut::ETagMatch);
    let profile = env_profile()?;
    let keys_in_env = env("AWS_ACCESS_KEY_ID").is_some();
    if !keys_in_env
        && let (Some(id), Some(secret)) = (&profile.access_key_id, &profile.secret_access_key)
    {
        b = b.with_access_key_id(id).with_secret_access_key(secret);
        if let Some(token) = &profile.session_token {
            b = b.with_token(token);
        }
    }
    let region = env("AWS_REGION")
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or(profile.region)
        .unwrap_or_else(|| "us-east-1".to_owned());
    b = b.with_region(region);
    let endpoint = env("AWS_ENDPOINT_URL_S3")
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .or(profile.endpoint_url);
    let allow_http = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    if let Some(endpoint) = endpoint {
        b = b
            .with_endpoint(endpoint.trim_end_matches('/'))
            .with_virtual_hosted_style_request(false);
    }
    // Big uploads on slow links: no overall request timeout (object_store's default is 30 s),
    // only a connect timeout.
    b = b.with_client_options(
        ClientOptions::new()
            .with_allow_http(allow_http)
            .with_timeout_disabled()
            .with_connect_timeout(std::time::Duration::from_secs(10)),
    );
    Ok(b)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn profiles_from_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AK1\naws_secret_access_key=SK1\n\n[ops]\naws_access_key_id = AK2\naws_secret_access_key = SK2\naws_session_token = T2\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "# comment\n[default]\nregion = eu-west-1\n[profile ops]\nregion = us-west-2\nendpoint_url = http://127.0.0.1:9000\n",
        )
        .unwrap();
        let d = read_profile("default", &creds, &config).unwrap();
        assert_eq!(d.access_key_id.as_deref(), Some("AK1"));
        assert_eq!(d.region.as_deref(), Some("eu-west-1"));
        assert_eq!(d.endpoint_url, None);
        let ops = read_profile("ops", &creds, &config).unwrap();
        assert_eq!(ops.secret_access_key.as_deref(), Some("SK2"));
        assert_eq!(ops.session_token.as_deref(), Some("T2"));
        assert_eq!(ops.endpoint_url.as_deref(), Some("http://127.0.0.1:9000"));
        let none = read_profile("missing", &dir.path().join("x"), &config).unwrap();
        assert_eq!(none, Profile::default());
    }
}
