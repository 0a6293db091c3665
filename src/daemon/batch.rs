//! When pending work runs: coalescing (leading edge, quiet window, maximum delay) and retries
//! with backoff. Pure functions of `now`, so they are tested without a clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use crate::config::Coalesce;
use crate::pipeline::UnitId;

const RETRY_FIRST: Duration = Duration::from_secs(1);
const RETRY_CAP: Duration = Duration::from_secs(60);

/// Units waiting to be applied, and when.
#[derive(Debug, Default)]
pub struct Batch {
    pending: BTreeSet<UnitId>,
    /// When the first change of this batch arrived.
    since: Option<Instant>,
    /// When the latest change arrived.
    last_change: Option<Instant>,
    /// The batch started after a quiet spell (or holds a due retry): apply at once.
    immediate: bool,
    /// When the last change arrived or the last apply finished, whichever is later.
    last_activity: Option<Instant>,
}

impl Batch {
    /// Queues units after a change at `now`. A change after a quiet spell of `window` opens a
    /// batch that runs at once; one within it waits for the store to go quiet.
    pub fn mark(
        &mut self,
        units: impl IntoIterator<Item = UnitId>,
        now: Instant,
        window: Duration,
    ) {
        let was_empty = self.pending.is_empty();
        self.pending.extend(units);
        if self.pending.is_empty() {
            return;
        }
        if was_empty {
            self.since = Some(now);
            self.immediate = self
                .last_activity
                .is_none_or(|t| now.duration_since(t) >= window);
        }
        self.last_change = Some(now);
        self.last_activity = Some(now);
    }

    /// Queues units that are due now (retries): the batch runs at once.
    pub fn force(&mut self, units: impl IntoIterator<Item = UnitId>, now: Instant) {
        let before = self.pending.len();
        self.pending.extend(units);
        if self.pending.len() > before {
            self.since.get_or_insert(now);
            self.immediate = true;
        }
    }

    /// When the pending batch is due, if there is one.
    pub fn deadline(&self, c: Coalesce) -> Option<Instant> {
        match (self.pending.is_empty(), self.since, self.last_change) {
            (false, Some(since), _) if self.immediate => Some(since),
            (false, Some(since), Some(last)) => Some((last + c.window).min(since + c.max_delay)),
            (false, Some(since), None) => Some(since),
            _ => None,
        }
    }

    /// The units to apply now, and when the first of them was marked; None when not due.
    pub fn take_due(&mut self, now: Instant, c: Coalesce) -> Option<(Vec<UnitId>, Instant)> {
        let due = self.deadline(c)?;
        if due > now {
            return None;
        }
        let since = self.since.take().unwrap_or(now);
        self.last_change = None;
        self.immediate = false;
        Some((
            std::mem::take(&mut self.pending).into_iter().collect(),
            since,
        ))
    }

    /// A pass finished at `at`: changes within the window after it are batched.
    pub fn applied(&mut self, at: Instant) {
        self.last_activity = Some(at);
    }

    pub fn retain(&mut self, keep: impl Fn(&UnitId) -> bool) {
        self.pending.retain(|u| keep(u));
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

/// Failed units and when each is tried again: 1 s, 2 s, 4 s … capped at 60 s.
#[derive(Debug, Default)]
pub struct Retries {
    failed: BTreeMap<UnitId, (u32, Instant)>,
}

impl Retries {
    /// Records a failure at `now`; returns the wait before the next attempt.
    pub fn failed(&mut self, unit: &UnitId, now: Instant) -> Duration {
        let attempts = self.failed.get(unit).map_or(0, |r| r.0) + 1;
        let wait = RETRY_FIRST
            .saturating_mul(1 << (attempts - 1).min(6))
            .min(RETRY_CAP);
        self.failed.insert(unit.clone(), (attempts, now + wait));
        wait
    }

    /// Tries `unit` again at `at` (the end of a shrink hold), without counting a failure.
    pub fn at(&mut self, unit: &UnitId, at: Instant) {
        self.failed.insert(unit.clone(), (0, at));
    }

    pub fn succeeded(&mut self, unit: &UnitId) {
        self.failed.remove(unit);
    }

    pub fn due(&self, now: Instant) -> Vec<UnitId> {
        self.failed
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(u, _)| u.clone())
            .collect()
    }

    pub fn next(&self) -> Option<Instant> {
        self.failed.values().map(|(_, at)| *at).min()
    }

    pub fn retain(&mut self, keep: impl Fn(&UnitId) -> bool) {
        self.failed.retain(|u, _| keep(u));
    }

    pub fn len(&self) -> usize {
        self.failed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C: Coalesce = Coalesce {
        window: Duration::from_millis(100),
        max_delay: Duration::from_millis(2000),
    };

    fn u(name: &str) -> UnitId {
        UnitId {
            resource: name.into(),
            part: None,
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_change_after_a_quiet_spell_runs_at_once() {
        let t0 = Instant::now();
        let mut b = Batch::default();
        b.mark([u("a")], t0, C.window);
        assert_eq!(b.deadline(C), Some(t0));
        let (units, since) = b.take_due(t0, C).expect("due");
        assert_eq!((units, since), (vec![u("a")], t0));
        assert_eq!(b.deadline(C), None);
    }

    #[test]
    fn changes_right_after_an_apply_wait_for_quiet_and_merge() {
        let t0 = Instant::now();
        let mut b = Batch::default();
        b.applied(t0);
        b.mark([u("a")], t0 + ms(10), C.window);
        b.mark([u("b")], t0 + ms(60), C.window);
        b.mark([u("a")], t0 + ms(90), C.window);
        assert_eq!(
            b.deadline(C),
            Some(t0 + ms(190)),
            "quiet for a window after the last"
        );
        assert!(b.take_due(t0 + ms(189), C).is_none());
        let (units, since) = b.take_due(t0 + ms(190), C).expect("due");
        assert_eq!(units, vec![u("a"), u("b")]);
        assert_eq!(since, t0 + ms(10));
    }

    #[test]
    fn a_never_ending_stream_still_lands_by_the_maximum_delay() {
        let t0 = Instant::now();
        let mut b = Batch::default();
        b.applied(t0);
        for i in 1..=100 {
            b.mark([u("a")], t0 + ms(i * 50), C.window);
        }
        assert_eq!(b.deadline(C), Some(t0 + ms(50) + C.max_delay));
    }

    #[test]
    fn a_due_retry_runs_at_once_and_backs_off_while_it_fails() {
        let t0 = Instant::now();
        let mut r = Retries::default();
        assert_eq!(r.failed(&u("a"), t0), ms(1000));
        assert_eq!(r.failed(&u("a"), t0), ms(2000));
        for _ in 0..10 {
            r.failed(&u("a"), t0);
        }
        assert_eq!(r.failed(&u("a"), t0), ms(60_000), "capped");
        assert!(r.due(t0 + ms(59_999)).is_empty());
        let mut b = Batch::default();
        b.applied(t0 + ms(59_990));
        b.force(r.due(t0 + ms(60_000)), t0 + ms(60_000));
        assert_eq!(
            b.deadline(C),
            Some(t0 + ms(60_000)),
            "at once, not after a window"
        );
        r.succeeded(&u("a"));
        assert_eq!(r.next(), None);
    }
}
