//! The refresh loop: each round evicts idle targets and refreshes the due ones, fetching
//! the range each does not have yet and handing the CPU work to [`super::compute`].

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use futures::StreamExt;

use crate::config::ModelRef;
use crate::forecast::Model;
use crate::prometheus::{RangeSeries, range_chunks};
use crate::units::{from_unix, unix};

use super::compute::{Held, compute, publish};
use super::targets::{Frame, TargetState};
use super::{Engine, Reason};

/// Buckets at the end of a history fetched again by the next incremental refresh.
const REFETCH_STEPS: i64 = 1;

/// A due target's fetched range (or why not).
pub(super) struct Fetched {
    pub(super) target: Arc<TargetState>,
    pub(super) end: i64,
    pub(super) result: Result<Vec<RangeSeries>, String>,
}

impl Engine {
    pub(super) fn start_loop(&self) {
        if !self.options.background || self.loop_started.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak = self.self_ref.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(engine) = weak.upgrade() else { return };
                engine.round(SystemTime::now()).await;
            }
        });
    }

    /// One background round at `now`: evict idle targets, refresh the due ones.
    pub async fn round(&self, now: SystemTime) {
        self.evict_idle(now);
        let now_secs = unix(now);
        let due: Vec<Arc<TargetState>> = self
            .targets()
            .into_iter()
            .filter(|t| t.next_due.load(Ordering::Relaxed) <= now_secs)
            .collect();
        if !due.is_empty() {
            self.refresh(due, now).await;
        }
    }

    /// Refreshes `targets` as of `now`: fetch the new range of each, then fit (when due)
    /// and predict all their series, batched per fitted model, and publish the frames.
    pub async fn refresh(&self, targets: Vec<Arc<TargetState>>, now: SystemTime) {
        let started = Instant::now();
        let now_secs = unix(now);
        let mine: Vec<Arc<TargetState>> = targets
            .into_iter()
            .filter(|t| !t.busy.swap(true, Ordering::AcqRel))
            .collect();
        if mine.is_empty() {
            return;
        }
        let fetches = futures::stream::iter(mine.into_iter().map(|t| self.fetch(t, now_secs)))
            .buffer_unordered(self.options.concurrency.max(1))
            .collect::<Vec<Fetched>>()
            .await;
        let compute_started = Instant::now();
        let targets: Vec<Arc<TargetState>> = fetches.iter().map(|f| f.target.clone()).collect();
        // CPU work (merge, fit, predict) stays off the request-serving workers.
        let work = {
            let metrics = self.metrics.clone();
            let shared = self.shared_fits.clone();
            let budget = self.series.clone();
            let models = self.models.clone();
            let refit = i64::try_from(self.options.refit_interval.as_secs()).unwrap_or(3600);
            let cache = self.cached_models(&fetches);
            move || {
                compute(
                    fetches,
                    now_secs,
                    refit,
                    &metrics,
                    models.as_ref(),
                    cache,
                    Held {
                        fits: &shared,
                        series: &budget,
                    },
                )
            }
        };
        if tokio::task::spawn_blocking(work).await.is_err() {
            tracing::error!("forecast refresh computation panicked");
            for target in &targets {
                // A new target's requests would each wait out --forecast-first-wait for a
                // frame that never comes: they serve live at once (a frame already
                // published goes stale as after failed refreshes).
                if target.frame().is_none() {
                    publish(
                        target,
                        Frame {
                            origin: now_secs,
                            failure: Some(Reason::ModelError),
                            series: HashMap::new(),
                        },
                    );
                }
            }
        }
        for target in targets {
            target.busy.store(false, Ordering::Release);
        }
        self.metrics.forecast_refreshed(
            started.elapsed().as_secs_f64(),
            compute_started.elapsed().as_secs_f64(),
        );
    }

    /// The pre-trained (ONNX) models the fetched targets need, loaded once and cached (load
    /// errors are retried next round). Built-in models are made per series.
    fn cached_models(
        &self,
        fetches: &[Fetched],
    ) -> HashMap<ModelRef, Result<Arc<dyn Model>, String>> {
        let mut out = HashMap::new();
        let mut cache = self.model_cache.lock().unwrap_or_else(|p| p.into_inner());
        for f in fetches {
            let model = &f.target.spec.model;
            if !matches!(model, ModelRef::Onnx(_)) || out.contains_key(model) {
                continue;
            }
            let loaded = match cache.get(model) {
                Some(m) => Ok(m.clone()),
                None => {
                    let loaded = (self.models)(model);
                    if let Ok(m) = &loaded {
                        cache.insert(model.clone(), m.clone());
                    }
                    loaded
                }
            };
            out.insert(model.clone(), loaded);
        }
        out
    }

    /// Fetches the range a target does not have yet (in chunks Prometheus accepts).
    async fn fetch(&self, target: Arc<TargetState>, now_secs: i64) -> Fetched {
        let step = target.step;
        let end = now_secs.div_euclid(step) * step;
        let buckets = i64::try_from(target.spec.history_buckets()).unwrap_or(i64::MAX);
        let whole = end - (buckets - 1).max(0) * step;
        let start = {
            let data = target.lock();
            match data.fetched_until {
                // Series the budget refused get their whole history once there is room, and
                // so do series of a target that holds none (Thanos Query answers empty
                // until it has found its stores): they join with the history the backend
                // has, as on a first fetch, not with the newest point alone.
                Some(_)
                    if (!data.refused.is_empty() || data.series.is_empty())
                        && self.series.has_room() =>
                {
                    whole
                }
                // From the newest bucket already held, asked for again (a scrape in flight at
                // the step boundary, or remote-write lag in Mimir or Thanos Receive, lands
                // after it was first read; without this it would stay wrong, or missing, a
                // history_gap, for good), but after an outage longer than the history only
                // the history: the range missed grows with every failed round, and a backend
                // may refuse it (or time out on it) round after round.
                Some(until) => (until + step - REFETCH_STEPS * step).max(whole),
                None => whole,
            }
        };
        let mut series: Vec<RangeSeries> = Vec::new();
        for (chunk_start, chunk_end) in range_chunks(start, end, step) {
            match self
                .backend
                .query_range(
                    &target.key.promql,
                    from_unix(chunk_start),
                    from_unix(chunk_end),
                    Duration::from_secs(u64::try_from(step).unwrap_or(60)),
                )
                .await
            {
                Ok(mut part) => series.append(&mut part),
                Err(e) => {
                    return Fetched {
                        target,
                        end,
                        result: Err(e.to_string()),
                    };
                }
            }
        }
        Fetched {
            target,
            end,
            result: Ok(series),
        }
    }
}
