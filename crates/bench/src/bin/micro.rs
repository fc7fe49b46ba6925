//! `micro`: the token hot paths beside OpenSSL, measured in the same run.
//!
//! Runs `openssl speed -seconds <n> ecdsap256` (sign/s and verify/s per CPU-second of the openssl
//! process), then times, on this thread and also per CPU-second (so a busy machine stretches
//! neither side): minting a fresh token, verifying a token this verifier has never seen (the full
//! check including the signature, then the cache insert), verifying a token already accepted
//! (the cache hit), and looking a `kid` up among 10 / 100 / 1,000 / 10,000 deployments. Prints
//! each figure next to its reference and the verdict of issue 6's table.
//!
//! Then people's tokens: RS256 (2048-bit RSA, key generated at run time, tokens signed with
//! josekit) verified cold (routing and every check, no cache) in rounds beside
//! `openssl speed -seconds <n> rsa2048`, and answered from the verified-user-token cache
//! (`Users::authenticate` on a token seen before).

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use svcid_bench::people::{ISSUER, loaded_issuer, rs256_token};
use svcid_bench::procfs::{thread_cpu, thread_user_cpu};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::{human, per_second};
use svcid_config::ServerTrust;
use svcid_identity::user::{TokenText, UserKeySet, UserTokenVerifier};
use svcid_identity::{
    Deployment, DeploymentKey, Deployments, GeneratorKey, ManualClock, TokenIssuer, TokenProfile,
    TokenVerifier, VerifyPolicy,
};
use svcid_testkit::jwks::RealmKey;
use svcid_users::Users;

/// Token micro-benchmarks beside `openssl speed ecdsap256`.
#[derive(Debug, Parser)]
struct Args {
    /// Seconds given to each of our figures (per round for mint and cold verify).
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// `-seconds` passed to `openssl speed` (it runs sign, then verify, for that long each).
    #[arg(long, default_value_t = 3)]
    openssl_seconds: u32,
    /// Largest registry for the lookup figures (10, 100, … up to this).
    #[arg(long, default_value_t = 10_000)]
    max_deployments: usize,
    /// Rounds of (ours, openssl speed, ours); the median ratio is reported.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Only run one loop (`mint`, `cold`, `cached`, `user-cold` or `user-cached`) for
    /// `--seconds`, without OpenSSL: for `perf record` or `valgrind --tool=callgrind`.
    #[arg(long)]
    profile: Option<String>,
    /// Which figures: `all`, `modules` (ES256 module tokens) or `users` (RS256 user tokens).
    #[arg(long, default_value = "all")]
    only: String,
}

/// A frozen clock: no token expires during the run, and every figure sees the same time.
const NOW: i64 = 1_700_000_000;

fn main() -> Result<()> {
    let args = Args::parse();
    let budget = Duration::from_secs_f64(args.seconds.clamp(0.2, 60.0));
    if let Some(what) = &args.profile {
        return profile(what, budget);
    }
    println!("micro: load average {} (before)", load_average());
    let (modules, users) = match args.only.as_str() {
        "all" => (true, true),
        "modules" => (true, false),
        "users" => (false, true),
        other => bail!("--only takes all, modules or users, not {other:?}"),
    };
    if modules {
        module_figures(&args, budget)?;
    }
    if users {
        user_figures(&args, budget)?;
    }
    Ok(())
}

/// The module-token figures (ES256 beside `openssl speed ecdsap256`).
fn module_figures(args: &Args, budget: Duration) -> Result<()> {
    let setup = Setup::new()?;
    let rounds = rounds(args, &setup, budget)?;
    let (cached, shared) = cached(&setup, budget)?;
    let (lookups, cold_big) = lookups(args, &setup.clock, budget)?;

    println!();
    println!("micro: load average {} (after)", load_average());
    print_rows(&rounds, &cached);
    print_details(&rounds, &cached, shared, cold_big.as_ref(), &lookups);
    Ok(())
}

