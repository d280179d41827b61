//! Times key parsing, JWT signing, and a fresh key's first signature per call; run by `bench/run.sh`
//! (`cargo run --release --example sign_bench`). Prints figures only,
//! asserts nothing about speed. Optional argument: N (default 200).

use std::time::{Duration, Instant, SystemTime};

use ims_token::{Credentials, PrivateKey};

const KEY: &str = "tests/fixtures/sample-key.pkcs1.pem";
const CREDENTIALS: &str = "tests/fixtures/service-credentials.sample.json";

fn stats(label: &str, mut us: Vec<f64>) {
    us.sort_by(f64::total_cmp);
    let n = us.len();
    let median = if n % 2 == 1 {
        us[n / 2]
    } else {
        (us[n / 2 - 1] + us[n / 2]) / 2.0
    };
    let mean = us.iter().sum::<f64>() / n as f64;
    println!("{label}\tn={n}\tmedian_us={median:.1}\tmean_us={mean:.1}");
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 200,
    };
    let n = n.clamp(1, 100_000);

    let pem = std::fs::read_to_string(KEY)?;
    let mut parse_us = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let key = PrivateKey::from_pem(std::hint::black_box(&pem))?;
        parse_us.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(key.bits());
    }
    stats("key_parse", parse_us);

    let account = match Credentials::from_file(CREDENTIALS)? {
        Credentials::ServiceAccount(account) => account,
        _ => return Err("the sample credentials are not a service account".into()),
    };
    let now = SystemTime::now();
    let lifetime = Duration::from_secs(300);
    let mut sign_us = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let jwt = ims_token::sign_jwt(&account, std::hint::black_box(now), lifetime)?;
        sign_us.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(jwt.secret().len());
    }
    stats("jwt_sign", sign_us);

    // A fresh key's first signature also pays for the RSA precomputation,
    // which parsing defers until a JWT is signed.
    let mut first_us = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let fresh = ims_token::ServiceAccount::builder()
            .client_id(account.client_id())
            .client_secret(account.client_secret().clone())
            .org_id(account.org_id())
            .technical_account_id(account.technical_account_id())
            .private_key(PrivateKey::from_pem(std::hint::black_box(&pem))?)
            .metascopes(&account.metascopes().join(","))
            .build()?;
        let jwt = ims_token::sign_jwt(&fresh, now, lifetime)?;
        first_us.push(start.elapsed().as_secs_f64() * 1e6);
        std::hint::black_box(jwt.secret().len());
    }
    stats("key_first_sign", first_us);
    Ok(())
}
