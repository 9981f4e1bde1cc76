//! Load on the token endpoint of a running broker (scripts/bench-token.sh
//! starts one): logins whose authorization-code redemption is timed, then
//! refresh grants with rotation from many workers at once.
//!
//! Environment: BROKER_URL (required), WORKERS (16), LOAD_SECONDS (15),
//! REQUESTS (stop after this many refreshes; unlimited), LOGINS (200).
//! Prints one JSON line. With MODE=access-token it only signs in once and
//! prints the access token (scripts/bench-mcp.sh loads /mcp with it).

#[allow(dead_code)]
#[path = "../tests/support/flow.rs"]
mod flow;

use std::time::{Duration, Instant};

use flow::{param, Flow, Pkce};

const EMAIL: &str = "dev@example.com";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A logged-in client: its id and current refresh token; the redemption time.
async fn login(base: &str) -> (String, String, Duration) {
    let flow = Flow::new(base);
    let client = flow.public_client().await;
    let pkce = Pkce::new();
    let code = param(&flow.authorize(&client, &pkce, EMAIL).await, "code").unwrap();
    let started = Instant::now();
    let (status, tokens) = flow.redeem(&client, &code, &pkce).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{tokens}");
    (
        client,
        tokens["refresh_token"].as_str().unwrap().to_owned(),
        took,
    )
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let base = std::env::var("BROKER_URL").expect("BROKER_URL of a running broker");
    if std::env::var("MODE").as_deref() == Ok("access-token") {
        let flow = Flow::new(&base);
        println!(
            "{}",
            flow.access_token(EMAIL).await["access_token"]
                .as_str()
                .unwrap()
        );
        return;
    }
    let workers = env_or("WORKERS", 16);
    let seconds = env_or("LOAD_SECONDS", 15);
    let limit = env_or("REQUESTS", u64::MAX);
    let logins = env_or("LOGINS", 200).max(workers);

    let mut sessions = Vec::new();
    let mut redemptions = Vec::new();
    for _ in 0..logins {
        let (client, refresh, took) = login(&base).await;
        redemptions.push(took);
        sessions.push((client, refresh));
    }
    redemptions.sort();
    sessions.truncate(workers as usize);

    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let per_worker = limit / workers;
    let started = Instant::now();
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|(client, mut refresh)| {
            let (http, url) = (http.clone(), format!("{base}/token"));
            tokio::spawn(async move {
                let (mut done, mut failed) = (0u64, 0u64);
                while Instant::now() < deadline && done < per_worker {
                    let form = [
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh.as_str()),
                        ("client_id", client.as_str()),
                    ];
                    let r = http.post(&url).form(&form).send().await;
                    match r {
                        Ok(r) if r.status() == 200 => {
                            let body: serde_json::Value = r.json().await.unwrap();
                            refresh = body["refresh_token"].as_str().unwrap().to_owned();
                            done += 1;
                        }
                        _ => failed += 1,
                    }
                }
                (done, failed)
            })
        })
        .collect();
    let (mut done, mut failed) = (0, 0);
    for task in tasks {
        let (d, f) = task.await.unwrap();
        done += d;
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "refresh_grants_per_second": (done as f64 / elapsed).round(),
            "refresh_grants": done,
            "refresh_errors": failed,
            "workers": workers,
            "seconds": (elapsed * 10.0).round() / 10.0,
            "code_redemptions": redemptions.len(),
            "code_redemption_p50_ms": (percentile(&redemptions, 0.50) * 100.0).round() / 100.0,
            "code_redemption_p99_ms": (percentile(&redemptions, 0.99) * 100.0).round() / 100.0,
        })
    );
}
