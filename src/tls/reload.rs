//! A certificate resolver that re-reads the serving key pair when its files change.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::Result;
use super::key_pair::{KeyPairFiles, load_key_pair};

/// Minimum time between two checks of the key pair files.
pub(super) const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Modification time and size of both files; a change of either means "reload".
type Stamp = [(SystemTime, u64); 2];

fn stamp(files: &KeyPairFiles) -> io::Result<Stamp> {
    let one = |path: &Path| -> io::Result<(SystemTime, u64)> {
        let meta = fs::metadata(path)?;
        Ok((meta.modified()?, meta.len()))
    };
    Ok([one(&files.cert)?, one(&files.key)?])
}

#[derive(Debug)]
struct ReloadState {
    last_check: Instant,
    loaded: Option<Stamp>,
    failed: Option<Stamp>,
}

/// A [`ResolvesServerCert`] serving one key pair and re-reading it when its files change.
///
/// A handshake checks the files' modification times at most once per second (without
/// blocking when another handshake is already checking); a changed pair is loaded and used
/// for new handshakes, existing connections are untouched. A pair that fails to load is
/// logged once and the previous one stays in use.
#[derive(Debug)]
pub struct ReloadingCertResolver {
    files: KeyPairFiles,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    state: Mutex<ReloadState>,
}

impl ReloadingCertResolver {
    /// Load the pair now; fails when it is unusable.
    pub fn new(files: KeyPairFiles, provider: Arc<CryptoProvider>) -> Result<Self> {
        let before = stamp(&files).ok();
        let key = load_key_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: ArcSwap::from_pointee(key),
            state: Mutex::new(ReloadState {
                last_check: Instant::now(),
                loaded: before,
                failed: None,
            }),
        })
    }

    /// The files being served.
    pub fn files(&self) -> &KeyPairFiles {
        &self.files
    }

    /// The key pair new handshakes get.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Check the files now (ignoring the once-per-second limit); returns true when a new
    /// pair was loaded.
    pub fn reload_if_changed(&self) -> bool {
        match self.state.lock() {
            Ok(mut state) => self.check(&mut state),
            Err(poisoned) => self.check(&mut poisoned.into_inner()),
        }
    }

    fn maybe_reload(&self) {
        // A handshake never waits for another one's check.
        let Ok(mut state) = self.state.try_lock() else {
            return;
        };
        if state.last_check.elapsed() >= RELOAD_CHECK_INTERVAL {
            self.check(&mut state);
        }
    }

    fn check(&self, state: &mut ReloadState) -> bool {
        state.last_check = Instant::now();
        let now = match stamp(&self.files) {
            Ok(now) => now,
            Err(err) => {
                tracing::debug!(cert = %self.files.cert.display(), key = %self.files.key.display(), error = %err, "cannot stat serving key pair; keeping the current one");
                return false;
            }
        };
        if state.loaded == Some(now) || state.failed == Some(now) {
            return false;
        }
        match load_key_pair(&self.files, &self.provider) {
            Ok(key) => {
                self.current.store(Arc::new(key));
                state.loaded = Some(now);
                state.failed = None;
                tracing::info!(cert = %self.files.cert.display(), "reloaded serving certificate");
                true
            }
            Err(err) => {
                state.failed = Some(now);
                tracing::warn!(error = %err, "new serving key pair rejected; keeping the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}
