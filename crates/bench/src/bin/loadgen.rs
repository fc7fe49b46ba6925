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
//!
//! People's tokens (RS256, key generated at run time, signed with josekit):
//!
//! - `--kinds users`: `WhoAmI` with a module token against `WhoAmI` with a user token (DPM
//!   configured with a MicroProfile JWT issuer and its key inline), ratio user / module;
//! - `--kinds users-storm`: `WhoAmI` with a user token, quiet and while `--user-storm` calls per
//!   second arrive with tokens of the issuer whose `kid`s the realm does not publish (DPM's issuer
//!   is a Keycloak realm served on 127.0.0.1, counting its key requests), ratio stormy / quiet and
//!   the key fetches;
//! - `--kinds engine`: `EngineAdminService.WhoAmIOnEngine` with a user token holding `DPM_ADMIN`,
//!   over a real `dpm` and a real `dpe` process (the engine grants DPM's deployment
//!   `IMPERSONATION`): p50 / p99, beside `WhoAmI` with the same token answered by DPM alone.
//!
//! User tokens are sent as `svcid whoami --bearer` sends them: marked sensitive, so HTTP/2 never
//! indexes them, like the module tokens of `OutboundCredentials`. The order of the two phases
//! alternates from round to round, so a machine getting busier or quieter favours neither.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use svcid_bench::daemon::{DpmProcess, write_dpe_home, write_dpm_home};
use svcid_bench::people::{ISSUER, rs256_token};
use svcid_bench::procfs::{cpu_ticks, ticks_per_second};
use svcid_bench::report::{Row, Verdict, load_average};
use svcid_bench::stats::{Spread, human, per_second};
use svcid_client::OutboundCredentials;
use svcid_config::names::{self, deployment};
use svcid_identity::{GeneratorKey, SystemClock, TokenIssuer};
use svcid_proto::pb::engines::engine_admin_service_client::EngineAdminServiceClient;
use svcid_proto::pb::engines::engine_info::Status as EngineStatus;
use svcid_proto::pb::engines::{ListEnginesRequest, WhoAmIOnEngineRequest};
use svcid_proto::pb::identity::WhoAmIRequest;
use svcid_proto::pb::identity::identity_service_client::IdentityServiceClient;
use svcid_testkit::homes::TrustedPeer;
use svcid_testkit::jwks::{JwksServer, REALM, RealmKey, jwks};
use svcid_testkit::log::LogTail;
use svcid_testkit::process::ChildGuard;
use tonic::metadata::{Ascii, MetadataValue};
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
    /// Which phases to run: `both`, or only `health`, `whoami` or `user-whoami` (to profile dpm
    /// under one); `users` (module-token against user-token WhoAmI), `users-storm` (user-token
    /// WhoAmI quiet and during an unknown-kid storm), `engine` (WhoAmIOnEngine with a user
    /// token, beside WhoAmI with it on DPM) or `reload` (WhoAmI quiet and while DPM reloads its
    /// configuration, SIGHUP after SIGHUP; see `--extra-deployments`).
    #[arg(long, default_value = "both")]
    kinds: String,
    /// Upper bound on calls per phase, whatever the duration.
    #[arg(long, default_value_t = 2_000_000)]
    max_calls: u64,
    /// Refused-token calls per second to send from another connection during the second phase
    /// (0: the authenticated vs unauthenticated comparison instead).
    #[arg(long, default_value_t = 0)]
    storm: u32,
    /// With `--kinds users-storm`: user-token calls per second with unknown `kid`s during the
    /// stormy phase.
    #[arg(long, default_value_t = 2000)]
    user_storm: u32,
    /// A `name=value` line added to DPM's properties (repeatable), e.g.
    /// `logging.level.svcid_grpc.whoami=WARN` to see what a log line per call costs.
    #[arg(long = "dpm-property", value_name = "NAME=VALUE")]
    dpm_properties: Vec<String>,
    /// Deployments of other engines (a key each) added to DPM's properties, for `--kinds reload`:
    /// a fleet's file, reloaded while calls run.
    #[arg(long, default_value_t = 0)]
    extra_deployments: usize,
}