/// The user-token figures: RS256 cold verify in rounds beside `openssl speed rsa2048`, then the
/// verified-user-token cache's answer.
fn user_figures(args: &Args, budget: Duration) -> Result<()> {
    let people = UserSetup::new()?;
    let UserSetup {
        settings,
        clock,
        token,
        ..
    } = &people;
    let cold_once = || people.verify_cold();
    let who = cold_once().context("the user token was refused")?;
    println!("user token verified cold: {}", who.username);

    let rounds = args.rounds.clamp(1, 20);
    let mut cold = Measured::default();
    let (mut ratios, mut openssl_runs) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let before = measure(budget / 2, SLOW_BATCH, |_| {
            black_box(cold_once());
        })?;
        let openssl = openssl_speed_rsa(args.openssl_seconds.clamp(1, 30))?;
        let after = measure(budget / 2, SLOW_BATCH, |_| {
            black_box(cold_once());
        })?;
        let round_cold = before.plus(&after);
        ratios.push(round_cold.per_user_second() / openssl.verify);
        println!(
            "round {round}: openssl rsa2048 verify {} | ours RS256 verify cold {} ({:.2} ×) | load {}",
            per_second(openssl.verify),
            per_second(round_cold.per_user_second()),
            round_cold.per_user_second() / openssl.verify,
            load_average()
        );
        cold = cold.plus(&round_cold);
        openssl_runs.push(openssl.verify);
    }
    let ratio = median(ratios.clone());
    let openssl_verify = median(openssl_runs);

    // The cache: `Users::authenticate` on a token it verified before. A hit never waits, so
    // the future is polled once, with no runtime in the way.
    let users = Users::new(settings, &ServerTrust::SystemRoots, clock.clone())
        .context("no user-token issuer configured")?;
    let authenticate = || -> Option<bool> {
        let future = pin!(users.authenticate(black_box(token)));
        match poll_once(future) {
            Poll::Ready(result) => Some(result.is_ok()),
            Poll::Pending => None,
        }
    };
    if authenticate() != Some(true) {
        bail!("the first authenticate of the user token did not accept it at once");
    }
    let cached = measure(budget, 4096, |_| {
        black_box(authenticate());
    })?;
    let (hits, misses) = users.token_cache_counts();
    if misses != 1 || hits < cached.ops {
        bail!("the cached figure missed the cache: {hits} hits, {misses} misses");
    }

    println!();
    println!(
        "micro: load average {} (after the user figures)",
        load_average()
    );
    println!(
        "  ratios by round: {}",
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Row {
        figure: "RS256 user-token verify, cold",
        measured: format!("{} ({ratio:.2} ×)", per_second(cold.per_user_second())),
        reference: format!(
            "openssl rsa2048 verify {} (median)",
            per_second(openssl_verify)
        ),
        target: "≥ 0.9 × openssl",
        verdict: Verdict::from_check(ratio >= 0.9),
    }
    .print();
    Row {
        figure: "user token already verified (cache)",
        measured: human(cached.cpu_per_op()),
        reference: "—".to_owned(),
        target: "≤ 1 µs",
        verdict: Verdict::from_check(cached.cpu_per_op() <= Duration::from_micros(1)),
    }
    .print();
    println!(
        "FIGURE\tRS256 user token cold / cached verify (CPU per op)\t{} / {}",
        human(cold.cpu_per_op()),
        human(cached.cpu_per_op())
    );
    Ok(())
}

/// One issuer with its key set loaded (as from `mp.jwt.verify.publickey`), its verifier, and a
/// token of a person with `DPM_ADMIN` signed by josekit with a key generated at run time.
struct UserSetup {
    settings: svcid_config::UserSettings,
    clock: Arc<ManualClock>,
    keys: UserKeySet,
    verifier: UserTokenVerifier,
    token: String,
}

impl UserSetup {
    fn new() -> Result<Self> {
        let key = RealmKey::signing()?;
        let settings = loaded_issuer(&key)?;
        let clock = Arc::new(ManualClock::new(NOW));
        let policy = settings.issuers[0].policy.clone();
        let keys = UserKeySet::parse(&svcid_testkit::jwks::jwks(&[&key]), policy.key_filter())?;
        let verifier = UserTokenVerifier::new(vec![policy], clock.clone())?;
        let token = rs256_token(&key, key.kid(), ISSUER, "alice", &["DPM_ADMIN"], NOW, 900)?;
        Ok(Self {
            settings,
            clock,
            keys,
            verifier,
            token,
        })
    }

