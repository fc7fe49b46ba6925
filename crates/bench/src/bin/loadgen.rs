//! `loadgen`: the price of authentication on the request path, against a real `dpm`.
//!
//! Starts one `dpm` process on a loopback port and drives it, from one client process with the
//! same concurrency and connections, alternately with unauthenticated
//! `grpc.health.v1.Health/Check` calls and with `IdentityService.WhoAmI` calls carrying a token
//! (minted once and reused, as every svcid client does). Phases alternate so both kinds see the
//! same machine; each phase is bounded in time and in calls. Reports calls per second, p50/p99
//! latency, DPM's CPU per call, and the authenticated / unauthenticated throughput ratio.
//!
//! With `--storm RATE`, the two phases are authenticated calls alone and the same calls while
//! another connection sends `RATE` calls per second with tokens DPM refuses (a well-formed token
//! whose `kid` no deployment has): the refused-token storm of issue 15, reported as the stormy /
//! quiet throughput ratio and both p99s.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use svcid_bench::daemon::{DpmProcess, write_dpm_home};
use svcid_bench::procfs::{cpu_ticks, ticks_per_second};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::{Spread, human, per_second};
use svcid_client::OutboundCredentials;
use svcid_identity::{GeneratorKey, SystemClock, TokenIssuer};
use svcid_proto::pb::identity::WhoAmIRequest;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_testkit::homes::TrustedPeer;
use svcid_testkit::log::LogTail;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Authenticated vs unauthenticated unary calls against one real dpm.
#[derive(Debug, Parser)]
struct Args {
    /// Calls in flight at any time (one task each).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// HTTP/2 connections the tasks share.
    #[arg(long, default_value_t = 2)]
    connections: usize,
    /// Seconds of each measured phase.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Rounds of (unauthenticated phase, authenticated phase); the median ratio is reported.
    #[arg(long, default_value_t = 5)]
    rounds: u32,
    /// Which phases to run: `both`, or only `health` or `whoami` (to profile dpm under one).
    #[arg(long, default_value = "both")]
    kinds: String,
    /// Upper bound on calls per phase, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_calls: u64,
    /// Refused-token calls per second to send from another connection during the second phase
    /// (0: the authenticated vs unauthenticated comparison instead).
    #[arg(long, default_value_t = 0)]
    storm: u32,
}