/// What a run compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Health/Check against WhoAmI (or one of them alone).
    Authentication,
    /// WhoAmI quiet against WhoAmI during a refused-token storm.
    Storm,
    /// WhoAmI with a module token against WhoAmI with a user token.
    Users,
    /// User-token WhoAmI quiet against the same during an unknown-kid storm.
    UserStorm,
    /// WhoAmIOnEngine with a user token, beside WhoAmI with it on DPM.
    Engine,
    /// WhoAmI quiet against WhoAmI while DPM reloads its configuration again and again.
    Reload,
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
    /// `IdentityService.WhoAmI` with a user token.
    UserWhoAmI,
    /// `IdentityService.WhoAmI` with a user token while an unknown-kid storm runs.
    UserStorm,
    /// `EngineAdminService.WhoAmIOnEngine` with a user token.
    EngineWhoAmI,
    /// `IdentityService.WhoAmI` with a token while DPM reloads its configuration (SIGHUP).
    Reload,
}

/// What one phase measured.
#[derive(Debug, Default)]
struct Phase {
    calls: u64,
    failures: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    dpm_ticks: u64,
    /// The real engine's CPU (`--kinds engine`).
    dpe_ticks: u64,
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
    let budget = Duration::from_secs_f64(args.seconds.clamp(0.2, 120.0));
    let (mode, kinds): (Mode, &[Kind]) = match args.kinds.as_str() {
        _ if args.storm > 0 => (Mode::Storm, &[Kind::WhoAmI, Kind::Storm]),
        "both" => (Mode::Authentication, &[Kind::Health, Kind::WhoAmI]),
        "health" => (Mode::Authentication, &[Kind::Health]),
        "whoami" => (Mode::Authentication, &[Kind::WhoAmI]),
        "users" => (Mode::Users, &[Kind::WhoAmI, Kind::UserWhoAmI]),
        "user-whoami" => (Mode::Users, &[Kind::UserWhoAmI]),
        "users-storm" => (Mode::UserStorm, &[Kind::UserWhoAmI, Kind::UserStorm]),
        "engine" => (Mode::Engine, &[Kind::UserWhoAmI, Kind::EngineWhoAmI]),
        "reload" => (Mode::Reload, &[Kind::WhoAmI, Kind::Reload]),
        other => {
            bail!(
                "--kinds takes both, health, whoami, users, user-whoami, users-storm, engine or \
                 reload, not {other:?}"
            )
        }
    };
    let mut target = Target::start(dir.path(), &args, mode).await?;
    let totals = target.rounds(&args, kinds, budget).await?;
    let fetches = target.people.as_ref().map_or(0, People::fetches);
    if let Some(mut dpe) = target.dpe.take() {
        dpe.terminate(Duration::from_secs(10))?;
    }
    target.dpm.stop(Duration::from_secs(5))?;
    totals.report(&args, mode, target.ticks, fetches)
}

/// People's side of a run: the user token every user-token call carries, and what the storm
/// sends.
struct People {
    /// `Bearer <token>` of a person with `DPM_ADMIN`.
    bearer: MetadataValue<Ascii>,
    /// `Bearer <token>` values of the issuer with `kid`s its keys do not hold (user storm).
    strangers: Arc<Vec<MetadataValue<Ascii>>>,
    /// The realm serving the issuer's keys (user storm), counting its requests.
    realm: Option<JwksServer>,
}