    /// Routes the token only (base64, header and claims read, issuer found): the reading that
    /// sits beside the RSA operation in a cold verify.
    fn route_only(&self) -> bool {
        self.verifier
            .route(black_box(&self.token), &mut TokenText::default())
            .is_ok()
    }

    /// Routes and verifies the token in full (no cache); `None` when refused.
    fn verify_cold(&self) -> Option<svcid_identity::user::UserIdentity> {
        self.verifier
            .route(black_box(&self.token), &mut TokenText::default())
            .ok()
            .and_then(|routed| routed.verify(&self.keys).ok())
    }
}

/// Polls `future` once with a waker that does nothing.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut TaskContext::from_waker(Waker::noop()))
}

/// The issuer, one peer to verify against, and the pool of tokens for the cold verifies.
struct Setup {
    clock: Arc<ManualClock>,
    peer: Vec<Deployment>,
    issuer: TokenIssuer,
    /// Distinct tokens, so a cold verify never meets one its verifier has seen.
    pool: Vec<String>,
}

impl Setup {
    fn new() -> Result<Self> {
        let clock = Arc::new(ManualClock::new(NOW));
        let key = GeneratorKey::generate();
        let peer = vec![deployment("dpe-dev".into(), &key)];
        let issuer = TokenIssuer::new(key, Duration::from_secs(900), clock.clone())?;
        // Cold verify needs tokens the verifier has never seen: a pool of distinct ones, minted first.
        let pool: Vec<String> = (0..2048)
            .map(|_| format!("Internal-jwt {}", issuer.mint("dpm", None)))
            .collect();
        Ok(Self {
            clock,
            peer,
            issuer,
            pool,
        })
    }
}

/// Mint and cold verify over every round, OpenSSL's median figures, and the median ratios.
struct Rounds {
    mint: Measured,
    cold: Measured,
    openssl: OpensslSpeed,
    mint_ratio: f64,
    cold_ratio: f64,
}

/// Rounds: ours, then `openssl speed`, then ours again, so both sides see the same stretch of
/// a shared machine; each round gives a ratio and the median ratio is reported.
fn rounds(args: &Args, setup: &Setup, budget: Duration) -> Result<Rounds> {
    let Setup {
        clock,
        peer,
        issuer,
        pool,
    } = setup;
    let rounds = args.rounds.clamp(1, 20);
    let mut mint = Measured::default();
    let mut cold = Measured::default();
    let mut openssl_runs = Vec::new();
    let (mut mint_ratios, mut cold_ratios) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let before = (
            measure_mint(issuer, budget / 2)?,
            measure_cold(pool, peer, clock, budget / 2)?,
        );
        let openssl = openssl_speed(args.openssl_seconds.clamp(1, 30))?;
        let after = (
            measure_mint(issuer, budget / 2)?,
            measure_cold(pool, peer, clock, budget / 2)?,
        );
        let round_mint = before.0.plus(&after.0);
        let round_cold = before.1.plus(&after.1);
        mint_ratios.push(round_mint.per_user_second() / openssl.sign);
        cold_ratios.push(round_cold.per_user_second() / openssl.verify);
        println!(
            "round {round}: openssl sign {} verify {} | ours mint {} ({:.2} ×) verify cold {} ({:.2} ×) | load {}",
            per_second(openssl.sign),
            per_second(openssl.verify),
            per_second(round_mint.per_user_second()),
            round_mint.per_user_second() / openssl.sign,
            per_second(round_cold.per_user_second()),
            round_cold.per_user_second() / openssl.verify,
            load_average()
        );
        mint = mint.plus(&round_mint);
        cold = cold.plus(&round_cold);
        openssl_runs.push(openssl);
    }
    Ok(Rounds {
        mint,
        cold,
        openssl: OpensslSpeed {
            sign: median(openssl_runs.iter().map(|o| o.sign).collect()),
            verify: median(openssl_runs.iter().map(|o| o.verify).collect()),
        },
        mint_ratio: median(mint_ratios),
        cold_ratio: median(cold_ratios),
    })
}