/// Which method a phase calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `grpc.health.v1.Health/Check`, no token.
    Health,
    /// `IdentityService.WhoAmI` with a token.
    WhoAmI,
    /// `IdentityService.WhoAmI` with a token while a refused-token storm runs.
    Storm,
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Phase {
    calls: u64,
    failures: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    dpm_ticks: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the client runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<()> {
    println!("loadgen: load average {} (before)", load_average());
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let mut target = Target::start(dir.path(), &args).await?;
    let budget = Duration::from_secs_f64(args.seconds.clamp(0.2, 120.0));
    let kinds: &[Kind] = match args.kinds.as_str() {
        _ if args.storm > 0 => &[Kind::WhoAmI, Kind::Storm],
        "both" => &[Kind::Health, Kind::WhoAmI],
        "health" => &[Kind::Health],
        "whoami" => &[Kind::WhoAmI],
        other => bail!("--kinds takes both, health or whoami, not {other:?}"),
    };
    let totals = target.rounds(&args, kinds, budget).await?;
    target.dpm.stop(Duration::from_secs(5))?;
    totals.report(&args, target.ticks)
}

/// The `dpm` under load and the client's connections to it.
struct Target {
    dpm: DpmProcess,
    /// DPM's gRPC port.
    port: u16,
    /// DPM's process id.
    pid: u32,
    /// Clock ticks per second.
    ticks: u64,
    channels: Vec<Channel>,
    /// Mints the client's token.
    issuer: Arc<TokenIssuer>,
}

impl Target {
    /// Starts `dpm` trusting the client's key, connects, and proves the setup with a first
    /// authenticated call (which also puts the token in DPM's cache, as any client's second call
    /// finds it).
    async fn start(dir: &Path, args: &Args) -> Result<Self> {
        let home = dir.join("dpm");
        let client_key = GeneratorKey::generate();
        let peer = TrustedPeer::dpe("loadgen-bench", &client_key);
        write_dpm_home(&home, 0, &GeneratorKey::generate(), &[peer], &[])?;
        let mut dpm = DpmProcess::start(&home)?;
        let mut tail = LogTail::from_end(dpm.log_path());
        let port = dpm.wait_started(&mut tail, Duration::from_secs(20))?;
        let pid = dpm.pid()?;
        let ticks = ticks_per_second();

        let uri = svcid_client::uri("127.0.0.1", port, false);
        let mut channels = Vec::new();
        for _ in 0..args.connections.clamp(1, 64) {
            let channel = svcid_client::endpoint("127.0.0.1", port, None)?
                .connect_timeout(Duration::from_secs(5))
                .connect()
                .await
                .with_context(|| format!("connecting to dpm at {uri}"))?;
            channels.push(channel);
        }
        let issuer = Arc::new(TokenIssuer::new(
            client_key,
            Duration::from_secs(15 * 60),
            Arc::new(SystemClock),
        )?);

        let mut probe = IdentityServiceClient::with_interceptor(
            channels[0].clone(),
            OutboundCredentials::new(Arc::clone(&issuer), "dpm"),
        );
        let who = probe
            .who_am_i(WhoAmIRequest {})
            .await
            .context("WhoAmI with a token was refused")?
            .into_inner();
        println!(
            "dpm pid {pid} on port {port}; WhoAmI says {}; {} tasks over {} connections, {} rounds of {}s",
            who.identity,
            args.concurrency,
            channels.len(),
            args.rounds,
            args.seconds
        );
        Ok(Self {
            dpm,
            port,
            pid,
            ticks,
            channels,
            issuer,
        })
    }

    /// The rounds: each runs every kind of phase in turn (after a warm-up of it), with the
    /// refused-token storm beside the `Storm` phase.
    async fn rounds(&self, args: &Args, kinds: &[Kind], budget: Duration) -> Result<Totals> {
        let mut totals = Totals::default();
        for round in 1..=args.rounds.clamp(1, 50) {
            let mut rates = [0.0f64; 2];
            for &kind in kinds {
                // Warm-up, not counted: connections busy, caches filled, threads awake.
                phase(
                    kind,
                    &self.channels,
                    &self.issuer,
                    args,
                    budget / 5,
                    self.pid,
                )
                .await?;
                let measured = self.measured_phase(round, kind, args, budget).await?;
                rates[usize::from(
                    kind != Kind::Health && (kind == Kind::Storm || args.storm == 0),
                )] = measured.calls as f64 / measured.elapsed.as_secs_f64().max(1e-9);
                totals.add(kind, args, measured);
            }
            if rates[0] > 0.0 && rates[1] > 0.0 {
                totals.ratios.push(rates[1] / rates[0]);
            }
        }
        Ok(totals)
    }

    /// One measured phase of `kind` (with the storm beside it for `Storm`), printed.
    async fn measured_phase(
        &self,
        round: u32,
        kind: Kind,
        args: &Args,
        budget: Duration,
    ) -> Result<Phase> {
        let storm = (kind == Kind::Storm).then(|| {
            tokio::spawn(storm(
                self.port,
                args.storm,
                budget + Duration::from_millis(200),
            ))
        });
        let measured = phase(kind, &self.channels, &self.issuer, args, budget, self.pid).await?;
        if let Some(storm) = storm {
            let (sent, refused) = storm.await.context("the storm task panicked")??;
            println!(
                "round {round} storm   {} sent, {} refused ({}/s asked)",
                sent, refused, args.storm
            );
        }
        println!(
            "round {round} {:<7} {:>10} p50 {:>9} p99 {:>9}  dpm CPU {:>8}/call  failures {}",
            format!("{kind:?}"),
            per_second(measured.calls as f64 / measured.elapsed.as_secs_f64()),
            human(Spread::of(&mut measured.latencies.clone()).p50),
            human(Spread::of(&mut measured.latencies.clone()).p99),
            human(cpu_per_call(&measured, self.ticks)),
            measured.failures
        );
        Ok(measured)
    }
}

/// Every round's phases added up, by kind, and each round's throughput ratio.
#[derive(Debug, Default)]
struct Totals {
    /// Health/Check; with a storm, the quiet authenticated phases.
    health: Phase,
    /// WhoAmI; with a storm, the stormy ones.
    whoami: Phase,
    /// Each round's WhoAmI / Health (or stormy / quiet) throughput.
    ratios: Vec<f64>,
}

impl Totals {
    /// Adds a phase of `kind` to its total.
    fn add(&mut self, kind: Kind, args: &Args, measured: Phase) {
        // With a storm, `health` holds the quiet authenticated phase and `whoami` the stormy.
        let total = if kind == Kind::Health || (kind == Kind::WhoAmI && args.storm > 0) {
            &mut self.health
        } else {
            &mut self.whoami
        };
        total.calls += measured.calls;
        total.failures += measured.failures;
        total.elapsed += measured.elapsed;
        total.dpm_ticks += measured.dpm_ticks;
        total.latencies.extend(measured.latencies);
    }

    /// The figures: the storm's, or authenticated against unauthenticated.
    fn report(mut self, args: &Args, ticks: u64) -> Result<()> {
        let (health, whoami) = (&mut self.health, &mut self.whoami);
        if health.failures + whoami.failures > 0 {
            bail!(
                "{} health and {} WhoAmI calls failed: the figures would mean nothing",
                health.failures,
                whoami.failures
            );
        }
        let (h, w) = (
            Spread::of(&mut health.latencies),
            Spread::of(&mut whoami.latencies),
        );
        // The median of the rounds' ratios: each ratio compares two phases seconds apart.
        self.ratios.sort_by(f64::total_cmp);
        let ratio = self
            .ratios
            .get(self.ratios.len() / 2)
            .copied()
            .unwrap_or(0.0);
        println!(
            "  ratios by round (sorted): {}",
            self.ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        println!();
        println!("loadgen: load average {} (after)", load_average());
        if args.storm > 0 {
            self.report_storm(args, ratio, h, w);
        } else {
            self.report_authentication(ratio, ticks, h, w);
        }
        Ok(())
    }

    /// Authenticated calls quiet (`quiet`) and during the refused-token storm (`stormy`).
    fn report_storm(&self, args: &Args, ratio: f64, quiet: Spread, stormy: Spread) {
        let (health, whoami) = (&self.health, &self.whoami);
        println!(
            "  authenticated WhoAmI, quiet:        {} p50 {} p99 {}",
            per_second(rate(health)),
            human(quiet.p50),
            human(quiet.p99)
        );
        println!(
            "  authenticated WhoAmI, during storm: {} p50 {} p99 {}",
            per_second(rate(whoami)),
            human(stormy.p50),
            human(stormy.p99)
        );
        let p99_ratio = stormy.p99.as_secs_f64() / quiet.p99.as_secs_f64().max(1e-9);
        Row {
            figure: "valid calls during a refused-token storm",
            measured: format!(
                "{} ({ratio:.2} × quiet, median of rounds); p99 {} ({p99_ratio:.2} × quiet)",
                per_second(rate(whoami)),
                human(stormy.p99)
            ),
            reference: format!(
                "quiet {} (p99 {}); storm {}/s",
                per_second(rate(health)),
                human(quiet.p99),
                args.storm
            ),
            target: "≥ 0.8 × throughput, p99 ≤ 2 ×",
            verdict: Verdict::from_check(ratio >= 0.8 && p99_ratio <= 2.0),
        }
        .print();
    }

    /// Unauthenticated Health/Check (`h`) against authenticated WhoAmI (`w`).
    fn report_authentication(&self, ratio: f64, ticks: u64, h: Spread, w: Spread) {
        let (health, whoami) = (&self.health, &self.whoami);
        println!(
            "  unauthenticated Health/Check: {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(health)),
            human(h.p50),
            human(h.p99),
            human(cpu_per_call(health, ticks))
        );
        println!(
            "  authenticated WhoAmI:         {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(whoami)),
            human(w.p50),
            human(w.p99),
            human(cpu_per_call(whoami, ticks))
        );
        Row {
            figure: "authenticated unary call throughput",
            measured: format!(
                "{} ({ratio:.2} × median; p50 {}, p99 {})",
                per_second(rate(whoami)),
                human(w.p50),
                human(w.p99)
            ),
            reference: format!(
                "Health/Check {} (p50 {}, p99 {})",
                per_second(rate(health)),
                human(h.p50),
                human(h.p99)
            ),
            target: "≥ 0.9 × unauthenticated",
            verdict: Verdict::from_check(ratio >= 0.9),
        }
        .print();
        println!(
            "FIGURE\tdpm CPU per call, Health/Check vs WhoAmI with a token\t{} vs {}",
            human(cpu_per_call(health, ticks)),
            human(cpu_per_call(whoami, ticks))
        );
    }
}

/// Calls per second of a phase.
fn rate(phase: &Phase) -> f64 {
    phase.calls as f64 / phase.elapsed.as_secs_f64().max(1e-9)
}

fn cpu_per_call(phase: &Phase, ticks_per_second: u64) -> Duration {
    Duration::from_secs_f64(
        phase.dpm_ticks as f64 / ticks_per_second as f64 / phase.calls.max(1) as f64,
    )
}

/// Runs `args.concurrency` tasks calling `kind` for `budget` (or `args.max_calls` calls).
async fn phase(
    kind: Kind,
    channels: &[Channel],
    issuer: &Arc<TokenIssuer>,
    args: &Args,
    budget: Duration,
    pid: u32,
) -> Result<Phase> {
    let tasks = args.concurrency.clamp(1, 1024);
    let per_task = (args.max_calls / tasks as u64).max(1);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + budget;
    let ticks_before = cpu_ticks(pid)?;
    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let channel = channels[task % channels.len()].clone();
        let credentials = OutboundCredentials::new(Arc::clone(issuer), "dpm");
        running.spawn(async move {
            let mut health = HealthClient::new(channel.clone());
            let mut whoami = IdentityServiceClient::with_interceptor(channel, credentials);
            let mut latencies = Vec::with_capacity(4096);
            let mut failures = 0u64;
            for _ in 0..per_task {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let ok = match kind {
                    Kind::Storm => whoami.who_am_i(WhoAmIRequest {}).await.is_ok(),
                    Kind::Health => health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .is_ok(),
                    Kind::WhoAmI => whoami.who_am_i(WhoAmIRequest {}).await.is_ok(),
                };
                latencies.push(sent.elapsed());
                failures += u64::from(!ok);
            }
            (latencies, failures)
        });
    }
    let mut result = Phase::default();
    while let Some(done) = running.join_next().await {
        let (latencies, failures) = done.context("a load task panicked")?;
        result.calls += latencies.len() as u64;
        result.failures += failures;
        result.latencies.extend(latencies);
    }
    result.elapsed = started.elapsed();
    result.dpm_ticks = cpu_ticks(pid)?.saturating_sub(ticks_before);
    Ok(result)
}

/// Sends `rate` calls per second, for `budget`, from a connection of its own, each with a
/// well-formed token whose `kid` DPM does not know; returns (sent, refused).
async fn storm(port: u16, rate: u32, budget: Duration) -> Result<(u64, u64)> {
    let channel = svcid_client::endpoint("127.0.0.1", port, None)?
        .connect()
        .await
        .context("connecting the storm")?;
    let stranger = TokenIssuer::new(
        GeneratorKey::generate(),
        Duration::from_secs(15 * 60),
        Arc::new(SystemClock),
    )?;
    let value = svcid_client::authorization_value(&stranger.mint("dpm", None))
        .context("the storm's token is not valid metadata")?;
    // Batches every 10 ms, each call on its own task, so a slow answer does not slow the storm.
    let per_tick = (rate / 100).max(1);
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + budget;
    let mut calls = tokio::task::JoinSet::new();
    let (mut sent, mut refused) = (0u64, 0u64);
    while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        for _ in 0..per_tick {
            let mut client = IdentityServiceClient::new(channel.clone());
            let mut request = tonic::Request::new(WhoAmIRequest {});
            request
                .metadata_mut()
                .insert("authorization", value.clone());
            calls.spawn(async move { client.who_am_i(request).await.is_err() });
            sent += 1;
        }
        // Reap what finished so the set stays small.
        while let Some(done) = calls.try_join_next() {
            refused += u64::from(done.unwrap_or(false));
        }
    }
    while let Some(done) = calls.join_next().await {
        refused += u64::from(done.unwrap_or(false));
    }
    Ok((sent, refused))
}