impl People {
    /// The DPM properties and tokens for `mode`; `None` when the mode has no people.
    fn for_mode(mode: Mode) -> Result<Option<(People, Vec<String>)>> {
        let now = unix_now()?;
        let bearer = |token: String| -> Result<MetadataValue<Ascii>> {
            let mut value: MetadataValue<Ascii> = format!("Bearer {token}")
                .parse()
                .context("a user token is not valid metadata")?;
            value.set_sensitive(true);
            Ok(value)
        };
        match mode {
            Mode::Users | Mode::Engine => {
                let key = RealmKey::signing()?;
                let token =
                    rs256_token(&key, key.kid(), ISSUER, "alice", &["DPM_ADMIN"], now, 3600)?;
                let lines = vec![
                    format!("{}={ISSUER}", names::MP_JWT_ISSUER),
                    format!("{}={}", names::MP_JWT_PUBLICKEY, jwks(&[&key])),
                ];
                let people = People {
                    bearer: bearer(token)?,
                    strangers: Arc::new(Vec::new()),
                    realm: None,
                };
                Ok(Some((people, lines)))
            }
            Mode::UserStorm => {
                let realm = JwksServer::start()?;
                let key = realm.signing_key();
                let issuer = realm.issuer();
                let token =
                    rs256_token(key, key.kid(), &issuer, "alice", &["DPM_ADMIN"], now, 3600)?;
                // Distinct unknown kids, signed by the realm's key; refused before any signature
                // check, but each one asks the key source for a refetch.
                let strangers = (0..256)
                    .map(|n| {
                        let kid = format!("unknown-{n}");
                        bearer(rs256_token(
                            key,
                            &kid,
                            &issuer,
                            "mallory",
                            &["DPM_ADMIN"],
                            now,
                            3600,
                        )?)
                    })
                    .collect::<Result<Vec<_>>>()?;
                let lines = vec![
                    format!("{}={}", names::KEYCLOAK_SERVER_URL, realm.server_url()),
                    format!("{}={REALM}", names::KEYCLOAK_REALM),
                ];
                let people = People {
                    bearer: bearer(token)?,
                    strangers: Arc::new(strangers),
                    realm: Some(realm),
                };
                Ok(Some((people, lines)))
            }
            Mode::Authentication | Mode::Storm | Mode::Reload => Ok(None),
        }
    }

    /// Key requests the realm has answered so far (0 without a realm).
    fn fetches(&self) -> usize {
        self.realm.as_ref().map_or(0, JwksServer::requests)
    }
}

fn unix_now() -> Result<i64> {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .context("the clock is before 1970")?;
    i64::try_from(since.as_secs()).context("the clock is beyond 2^63 seconds")
}

/// `request` carrying `authorization: value`.
fn with_authorization<T>(message: T, value: &MetadataValue<Ascii>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", value.clone());
    request
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
    /// People's tokens, for the modes that have them.
    people: Option<People>,
    /// The real engine of `--kinds engine`, its process id and its engine id.
    dpe: Option<ChildGuard>,
    dpe_pid: Option<u32>,
    engine_id: String,
}

impl Target {
    /// Starts `dpm` trusting the client's key, connects, and proves the setup with a first
    /// authenticated call (which also puts the token in DPM's cache, as any client's second call
    /// finds it).
    async fn start(dir: &Path, args: &Args, mode: Mode) -> Result<Self> {
        let home = dir.join("dpm");
        let client_key = GeneratorKey::generate();
        let dpm_key = GeneratorKey::generate();
        let dpe_key = GeneratorKey::generate();
        let mut peers = vec![TrustedPeer::dpe("loadgen-bench", &client_key)];
        if mode == Mode::Engine {
            peers.push(TrustedPeer::dpe("dpe-bench", &dpe_key));
        }
        peers.extend(
            (0..args.extra_deployments)
                .map(|n| TrustedPeer::dpe(format!("engine-{n:05}"), &GeneratorKey::generate())),
        );
        let (people, mut lines) = match People::for_mode(mode)? {
            Some((people, lines)) => (Some(people), lines),
            None => (None, Vec::new()),
        };
        // Any free port for the HTTP endpoints, so a daemon already on the default port (another
        // run, another checkout) does not stop this one from starting.
        lines.push(format!("{}=0", names::SERVER_PORT));
        for line in &args.dpm_properties {
            match line.split_once('=') {
                Some((name, _)) if !name.trim().is_empty() && !line.contains(['\n', '\r']) => {
                    lines.push(line.clone());
                }
                _ => bail!("--dpm-property takes one NAME=VALUE line, not {line:?}"),
            }
        }
        write_dpm_home(&home, 0, &dpm_key, &peers, &lines)?;
        let spawned = Instant::now();
        let mut dpm = DpmProcess::start(&home)?;
        let mut tail = LogTail::from_end(dpm.log_path());
        let port = dpm.wait_started(&mut tail, Duration::from_secs(20))?;
        let serving_after = spawned.elapsed();
        let pid = dpm.pid()?;
        println!(
            "FIGURE\tDPM start to serving with {} deployments\t{}",
            peers.len(),
            human(serving_after)
        );
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
        if let Some(people) = &people {
            let who = IdentityServiceClient::new(channels[0].clone())
                .who_am_i(with_authorization(WhoAmIRequest {}, &people.bearer))
                .await
                .context("WhoAmI with a user token was refused")?
                .into_inner();
            println!(
                "WhoAmI with a user token says {}; key fetches so far {}",
                who.identity,
                people.fetches()
            );
        }
        let (dpe, engine_id) = match (mode, &people) {
            (Mode::Engine, Some(people)) => {
                let (dpe, id) =
                    start_engine(dir, port, &dpm_key, &dpe_key, &channels[0], people).await?;
                (Some(dpe), id)
            }
            _ => (None, String::new()),
        };
        let dpe_pid = dpe.as_ref().and_then(ChildGuard::pid);
        Ok(Self {
            dpm,
            port,
            pid,
            ticks,
            channels,
            issuer,
            people,
            dpe,
            dpe_pid,
            engine_id,
        })
    }