/// Cached verify: the same token again and again, on one thread and then on two at once (wall
/// time per op per thread).
fn cached(setup: &Setup, budget: Duration) -> Result<(Measured, Duration)> {
    let (pool, peer, clock) = (&setup.pool, &setup.peer, &setup.clock);
    // Sanity: the verifier accepts what the issuer mints.
    fresh_verifier(peer, clock)?
        .verify(&[pool[0].as_bytes()])
        .context("a minted token was refused")?;

    let verifier = fresh_verifier(peer, clock)?;
    let one = pool[0].as_bytes();
    verifier
        .verify(&[one])
        .context("a minted token was refused")?;
    let cached = measure(budget, 4096, |_| {
        black_box(verifier.verify(&[black_box(one)]).ok());
    })?;
    let shared = two_threads_cached(&verifier, one, budget)?;
    Ok((cached, shared))
}

/// Lookups of a known and an unknown `kid` among 10, 100, … deployments.
type Lookups = Vec<(usize, Measured, Measured)>;

/// Lookups among 10, 100, … `--max-deployments` deployments, and a cold verify among the
/// largest registry (its size and figure).
fn lookups(
    args: &Args,
    clock: &Arc<ManualClock>,
    budget: Duration,
) -> Result<(Lookups, Option<(usize, Measured)>)> {
    let mut lookups = Vec::new();
    let mut keys: Vec<GeneratorKey> = Vec::new();
    let mut size = 10;
    let mut cold_big = None;
    while size <= args.max_deployments.max(10) {
        while keys.len() < size {
            keys.push(GeneratorKey::generate());
        }
        let deployments = keys
            .iter()
            .enumerate()
            .map(|(n, key)| deployment(format!("dpe-{n}"), key))
            .collect();
        let registry = Deployments::new(deployments)
            .map_err(|e| anyhow::anyhow!("registry of {size}: {e:?}"))?;
        let probe = keys[size * 7 / 10].kid().to_owned();
        let found = measure(budget / 4, 4096, |_| {
            black_box(registry.lookup(black_box(&probe)).is_some());
        })?;
        let missed = measure(budget / 4, 4096, |_| {
            black_box(registry.lookup(black_box("no-such-kid")).is_some());
        })?;
        lookups.push((size, found, missed));
        if size * 10 > args.max_deployments.max(10) {
            // The largest registry: does a cold verify cost more among this many peers?
            let signer = &keys[size * 7 / 10];
            cold_big = Some((size, cold_among(signer, registry, clock, budget)?));
        }
        size *= 10;
    }
    Ok((lookups, cold_big))
}

/// Cold verifies of tokens signed by `signer` (one of `registry`'s deployments).
fn cold_among(
    signer: &GeneratorKey,
    registry: Deployments,
    clock: &Arc<ManualClock>,
    budget: Duration,
) -> Result<Measured> {
    let copy = GeneratorKey::from_base64(&signer.to_base64())?;
    let signer = TokenIssuer::new(copy, Duration::from_secs(900), clock.clone())?;
    let tokens: Vec<String> = (0..512)
        .map(|_| format!("Internal-jwt {}", signer.mint("dpm", None)))
        .collect();
    let big = TokenVerifier::new(VerifyPolicy::new("dpm"), registry, clock.clone());
    measure(budget / 2, SLOW_BATCH, |i| {
        let value = tokens[i % tokens.len()].as_bytes();
        black_box(big.verify_uncached(&[black_box(value)]).ok());
    })
}

/// The figures of issue 6's table, with their references and targets.
fn print_rows(rounds: &Rounds, cached: &Measured) {
    let Rounds {
        mint,
        cold,
        openssl,
        mint_ratio,
        cold_ratio,
    } = rounds;
    println!(
        "  {:<44} {:<28} {:<40} {:<22} verdict",
        "figure", "measured", "reference (same run)", "target"
    );
    Row {
        figure: "ES256 mint, cold",
        measured: format!(
            "{} ({:.2} ×)",
            per_second(mint.per_user_second()),
            mint_ratio
        ),
        reference: format!("openssl sign {} (median)", per_second(openssl.sign)),
        target: "≥ 0.8 × openssl",
        verdict: Verdict::from_check(*mint_ratio >= 0.8),
    }
    .print();
    Row {
        figure: "ES256 verify, cold (new token)",
        measured: format!(
            "{} ({:.2} ×)",
            per_second(cold.per_user_second()),
            cold_ratio
        ),
        reference: format!("openssl verify {} (median)", per_second(openssl.verify)),
        target: "≥ 0.8 × openssl",
        verdict: Verdict::from_check(*cold_ratio >= 0.8),
    }
    .print();
    Row {
        figure: "verify of a token already accepted",
        measured: human(cached.cpu_per_op()),
        reference: "—".to_owned(),
        target: "≤ 1 µs",
        verdict: Verdict::from_check(cached.cpu_per_op() <= Duration::from_micros(1)),
    }
    .print();
}

