//! Micro-benchmark of the token cache's hit path: what every vault call pays to get
//! its `Authorization` header once a token is cached, alone and with another thread
//! reading the same cache.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use criterion::Criterion;
use futures_util::FutureExt;
use vault_auth::{AuthScheme, CacheKey, FetchedToken, TokenCache, TokenSource};
use vault_core::{AccessToken, Report, VaultError};

/// A source that always returns a one-hour token (fetched once, before timing).
#[derive(Debug)]
struct OneHourToken;

#[async_trait::async_trait]
impl TokenSource for OneHourToken {
    async fn fetch(&self) -> Result<FetchedToken, Report<VaultError>> {
        Ok(FetchedToken {
            token: AccessToken::new("bench-token-0123456789abcdefghijklmnopqrstuvwxyz"),
            lifetime: Duration::from_secs(3600),
            scheme: AuthScheme::Bearer,
        })
    }

    fn cache_key(&self) -> CacheKey {
        CacheKey::new("https://auth.example.invalid/token", "bench-client")
    }
}

fn hit_path(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime for the first fetch");
    let cache = TokenCache::builder(Arc::new(OneHourToken)).build();
    runtime.block_on(cache.get()).expect("the first fetch");

    // A hit completes without awaiting: polling it once must return the token.
    let hit = |cache: &TokenCache| {
        cache
            .get()
            .now_or_never()
            .expect("a hit never waits")
            .expect("a cached token")
    };
    c.bench_function("token_cache/get_hit", |b| {
        b.iter(|| black_box(hit(&cache)).authorization().len())
    });

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (cache, stop) = (cache.clone(), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                black_box(cache.get().now_or_never());
            }
        })
    };
    c.bench_function("token_cache/get_hit_while_another_thread_reads", |b| {
        b.iter(|| black_box(hit(&cache)).authorization().len())
    });
    stop.store(true, Ordering::Relaxed);
    reader.join().expect("the reader thread");
}

// What `criterion_group!`/`criterion_main!` expand to, without their undocumented
// public function.
fn main() {
    let mut criterion = Criterion::default().configure_from_args();
    hit_path(&mut criterion);
    criterion.final_summary();
}
