//! Follows the hub's signing-key files while it runs, so `hub keys rotate` and `hub keys
//! retire-previous`, run once for a whole deployment, reach every instance within
//! `keys.reload_interval_secs` without a restart.

use std::path::PathBuf;
use std::time::Duration;

/// Runs forever: every `every`, reads the key files under `dir` and swaps them into
/// `keys` when they changed. A failed read (a missing or unusable file) keeps the keys
/// in use and warns once per distinct failure, and once more when reloading works again.
pub(crate) async fn follow_key_files(keys: token::LiveKeys, dir: PathBuf, every: Duration) {
    let mut failing: Option<String> = None;
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate: the keys were just loaded
    loop {
        ticks.tick().await;
        let (live, from) = (keys.clone(), dir.clone());
        let reloaded = tokio::task::spawn_blocking(move || live.reload(&from)).await;
        match reloaded {
            Ok(Ok(change)) => {
                if failing.take().is_some() {
                    tracing::info!("signing key files readable again");
                }
                if let Some(change) = change {
                    tracing::info!(
                        current = %change.current,
                        published = ?change.published,
                        "signing keys reloaded"
                    );
                }
            }
            Ok(Err(e)) => {
                let error = e.to_string();
                if failing.as_ref() != Some(&error) {
                    tracing::warn!(error = %error, "could not reload the signing keys; keeping the keys in use");
                    failing = Some(error);
                }
            }
            Err(e) => tracing::warn!(error = %e, "signing key reload did not finish"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rotation_is_swapped_in_within_an_interval() {
        let dir = tempfile::tempdir().expect("tempdir");
        let keys = token::LiveKeys::new(token::SigningKeys::init(dir.path()).expect("init"))
            .expect("live");
        let staged = keys.snapshot().published_kids()[1].clone();
        let task = tokio::spawn(follow_key_files(
            keys.clone(),
            dir.path().to_path_buf(),
            Duration::from_millis(20),
        ));
        token::SigningKeys::rotate(dir.path(), Duration::ZERO).expect("rotate");
        for _ in 0..100 {
            if keys.signer().kid() == staged {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(keys.signer().kid(), staged);
        task.abort();
    }
}