/// Every figure per op, and the FIGURE lines.
fn print_details(
    rounds: &Rounds,
    cached: &Measured,
    shared: Duration,
    cold_big: Option<&(usize, Measured)>,
    lookups: &Lookups,
) {
    let (mint, cold) = (&rounds.mint, &rounds.cold);
    println!();
    println!("details (per op, CPU time of the measuring thread; wall time in brackets):");
    for (name, m) in [
        ("mint", mint),
        ("verify cold", cold),
        ("verify cached", cached),
    ] {
        println!(
            "  {name:<34} {:>10} [{:>10}]  {} ops",
            human(m.cpu_per_op()),
            human(m.wall_per_op()),
            m.ops
        );
    }
    println!(
        "  {:<34} {:>10} per op per thread with 2 threads on one verifier (wall)",
        "verify cached, 2 threads",
        human(shared)
    );
    if let Some((size, m)) = cold_big {
        println!(
            "  {:<34} {:>10} [{:>10}]  ({} ×openssl)",
            format!("verify cold among {size} deployments"),
            human(m.cpu_per_op()),
            human(m.wall_per_op()),
            format_args!("{:.2}", m.per_user_second() / rounds.openssl.verify)
        );
    }
    for (size, found, missed) in lookups {
        println!(
            "  {:<34} {:>10} (unknown kid {})",
            format!("registry lookup among {size}"),
            human(found.cpu_per_op()),
            human(missed.cpu_per_op())
        );
        println!(
            "FIGURE\tregistry lookup among {size} deployments\t{}",
            human(found.cpu_per_op())
        );
    }
    println!(
        "FIGURE\tmint / cold verify / cached verify (CPU per op)\t{} / {} / {}",
        human(mint.cpu_per_op()),
        human(cold.cpu_per_op()),
        human(cached.cpu_per_op())
    );
}

/// Minting fresh tokens (what `token_for` does once per renewal).
fn measure_mint(issuer: &TokenIssuer, budget: Duration) -> Result<Measured> {
    measure(budget, SLOW_BATCH, |_| {
        black_box(issuer.mint(black_box("dpm"), None));
    })
}

/// Verifying tokens new to the verifier: a fresh verifier takes each pass over the pool, so no
/// token is found in the cache; the cache insert after the check is part of the figure.
fn measure_cold(
    pool: &[String],
    peer: &[Deployment],
    clock: &Arc<ManualClock>,
    budget: Duration,
) -> Result<Measured> {
    let mut timer = Timer::new(budget);
    let warm = fresh_verifier(peer, clock)?;
    for value in pool.iter().take(64) {
        black_box(warm.verify(&[value.as_bytes()]).ok());
    }
    for _ in 0..100_000 {
        if !timer.running() {
            break;
        }
        let verifier = fresh_verifier(peer, clock)?;
        for chunk in pool.chunks(256) {
            if !timer.running() {
                break;
            }
            timer.batch(chunk.len(), || {
                for value in chunk {
                    black_box(verifier.verify(&[black_box(value.as_bytes())]).ok());
                }
            })?;
        }
    }
    Ok(timer.total)
}

/// The median (mean of the middle two for an even count); zero for none.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One loop alone, for a profiler.
fn profile(what: &str, budget: Duration) -> Result<()> {
    if let Some(which) = what.strip_prefix("user-") {
        return profile_user(which, budget);
    }
    let clock = Arc::new(ManualClock::new(NOW));
    let key = GeneratorKey::generate();
    let peer = vec![deployment("dpe-dev".into(), &key)];
    let issuer = TokenIssuer::new(key, Duration::from_secs(900), clock.clone())?;
    let verifier = fresh_verifier(&peer, &clock)?;
    let token = format!("Internal-jwt {}", issuer.mint("dpm", None));
    let measured = match what {
        "mint" => measure(budget, SLOW_BATCH, |_| {
            black_box(issuer.mint(black_box("dpm"), None));
        })?,
        "cold" => measure(budget, SLOW_BATCH, |_| {
            black_box(
                verifier
                    .verify_uncached(&[black_box(token.as_bytes())])
                    .ok(),
            );
        })?,
        "cached" => measure(budget, 4096, |_| {
            black_box(verifier.verify(&[black_box(token.as_bytes())]).ok());
        })?,
        other => {
            bail!("--profile takes mint, cold, cached, user-cold or user-cached, not {other:?}")
        }
    };
    println!("{what}: {} per op (CPU)", human(measured.cpu_per_op()));
    Ok(())
}

