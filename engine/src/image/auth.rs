//! Registry authentication: `WWW-Authenticate` challenges, the bearer token flow with a token
//! cache, and credentials from `~/.docker/config.json`.

use base64::Engine as _;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or personal access token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// `Basic <base64(user:pass)>`.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication.
    Basic {
        /// The realm.
        realm: String,
    },
    /// The distribution token flow.
    Bearer {
        /// The token endpoint.
        realm: String,
        /// The service the token is for.
        service: Option<String>,
        /// The scope the registry suggested, if any.
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses one `WWW-Authenticate` value (`Bearer realm="...",service="..."`).
    pub fn parse(h: &str) -> Option<Self> {
        let h = h.trim();
        let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
        let params = parse_params(rest);
        let get = |k: &str| params.get(k).cloned();
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => Some(Self::Basic {
                realm: get("realm").unwrap_or_default(),
            }),
            "bearer" => Some(Self::Bearer {
                realm: get("realm")?,
                service: get("service"),
                scope: get("scope"),
            }),
            _ => None,
        }
    }
}

fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i] == b' ') {
            i += 1;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        let key = s[ks..i].trim().to_ascii_lowercase();
        i += 1;
        let mut val = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                val.push(b[i] as char);
                i += 1;
            }
            i += 1;
        } else {
            let vs = i.min(b.len());
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            val = s[vs..i.min(b.len())].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, val);
        }
    }
    out
}

/// Bearer tokens by scope, kept until shortly before they expire.
#[derive(Debug, Default)]
pub struct TokenCache {
    tokens: HashMap<String, (String, Instant)>,
}

impl TokenCache {
    /// A cached, still valid token for `scope`.
    pub fn get(&self, scope: &str) -> Option<String> {
        self.tokens
            .get(scope)
            .filter(|(_, until)| Instant::now() < *until)
            .map(|(t, _)| t.clone())
    }

    /// Caches a token valid for `expires_in` seconds (60 when the server did not say).
    pub fn put(&mut self, scope: &str, token: String, expires_in: Option<u64>) {
        let secs = expires_in.unwrap_or(60).max(60);
        // Renew a little early so a request never leaves with a token about to expire.
        let until = Instant::now() + Duration::from_secs(secs.saturating_sub(10));
        self.tokens.insert(scope.to_string(), (token, until));
    }
}

/// The token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    /// The token (Docker's name).
    #[serde(default)]
    pub token: Option<String>,
    /// The token (OAuth2's name).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Lifetime in seconds.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// The Docker CLI's config file: `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.
pub fn docker_config_path() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(Path::new(&d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker").join("config.json"))
}

#[derive(serde::Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, DockerAuth>,
}

#[derive(serde::Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// Credentials for `domain` from a Docker config file (the `auths` section; credential
/// helpers are not consulted).
pub fn credentials_from_docker_config(path: &Path, domain: &str) -> Option<Credentials> {
    let data = std::fs::read(path).ok()?;
    let cfg: DockerConfig = serde_json::from_slice(&data).ok()?;
    let wanted = if domain == super::reference::DEFAULT_DOMAIN {
        vec![
            "https://index.docker.io/v1/",
            "index.docker.io",
            "docker.io",
            "registry-1.docker.io",
        ]
    } else {
        vec![domain]
    };
    for (key, entry) in &cfg.auths {
        let host = key
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or("");
        if !wanted.iter().any(|w| *w == key || *w == host) {
            continue;
        }
        if let Some(a) = &entry.auth
            && let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(a.trim())
            && let Ok(raw) = String::from_utf8(raw)
            && let Some((u, p)) = raw.split_once(':')
        {
            return Some(Credentials {
                username: u.to_string(),
                password: p.to_string(),
            });
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            Challenge::parse(
                r#"Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/token".into(),
                service: Some("reg".into()),
                scope: Some("repository:a/b:pull".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic {
                realm: "basic-realm".into()
            })
        );
        assert_eq!(Challenge::parse("Negotiate"), None);
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        std::fs::write(
            &p,
            r#"{"auths":{"127.0.0.1:5000":{"auth":"dGVzdHVzZXI6dGVzdHBhc3M="},
                "https://index.docker.io/v1/":{"username":"u","password":"p"}}}"#,
        )
        .unwrap();
        let c = credentials_from_docker_config(&p, "127.0.0.1:5000").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("testuser", "testpass")
        );
        assert_eq!(
            credentials_from_docker_config(&p, "docker.io")
                .unwrap()
                .username,
            "u"
        );
        assert!(credentials_from_docker_config(&p, "other:1").is_none());
    }
}
