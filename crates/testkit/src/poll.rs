//! Waiting for what the server does in the background (events shown, a
//! webhook delivered, a poll finished): a probe asked again every `every`
//! until it answers or `within` has passed.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use tokio::time::{Instant, sleep};

/// Calls `probe` every `every` until it returns `Ok`, for at most `within`;
/// returns that value, or panics naming `what` and the last `Err` (what the
/// probe saw) when time runs out.
pub async fn until<T, E: Display, F: Future<Output = Result<T, E>>>(
    what: &str,
    within: Duration,
    every: Duration,
    probe: impl FnMut() -> F,
) -> T {
    match poll(within, every, probe).await {
        Ok(value) => value,
        Err(last) => panic!("{what}: not within {within:?}; last seen: {last}"),
    }
}

/// Calls `probe` every `every` until `done` holds for what it returns, for at
/// most `within`; returns that value, or the last one when time runs out, for
/// callers whose own assertions say better what was missing.
pub async fn until_or_last<T, F: Future<Output = T>>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let checked = poll(within, every, || {
        let seen = probe();
        let done = &done;
        async move {
            let seen = seen.await;
            if done(&seen) { Ok(seen) } else { Err(seen) }
        }
    });
    checked.await.unwrap_or_else(|last| last)
}

/// The probe's first `Ok`, or its last `Err` once `within` has passed. The
/// probe runs at least once, and once more after the deadline if a sleep
/// crosses it.
async fn poll<T, E, F: Future<Output = Result<T, E>>>(
    within: Duration,
    every: Duration,
    mut probe: impl FnMut() -> F,
) -> Result<T, E> {
    let deadline = Instant::now() + within;
    loop {
        let last = match probe().await {
            Ok(value) => return Ok(value),
            Err(last) => last,
        };
        if Instant::now() >= deadline {
            return Err(last);
        }
        sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    const EVERY: Duration = Duration::from_millis(5);

    #[tokio::test]
    async fn until_returns_the_first_ok_without_waiting_further() {
        let calls = Cell::new(0);
        let started = Instant::now();
        let got = until("the third call", Duration::from_secs(5), EVERY, || async {
            calls.set(calls.get() + 1);
            if calls.get() == 3 {
                Ok(calls.get())
            } else {
                Err(calls.get())
            }
        })
        .await;
        assert_eq!((got, calls.get()), (3, 3));
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    #[should_panic(expected = "the flag: not within 50ms; last seen: false")]
    async fn until_panics_naming_what_and_the_last_observation() {
        until("the flag", Duration::from_millis(50), EVERY, || async {
            Err::<(), _>(false)
        })
        .await;
    }

    #[tokio::test]
    async fn until_panics_only_once_the_time_has_passed() {
        let started = Instant::now();
        let waited = tokio::spawn(until(
            "never",
            Duration::from_millis(100),
            EVERY,
            || async { Err::<(), _>("no") },
        ))
        .await;
        assert!(waited.is_err_and(|e| e.is_panic()));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn until_or_last_returns_the_last_value_when_time_runs_out() {
        let calls = Cell::new(0);
        let started = Instant::now();
        let got = until_or_last(
            Duration::from_millis(50),
            EVERY,
            || async {
                calls.set(calls.get() + 1);
                calls.get()
            },
            |n| *n > 1_000_000,
        )
        .await;
        assert!(started.elapsed() >= Duration::from_millis(50));
        assert!(got > 1, "asked once only");
        assert_eq!(got, calls.get());
    }

    #[tokio::test]
    async fn until_or_last_stops_once_done_holds() {
        let calls = Cell::new(0);
        let got = until_or_last(
            Duration::from_secs(5),
            EVERY,
            || async {
                calls.set(calls.get() + 1);
                calls.get()
            },
            |n| *n == 2,
        )
        .await;
        assert_eq!((got, calls.get()), (2, 2));
    }
}