/// One user-token loop alone, for a profiler: `cold` (route and verify, no cache) or `cached`
/// (`Users::authenticate` on a token it accepted before).
fn profile_user(which: &str, budget: Duration) -> Result<()> {
    let people = UserSetup::new()?;
    let measured = match which {
        "cold" => {
            people.verify_cold().context("the user token was refused")?;
            measure(budget, SLOW_BATCH, |_| {
                black_box(people.verify_cold());
            })?
        }
        "route" => {
            people.verify_cold().context("the user token was refused")?;
            measure(budget, 256, |_| {
                black_box(people.route_only());
            })?
        }
        "cached" => {
            let users = Users::new(
                &people.settings,
                &ServerTrust::SystemRoots,
                people.clock.clone(),
            )
            .context("no user-token issuer configured")?;
            let authenticate = || {
                let future = pin!(users.authenticate(black_box(&people.token)));
                matches!(poll_once(future), Poll::Ready(Ok(_)))
            };
            if !authenticate() {
                bail!("the first authenticate of the user token did not accept it at once");
            }
            measure(budget, 4096, |_| {
                black_box(authenticate());
            })?
        }
        other => bail!("--profile takes user-cold, user-route or user-cached, not user-{other}"),
    };
    println!(
        "user-{which}: {} per op (CPU)",
        human(measured.cpu_per_op())
    );
    Ok(())
}

/// OpenSSL's figures, per CPU-second as `openssl speed` reports them.
#[derive(Debug)]
struct OpensslSpeed {
    sign: f64,
    verify: f64,
}

/// `openssl speed -seconds <seconds> rsa2048`: sign/s and verify/s of 2048-bit RSA.
fn openssl_speed_rsa(seconds: u32) -> Result<OpensslSpeed> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "rsa2048"])
        .output()
        .context("running openssl speed (is openssl installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `rsa 2048 bits 0.000590s 0.000017s   1695.9  58620.6`
    let Some(line) = text
        .lines()
        .rev()
        .find(|l| l.starts_with("rsa") && l.contains("2048 bits"))
    else {
        bail!("openssl speed printed no rsa 2048 line:\n{text}");
    };
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers.as_slice() {
        [.., sign, verify] => Ok(OpensslSpeed {
            sign: *sign,
            verify: *verify,
        }),
        _ => bail!("cannot read openssl speed's line: {line}"),
    }
}

fn openssl_speed(seconds: u32) -> Result<OpensslSpeed> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", &seconds.to_string(), "ecdsap256"])
        .output()
        .context("running openssl speed (is openssl installed?)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    // `256 bits ecdsa (nistp256)   0.0001s   0.0001s  19806.7   7039.7`
    let Some(line) = text.lines().rev().find(|l| l.contains("nistp256")) else {
        bail!("openssl speed printed no nistp256 line:\n{text}");
    };
    let numbers: Vec<f64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match numbers.as_slice() {
        [.., sign, verify] => Ok(OpensslSpeed {
            sign: *sign,
            verify: *verify,
        }),
        _ => bail!("cannot read openssl speed's line: {line}"),
    }
}

fn deployment(name: String, key: &GeneratorKey) -> Deployment {
    Deployment {
        name,
        module: "dpe".into(),
        environment: None,
        uri: None,
        token_profile: TokenProfile::Strict,
        roles: vec!["IMPERSONATION".into()],
        keys: vec![DeploymentKey {
            name: "key".into(),
            fingerprint: key.kid().into(),
            public: key.public_key(),
            revoked: false,
        }],
    }
}