    /// The rounds: each runs every kind of phase in turn (after a warm-up of it), with the
    /// refused-token storm beside the `Storm` phase.
    async fn rounds(&self, args: &Args, kinds: &[Kind], budget: Duration) -> Result<Totals> {
        let mut totals = Totals::default();
        for round in 1..=args.rounds.clamp(1, 50) {
            let mut rates = [0.0f64; 2];
            // Odd rounds run the reference first, even rounds last.
            let mut order = kinds.to_vec();
            if round % 2 == 0 {
                order.reverse();
            }
            for kind in order {
                // Warm-up, not counted: connections busy, caches filled, threads awake.
                phase(kind, self, args, budget / 5).await?;
                let (measured, storm) = self.measured_phase(round, kind, args, budget).await?;
                totals.storm.add(storm);
                let reference = is_reference(kind, kinds);
                rates[usize::from(!reference)] =
                    measured.calls as f64 / measured.elapsed.as_secs_f64().max(1e-9);
                totals.add(reference, measured);
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
    ) -> Result<(Phase, StormCounts)> {
        let storm = match kind {
            Kind::Storm => Some((stranger_module_token()?, args.storm)),
            Kind::UserStorm => self
                .people
                .as_ref()
                .map(|people| (Arc::clone(&people.strangers), args.user_storm)),
            _ => None,
        };
        let fetches_before = self.people.as_ref().map_or(0, People::fetches);
        let storm = storm.map(|(values, rate)| {
            tokio::spawn(self::storm(
                self.port,
                rate,
                budget + Duration::from_millis(200),
                values,
            ))
        });
        let reloads = (kind == Kind::Reload).then(|| {
            let (pid, log) = (self.pid, self.dpm.log_path());
            tokio::task::spawn_blocking(move || reload_repeatedly(pid, log, budget))
        });
        let measured = phase(kind, self, args, budget).await?;
        let mut counts = StormCounts::default();
        if let Some(reloads) = reloads {
            counts.reloads = reloads.await.context("the reloading task panicked")??;
            let mut took = counts.reloads.clone();
            let spread = Spread::of(&mut took);
            println!(
                "round {round} reload  {} reloads of {} deployments, p50 {} max {}",
                counts.reloads.len(),
                args.extra_deployments + 1,
                human(spread.p50),
                human(spread.max)
            );
        }
        if let Some(storm) = storm {
            let (sent, refused, lasted) = storm.await.context("the storm task panicked")??;
            let rate = if kind == Kind::Storm {
                args.storm
            } else {
                args.user_storm
            };
            let fetches = self.people.as_ref().map_or(0, People::fetches);
            counts = StormCounts {
                sent,
                refused,
                fetches: fetches.saturating_sub(fetches_before),
                seconds: lasted.as_secs_f64(),
                reloads: Vec::new(),
            };
            println!(
                "round {round} storm   {} sent, {} refused ({}/s asked); key fetches {} during the phase, {} in all",
                sent,
                refused,
                rate,
                fetches.saturating_sub(fetches_before),
                fetches
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
        if kind == Kind::EngineWhoAmI {
            println!(
                "round {round} {:<7} dpe CPU {:>8}/call",
                "",
                human(dpe_cpu_per_call(&measured, self.ticks))
            );
        }
        Ok((measured, counts))
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
    /// What the storms sent, over every round.
    storm: StormCounts,
}

/// What a storm sent and what it cost the identity provider.
#[derive(Debug, Default)]
struct StormCounts {
    /// Calls sent.
    sent: u64,
    /// Calls refused.
    refused: u64,
    /// Key requests the realm answered while the storm ran.
    fetches: usize,
    /// Seconds of storm.
    seconds: f64,
    /// `--kinds reload`: how long each reload took, SIGHUP to `configurationReloaded`.
    reloads: Vec<Duration>,
}

impl StormCounts {
    fn add(&mut self, other: StormCounts) {
        self.sent += other.sent;
        self.refused += other.refused;
        self.fetches += other.fetches;
        self.seconds += other.seconds;
        self.reloads.extend(other.reloads);
    }
}

impl Totals {
    /// Adds a phase to its total: the reference's (`health`) or the measured one's (`whoami`).
    fn add(&mut self, reference: bool, measured: Phase) {
        let total = if reference {
            &mut self.health
        } else {
            &mut self.whoami
        };
        total.calls += measured.calls;
        total.failures += measured.failures;
        total.elapsed += measured.elapsed;
        total.dpm_ticks += measured.dpm_ticks;
        total.dpe_ticks += measured.dpe_ticks;
        total.latencies.extend(measured.latencies);
    }

    /// The figures: the storm's, or authenticated against unauthenticated.
    /// `fetches`: key requests the realm answered over the whole run (user storm).
    fn report(mut self, args: &Args, mode: Mode, ticks: u64, fetches: usize) -> Result<()> {
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
        match mode {
            Mode::Storm => self.report_storm(args, ratio, h, w),
            Mode::Authentication => self.report_authentication(ratio, ticks, h, w),
            Mode::Users => self.report_users(ratio, ticks, h, w),
            Mode::UserStorm => self.report_user_storm(args, ratio, ticks, h, w, fetches),
            Mode::Engine => self.report_engine(ratio, ticks, h, w),
            Mode::Reload => self.report_reload(args, ratio, h, w),
        }
        Ok(())
    }

    /// WhoAmI with a module token (`m`) against WhoAmI with a user token (`u`).
    fn report_users(&self, ratio: f64, ticks: u64, m: Spread, u: Spread) {
        let (module, user) = (&self.health, &self.whoami);
        println!(
            "  WhoAmI, module token: {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(module)),
            human(m.p50),
            human(m.p99),
            human(cpu_per_call(module, ticks))
        );
        println!(
            "  WhoAmI, user token:   {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(user)),
            human(u.p50),
            human(u.p99),
            human(cpu_per_call(user, ticks))
        );
        Row {
            figure: "WhoAmI with a user token",
            measured: format!(
                "{} ({ratio:.2} × median; p50 {}, p99 {})",
                per_second(rate(user)),
                human(u.p50),
                human(u.p99)
            ),
            reference: format!(
                "module token {} (p50 {}, p99 {})",
                per_second(rate(module)),
                human(m.p50),
                human(m.p99)
            ),
            target: "≥ 0.9 × module token",
            verdict: Verdict::from_check(ratio >= 0.9),
        }
        .print();
    }

    /// User-token WhoAmI quiet (`quiet`) and during the unknown-kid storm (`stormy`), and the key
    /// requests the storm caused (`fetches`: over the whole run).
    fn report_user_storm(
        &self,
        args: &Args,
        ratio: f64,
        ticks: u64,
        quiet: Spread,
        stormy: Spread,
        fetches: usize,
    ) {
        let (quiet_phase, stormy_phase) = (&self.health, &self.whoami);
        let storm = &self.storm;
        println!(
            "  user-token WhoAmI, quiet:        {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(quiet_phase)),
            human(quiet.p50),
            human(quiet.p99),
            human(cpu_per_call(quiet_phase, ticks))
        );
        println!(
            "  user-token WhoAmI, during storm: {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(stormy_phase)),
            human(stormy.p50),
            human(stormy.p99),
            human(cpu_per_call(stormy_phase, ticks))
        );
        println!(
            "  storm: {} unknown-kid calls sent, {} refused, over {:.1} s; key requests {} during the storms, {} over the whole run (the first one included)",
            storm.sent, storm.refused, storm.seconds, storm.fetches, fetches
        );
        let p99_ratio = stormy.p99.as_secs_f64() / quiet.p99.as_secs_f64().max(1e-9);
        Row {
            figure: "valid user calls during an unknown-kid storm",
            measured: format!(
                "{} ({ratio:.2} × quiet, median of rounds); p99 {} ({p99_ratio:.2} × quiet); {} key requests for {} storm calls",
                per_second(rate(stormy_phase)),
                human(stormy.p99),
                storm.fetches,
                storm.sent
            ),
            reference: format!(
                "quiet {} (p99 {}); storm {}/s",
                per_second(rate(quiet_phase)),
                human(quiet.p99),
                args.user_storm
            ),
            target: "≥ 0.8 × quiet",
            verdict: Verdict::from_check(ratio >= 0.8 && storm.refused == storm.sent),
        }
        .print();
        println!(
            "FIGURE\tkey requests during {} unknown-kid calls ({:.1} s of storm)\t{}",
            storm.sent, storm.seconds, storm.fetches
        );
    }

    /// WhoAmIOnEngine with a user token (`e`) beside WhoAmI with it on DPM alone (`d`).
    fn report_engine(&self, ratio: f64, ticks: u64, d: Spread, e: Spread) {
        let (on_dpm, on_engine) = (&self.health, &self.whoami);
        println!(
            "  WhoAmI on DPM, user token:  {} p50 {} p99 {}, dpm CPU {}/call",
            per_second(rate(on_dpm)),
            human(d.p50),
            human(d.p99),
            human(cpu_per_call(on_dpm, ticks))
        );
        println!(
            "  WhoAmIOnEngine, user token: {} p50 {} p99 {}, dpm CPU {}/call, dpe CPU {}/call",
            per_second(rate(on_engine)),
            human(e.p50),
            human(e.p99),
            human(cpu_per_call(on_engine, ticks)),
            human(dpe_cpu_per_call(on_engine, ticks))
        );
        Row {
            figure: "WhoAmIOnEngine with a user token",
            measured: format!(
                "p50 {}, p99 {}; {} ({ratio:.2} × WhoAmI on DPM)",
                human(e.p50),
                human(e.p99),
                per_second(rate(on_engine))
            ),
            reference: format!(
                "WhoAmI on DPM p50 {}, p99 {}; {}",
                human(d.p50),
                human(d.p99),
                per_second(rate(on_dpm))
            ),
            target: "— (reported)",
            verdict: Verdict::Reported,
        }
        .print();
        println!(
            "FIGURE\tWhoAmIOnEngine CPU per call, dpm / dpe\t{} / {}",
            human(cpu_per_call(on_engine, ticks)),
            human(dpe_cpu_per_call(on_engine, ticks))
        );
    }

    /// Authenticated calls quiet (`quiet`) and while DPM reloads its configuration (`reloading`).
    fn report_reload(&self, args: &Args, ratio: f64, quiet: Spread, reloading: Spread) {
        let (health, whoami) = (&self.health, &self.whoami);
        let mut took = self.storm.reloads.clone();
        let reload = Spread::of(&mut took);
        println!(
            "  WhoAmI, quiet:          {} p50 {} p99 {}",
            per_second(rate(health)),
            human(quiet.p50),
            human(quiet.p99)
        );
        println!(
            "  WhoAmI, while reloading: {} p50 {} p99 {}",
            per_second(rate(whoami)),
            human(reloading.p50),
            human(reloading.p99)
        );
        let deployments = args.extra_deployments + 1;
        Row {
            figure: "live reload, SIGHUP to configurationReloaded",
            measured: format!(
                "p50 {} max {} ({} reloads of {deployments} deployments)",
                human(reload.p50),
                human(reload.max),
                self.storm.reloads.len()
            ),
            reference: "—".to_owned(),
            target: "< 1 s",
            verdict: Verdict::from_check(reload.max < Duration::from_secs(1)),
        }
        .print();
        Row {
            figure: "WhoAmI while DPM reloads",
            measured: format!(
                "{} ({ratio:.2} × quiet); p99 {}",
                per_second(rate(whoami)),
                human(reloading.p99)
            ),
            reference: format!(
                "quiet {} (p99 {})",
                per_second(rate(health)),
                human(quiet.p99)
            ),
            target: "reported",
            verdict: Verdict::Reported,
        }
        .print();
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

/// DPM's CPU time per call of a phase.
fn cpu_per_call(phase: &Phase, ticks_per_second: u64) -> Duration {
    per_call(phase.dpm_ticks, phase.calls, ticks_per_second)
}

/// The real engine's CPU time per call of a phase (`--kinds engine`).
fn dpe_cpu_per_call(phase: &Phase, ticks_per_second: u64) -> Duration {
    per_call(phase.dpe_ticks, phase.calls, ticks_per_second)
}

fn per_call(ticks: u64, calls: u64, ticks_per_second: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_second.max(1) as f64 / calls.max(1) as f64)
}

/// Whether `kind` is the reference of a run of `kinds` (the first of two, or Health/Check).
fn is_reference(kind: Kind, kinds: &[Kind]) -> bool {
    kind == Kind::Health || (kinds.len() == 2 && kind == kinds[0])
}

/// Runs `args.concurrency` tasks calling `kind` for `budget` (or `args.max_calls` calls).
async fn phase(kind: Kind, target: &Target, args: &Args, budget: Duration) -> Result<Phase> {
    let (channels, issuer, pid) = (&target.channels, &target.issuer, target.pid);
    let bearer = target.people.as_ref().map(|people| people.bearer.clone());
    let engine_id = target.engine_id.clone();
    let tasks = args.concurrency.clamp(1, 1024);
    let per_task = (args.max_calls / tasks as u64).max(1);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + budget;
    let ticks_before = cpu_ticks(pid)?;
    let dpe_before = target.dpe_pid.map(cpu_ticks).transpose()?;
    let mut running = tokio::task::JoinSet::new();
    for task in 0..tasks {
        let channel = channels[task % channels.len()].clone();
        let credentials = OutboundCredentials::new(Arc::clone(issuer), "dpm");
        let (bearer, engine_id) = (bearer.clone(), engine_id.clone());
        running.spawn(async move {
            let mut health = HealthClient::new(channel.clone());
            let mut person = IdentityServiceClient::new(channel.clone());
            let mut admin = EngineAdminServiceClient::new(channel.clone());
            let mut whoami = IdentityServiceClient::with_interceptor(channel, credentials);
            let mut latencies = Vec::with_capacity(4096);
            let mut failures = 0u64;
            for _ in 0..per_task {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let sent = Instant::now();
                let ok = match kind {
                    Kind::Storm | Kind::Reload => whoami.who_am_i(WhoAmIRequest {}).await.is_ok(),
                    Kind::Health => health
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .is_ok(),
                    Kind::WhoAmI => whoami.who_am_i(WhoAmIRequest {}).await.is_ok(),
                    Kind::UserWhoAmI | Kind::UserStorm => match &bearer {
                        Some(value) => person
                            .who_am_i(with_authorization(WhoAmIRequest {}, value))
                            .await
                            .is_ok(),
                        None => false,
                    },
                    Kind::EngineWhoAmI => match &bearer {
                        Some(value) => admin
                            .who_am_i_on_engine(with_authorization(
                                WhoAmIOnEngineRequest {
                                    engine_id: engine_id.clone(),
                                },
                                value,
                            ))
                            .await
                            .is_ok(),
                        None => false,
                    },
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
    if let (Some(dpe), Some(before)) = (target.dpe_pid, dpe_before) {
        result.dpe_ticks = cpu_ticks(dpe)?.saturating_sub(before);
    }
    Ok(result)
}

/// The refused-token storm's one value: a well-formed module token whose `kid` DPM does not know.
fn stranger_module_token() -> Result<Arc<Vec<MetadataValue<Ascii>>>> {
    let stranger = TokenIssuer::new(
        GeneratorKey::generate(),
        Duration::from_secs(15 * 60),
        Arc::new(SystemClock),
    )?;
    let value = svcid_client::authorization_value(&stranger.mint("dpm", None))
        .context("the storm's token is not valid metadata")?;
    Ok(Arc::new(vec![value]))
}

/// Starts a real `dpe` registering with the DPM on `dpm_port` (which trusts `dpe_key`), trusting
/// DPM to act for people, and waits until DPM lists it READY; returns it and its engine id.
async fn start_engine(
    dir: &Path,
    dpm_port: u16,
    dpm_key: &GeneratorKey,
    dpe_key: &GeneratorKey,
    channel: &Channel,
    people: &People,
) -> Result<(ChildGuard, String)> {
    // DPM calls the engine for the person, so the engine grants DPM the impersonation role.
    let role = format!(
        "{}.dpm-bench.{}[0]=IMPERSONATION",
        names::DEPLOYMENTS,
        deployment::ROLES
    );
    let http = format!("{}=0", names::SERVER_PORT);
    let home = write_dpe_home(
        &dir.join("dpe"),
        dpm_port,
        dpm_key,
        dpe_key,
        &[role.as_str(), http.as_str()],
    )?;
    let dpe = svcid_testkit::process::spawn_daemon("dpe", &home, &[], &[], |_| {})
        .context("starting dpe")?;
    let mut admin = EngineAdminServiceClient::new(channel.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let engines = admin
            .list_engines(with_authorization(ListEnginesRequest {}, &people.bearer))
            .await
            .context("ListEngines with a user token was refused")?
            .into_inner()
            .engines;
        if let Some(engine) = engines
            .iter()
            .find(|e| e.status == EngineStatus::Ready as i32)
        {
            let id = engine.engine_id.clone();
            let who = admin
                .who_am_i_on_engine(with_authorization(
                    WhoAmIOnEngineRequest {
                        engine_id: id.clone(),
                    },
                    &people.bearer,
                ))
                .await
                .context("WhoAmIOnEngine with a user token failed")?
                .into_inner();
            println!("engine {id} READY; WhoAmIOnEngine says {}", who.identity);
            return Ok((dpe, id));
        }
        if Instant::now() > deadline {
            bail!("the dpe did not become READY within 20 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `rate` calls per second, for `budget`, from a connection of its own, each with one of
/// `values` in turn (well-formed tokens DPM refuses); returns (sent, refused, how long it ran).
async fn storm(
    port: u16,
    rate: u32,
    budget: Duration,
    values: Arc<Vec<MetadataValue<Ascii>>>,
) -> Result<(u64, u64, Duration)> {
    if values.is_empty() {
        bail!("the storm has no token to send");
    }
    let channel = svcid_client::endpoint("127.0.0.1", port, None)?
        .connect()
        .await
        .context("connecting the storm")?;
    // Batches every 10 ms, each call on its own task, so a slow answer does not slow the storm.
    let per_tick = (rate / 100).max(1);
    let started = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let deadline = tokio::time::Instant::now() + budget;
    let mut calls = tokio::task::JoinSet::new();
    let (mut sent, mut refused) = (0u64, 0u64);
    while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        for _ in 0..per_tick {
            let mut client = IdentityServiceClient::new(channel.clone());
            let value = &values[(sent % values.len() as u64) as usize];
            let request = with_authorization(WhoAmIRequest {}, value);
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
    Ok((sent, refused, started.elapsed()))
}

/// Sends DPM (`pid`) SIGHUP again and again for `budget`, each time waiting for the
/// `configurationReloaded` it logs in `log`; how long each reload took.
fn reload_repeatedly(pid: u32, log: PathBuf, budget: Duration) -> Result<Vec<Duration>> {
    let mut tail = LogTail::from_end(log);
    let started = Instant::now();
    let mut took = Vec::new();
    while started.elapsed() < budget {
        let sent = Instant::now();
        let status = std::process::Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .context("running kill -HUP")?;
        if !status.success() {
            bail!("kill -HUP {pid} failed: {status}");
        }
        loop {
            let events = tail.poll().context("reading DPM's log")?;
            if events
                .iter()
                .any(|e| e["eventId"] == svcid_grpc::events::CONFIGURATION_RELOADED)
            {
                break;
            }
            if sent.elapsed() > Duration::from_secs(30) {
                bail!("DPM logged no configurationReloaded within 30 s of SIGHUP");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        took.push(sent.elapsed());
    }
    Ok(took)
}