fn fresh_verifier(peers: &[Deployment], clock: &Arc<ManualClock>) -> Result<TokenVerifier> {
    let registry =
        Deployments::new(peers.to_vec()).map_err(|e| anyhow::anyhow!("registry: {e:?}"))?;
    Ok(TokenVerifier::new(
        VerifyPolicy::new("dpm"),
        registry,
        clock.clone(),
    ))
}

/// Operations done and the time they took.
#[derive(Debug, Default)]
struct Measured {
    ops: u64,
    /// CPU time of the measuring thread, user and system.
    cpu: Duration,
    /// Its user part: what rates beside `openssl speed`'s are computed from, since `openssl speed`
    /// divides by its own user CPU time (under a competing process on its core it reports, say,
    /// "in 1.50s" for a 3 s run, at the same rate as alone).
    user: Duration,
    wall: Duration,
}

impl Measured {
    fn plus(&self, other: &Measured) -> Measured {
        Measured {
            ops: self.ops + other.ops,
            cpu: self.cpu + other.cpu,
            user: self.user + other.user,
            wall: self.wall + other.wall,
        }
    }
    /// Operations per second of user CPU time, as `openssl speed` counts its own.
    fn per_user_second(&self) -> f64 {
        self.ops as f64 / self.user.as_secs_f64().max(1e-9)
    }
    fn cpu_per_op(&self) -> Duration {
        self.cpu.div_f64(self.ops.max(1) as f64)
    }
    fn wall_per_op(&self) -> Duration {
        self.wall.div_f64(self.ops.max(1) as f64)
    }
}

/// Runs `op` in batches of `batch` until `budget` of wall time has passed (after one untimed
/// warm-up batch).
/// Operations per timed batch of a loop whose operation is a signature or a verification
/// (20–100 µs): the thread's CPU clocks are read around each batch (`/proc/thread-self/schedstat`,
/// a few µs of system time per read, and `getrusage`), and at 512 operations a batch those reads
/// cost under 0.1 % of what is measured, as `openssl speed` reads its clock once per run.
const SLOW_BATCH: usize = 512;

fn measure(budget: Duration, batch: usize, mut op: impl FnMut(usize)) -> Result<Measured> {
    for i in 0..batch {
        op(i);
    }
    let mut timer = Timer::new(budget);
    // Bounded in count too, so a stuck clock cannot loop forever.
    for _ in 0..10_000_000u64 {
        if !timer.running() {
            break;
        }
        timer.batch(batch, || {
            for i in 0..batch {
                op(i);
            }
        })?;
    }
    Ok(timer.total)
}

/// Times batches of operations (CPU time of this thread, its user part, and wall time) within a
/// budget.
#[derive(Debug)]
struct Timer {
    total: Measured,
    started: Instant,
    budget: Duration,
}

impl Timer {
    fn new(budget: Duration) -> Self {
        Self {
            total: Measured::default(),
            started: Instant::now(),
            budget,
        }
    }

    fn running(&self) -> bool {
        self.started.elapsed() < self.budget
    }

    fn batch(&mut self, ops: usize, work: impl FnOnce()) -> Result<()> {
        let (cpu, user) = (thread_cpu()?, thread_user_cpu()?);
        let wall = Instant::now();
        work();
        self.total.wall += wall.elapsed();
        self.total.cpu += thread_cpu()?.saturating_sub(cpu);
        self.total.user += thread_user_cpu()?.saturating_sub(user);
        self.total.ops += ops as u64;
        Ok(())
    }
}

/// Cached verifies from two threads at once on one verifier: wall time per op per thread.
fn two_threads_cached(
    verifier: &TokenVerifier,
    value: &[u8],
    budget: Duration,
) -> Result<Duration> {
    let per_thread = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let started = Instant::now();
                    let mut ops = 0u64;
                    while started.elapsed() < budget / 2 && ops < 100_000_000 {
                        for _ in 0..1024 {
                            black_box(verifier.verify(&[black_box(value)]).ok());
                        }
                        ops += 1024;
                    }
                    started.elapsed().div_f64(ops.max(1) as f64)
                })
            })
            .collect();
        runs.into_iter()
            .map(|run| run.join().unwrap_or(Duration::MAX))
            .collect::<Vec<_>>()
    });
    Ok(per_thread.into_iter().max().unwrap_or_default())
}
