//! `tern-queue-sim`: the queue's own statements, without SMTP in the way, for `make bench-scale`.
//!
//! - `claim`: many claimers, each on its own connection, run the worker's claim, message load and
//!   finish (through `PgJobStore`, the very statements a worker runs) until the queue is drained
//!   or the time is up: where the claim path stops scaling as claimers are added.
//! - `sweep`: the retention sweep's statements, batch after batch, as a worker runs them.
//! - `watch`: samples what the database's client backends are waiting on until interrupted.
//!
//! Each prints one line of `key=value` pairs. With `--pg-pid` (the postmaster's pid) it also
//! reports PostgreSQL's CPU per job: the postmaster's own and reaped children's time plus its
//! live children's, read from /proc before and after.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tern_common::config::DatabaseConfig;
use tern_common::queue::{Finished, JobState, PgJobStore, QueueId, connect_delivery_pool};
use tokio::sync::watch;

#[derive(Debug, Parser)]
struct Cli {
    /// The queue's database.
    #[arg(long, env = "TERN_DATABASE_URL", global = true, default_value = "")]
    url: String,
    /// The postmaster's pid, for PostgreSQL's CPU per job.
    #[arg(long, global = true)]
    pg_pid: Option<u32>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Claim(ClaimArgs),
    Sweep(SweepArgs),
    Watch(WatchArgs),
}

#[derive(Debug, Args)]
struct ClaimArgs {
    #[arg(long, default_value_t = 8)]
    claimers: u32,
    /// Jobs per claim (`TERN_WORKER_BATCH`).
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// One finish statement per message, as a worker commits each SMTP transaction, or one per
    /// claim.
    #[arg(long, value_enum, default_value = "message")]
    finish_per: FinishPer,
    /// Load the claimed messages' envelopes and bodies, as a worker does before delivering.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    load: bool,
    /// Stop after this many seconds even if jobs are left.
    #[arg(long, default_value_t = 120.0)]
    seconds: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FinishPer {
    Message,
    Claim,
}

#[derive(Debug, Args)]
struct SweepArgs {
    #[arg(long, value_enum)]
    what: Sweep,
    /// Retention in seconds: bodies of messages finished this long ago, or the history of
    /// messages received this long ago (row by row, or a day's partitions at once).
    #[arg(long)]
    after: f64,
    /// Rows per statement, as a worker sweeps.
    #[arg(long, default_value_t = 500)]
    batch: u32,
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Sweep {
    Body,
    History,
    Days,
}

#[derive(Debug, Args)]
struct WatchArgs {
    /// Milliseconds between samples.
    #[arg(long, default_value_t = 20)]
    interval_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    ensure!(
        !cli.url.is_empty(),
        "--url or TERN_DATABASE_URL is required"
    );
    match &cli.command {
        Command::Claim(args) => claim(&cli, args).await,
        Command::Sweep(args) => sweep(&cli, args).await,
        Command::Watch(args) => {
            let (stop, stopped) = watch::channel(false);
            let waits = tokio::spawn(sample_waits(cli.url.clone(), args.interval_ms, stopped));
            let mut sigterm =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = sigterm.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            let _ = stop.send(true);
            println!("{}", waits.await??);
            Ok(())
        }
    }
}

fn pool(url: &str, connections: u32) -> anyhow::Result<PgJobStore> {
    let pool = connect_delivery_pool(&DatabaseConfig {
        url: url.to_owned(),
        max_connections: connections,
        commit_timeout: Duration::from_secs(60),
    })?;
    Ok(PgJobStore::new(pool))
}

async fn claim(cli: &Cli, args: &ClaimArgs) -> anyhow::Result<()> {
    let store = pool(&cli.url, args.claimers)?;
    // Every connection open before the clock starts.
    let mut warm = Vec::new();
    for _ in 0..args.claimers {
        warm.push(store.pool().acquire().await?);
    }
    drop(warm);
    let (stop_waits, stopped) = watch::channel(false);
    let waits = tokio::spawn(sample_waits(cli.url.clone(), 20, stopped));
    let cpu_before = cli.pg_pid.map(tree_ticks).transpose()?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..args.claimers {
        let store = store.clone();
        let owner = format!("sim-{}-{n}", std::process::id());
        let (load, finish_per, batch) = (args.load, args.finish_per, args.batch);
        tasks.push(tokio::spawn(async move {
            claimer(store, owner, batch, load, finish_per, deadline).await
        }));
    }
    let mut total = Timings::default();
    for task in tasks {
        total.merge(task.await??);
    }
    let seconds = started.elapsed().as_secs_f64();
    let pg_cpu = match (cli.pg_pid, cpu_before) {
        (Some(pid), Some(before)) => Some(ticks_to_ms(tree_ticks(pid)? - before)?),
        _ => None,
    };
    let _ = stop_waits.send(true);
    let waits = waits.await??;
    let claims_with_jobs = total.claim.len() - total.empty_claims;
    print!(
        "claimers={} batch={} finish_per={:?} jobs={} seconds={seconds:.2} jobs_per_s={:.0} \
         claims_per_s={:.0} jobs_per_claim={:.1} claim_p50_ms={:.2} claim_p99_ms={:.2} \
         finish_p50_ms={:.2} finish_p99_ms={:.2}",
        args.claimers,
        args.batch,
        args.finish_per,
        total.jobs,
        total.jobs as f64 / seconds,
        total.claim.len() as f64 / seconds,
        total.jobs as f64 / claims_with_jobs.max(1) as f64,
        percentile(&mut total.claim, 0.50),
        percentile(&mut total.claim, 0.99),
        percentile(&mut total.finish, 0.50),
        percentile(&mut total.finish, 0.99),
    );
    if let Some(ms) = pg_cpu {
        print!(" pg_cpu_ms_per_job={:.3}", ms / total.jobs.max(1) as f64);
    }
    println!(" {waits}");
    Ok(())
}

#[derive(Default)]
struct Timings {
    jobs: u64,
    empty_claims: usize,
    claim: Vec<Duration>,
    finish: Vec<Duration>,
}

impl Timings {
    fn merge(&mut self, other: Timings) {
        self.jobs += other.jobs;
        self.empty_claims += other.empty_claims;
        self.claim.extend(other.claim);
        self.finish.extend(other.finish);
    }
}

/// One claimer: claim, load, finish as delivered, until nothing is due or the deadline.
async fn claimer(
    store: PgJobStore,
    owner: String,
    batch: u32,
    load: bool,
    finish_per: FinishPer,
    deadline: Instant,
) -> anyhow::Result<Timings> {
    const LEASE: Duration = Duration::from_secs(300);
    let sink = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let mut timings = Timings::default();
    while Instant::now() < deadline {
        let start = Instant::now();
        let jobs = store.claim(&owner, LEASE, batch).await?;
        timings.claim.push(start.elapsed());
        if jobs.is_empty() {
            timings.empty_claims += 1;
            break;
        }
        if load {
            let mut ids: Vec<QueueId> = jobs.iter().map(|job| job.message_id).collect();
            ids.dedup();
            let messages = store.load_messages(&ids).await?;
            ensure!(
                messages.len() == ids.len(),
                "messages missing for claimed jobs"
            );
        }
        let outcomes: Vec<Finished<'_>> = jobs
            .iter()
            .map(|job| Finished {
                job: job.key(),
                state: JobState::Delivered,
                status: "2.0.0",
                reply: "250 2.0.0 Ok: queued",
                mx_host: Some("sink.test"),
                remote_ip: Some(sink),
                tls_version: None,
                tls_cipher: None,
                dsn: None,
            })
            .collect();
        // Claims come back sorted by domain, then message: a message's jobs are adjacent.
        let groups: Vec<&[Finished<'_>]> = match finish_per {
            FinishPer::Claim => vec![&outcomes[..]],
            FinishPer::Message => {
                let mut start = 0;
                jobs.chunk_by(|a, b| a.message_id == b.message_id)
                    .map(|message| {
                        start += message.len();
                        &outcomes[start - message.len()..start]
                    })
                    .collect()
            }
        };
        for group in groups {
            let start = Instant::now();
            let recorded = store.finish(&owner, group).await?;
            timings.finish.push(start.elapsed());
            ensure!(recorded == group.len() as u64, "a lease was lost: {owner}");
            timings.jobs += recorded;
        }
    }
    Ok(timings)
}

async fn sweep(cli: &Cli, args: &SweepArgs) -> anyhow::Result<()> {
    let store = pool(&cli.url, 1)?;
    drop(store.pool().acquire().await?);
    let after = Duration::from_secs_f64(args.after);
    // Dropping days is counted in the messages they held, like the row sweeps, read before the
    // clock starts.
    let days_held: u64 = if matches!(args.what, Sweep::Days) {
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM messages
              WHERE id < queue_day_start(((now() - make_interval(secs => $1))
                                          AT TIME ZONE 'UTC')::date)",
        )
        .bind(args.after)
        .fetch_one(store.pool())
        .await?;
        u64::try_from(held).unwrap_or(0)
    } else {
        0
    };
    let cpu_before = cli.pg_pid.map(tree_ticks).transpose()?;
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let (mut deleted, mut statements) = (0u64, Vec::new());
    while Instant::now() < deadline {
        let start = Instant::now();
        let swept = match args.what {
            Sweep::Body => store.sweep_bodies(after, args.batch).await?,
            Sweep::History => store.sweep_history(after, args.batch).await?,
            Sweep::Days => {
                let days = store.drop_past_days(after).await?.unwrap_or_default();
                println!("days dropped={:?} kept={:?}", days.dropped, days.kept);
                deleted = days_held;
                statements.push(start.elapsed());
                break;
            }
        };
        statements.push(start.elapsed());
        deleted += swept;
        if swept < u64::from(args.batch) {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    print!(
        "what={:?} batch={} deleted={deleted} statements={} seconds={seconds:.2} \
         deleted_per_s={:.0} statement_p50_ms={:.2} statement_max_ms={:.2}",
        args.what,
        args.batch,
        statements.len(),
        deleted as f64 / seconds,
        percentile(&mut statements, 0.50),
        percentile(&mut statements, 1.0),
    );
    if let (Some(pid), Some(before)) = (cli.pg_pid, cpu_before) {
        let ms = ticks_to_ms(tree_ticks(pid)? - before)?;
        print!(
            " pg_cpu_ms={ms:.0} pg_cpu_ms_per_deleted={:.3}",
            ms / deleted.max(1) as f64
        );
    }
    println!();
    Ok(())
}

/// What the database's active client backends wait on, sampled every `interval_ms` until told
/// to stop; returns the summary (and prints it when stopped by a signal).
async fn sample_waits(
    url: String,
    interval_ms: u64,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<String> {
    let store = pool(&url, 1)?;
    let mut counts: HashMap<String, u64> = HashMap::new();
    let mut samples = 0u64;
    let mut every = tokio::time::interval(Duration::from_millis(interval_ms));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => break,
        }
        let waits: Vec<String> = sqlx::query_scalar(
            "SELECT COALESCE(wait_event_type || ':' || wait_event, 'CPU')
               FROM pg_stat_activity
              WHERE datname = current_database() AND state = 'active'
                AND backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .fetch_all(store.pool())
        .await?;
        samples += 1;
        for wait in waits {
            *counts.entry(wait).or_default() += 1;
        }
    }
    Ok(summarize_waits(&counts, samples))
}

/// `active=<mean active backends> lock_wait_share=… waits=<top five>` — shares of all active
/// backend samples; `Lock:*` are heavyweight lock waits, `LWLock:*` internal ones.
fn summarize_waits(counts: &HashMap<String, u64>, samples: u64) -> String {
    let active: u64 = counts.values().sum();
    let locks: u64 = counts
        .iter()
        .filter(|(wait, _)| wait.starts_with("Lock:"))
        .map(|(_, n)| n)
        .sum();
    let mut top: Vec<(&String, &u64)> = counts.iter().collect();
    top.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let share = |n: u64| 100.0 * n as f64 / active.max(1) as f64;
    let waits: Vec<String> = top
        .iter()
        .take(5)
        .map(|(wait, n)| format!("{wait}:{:.0}%", share(**n)))
        .collect();
    format!(
        "active={:.2} lock_wait_pct={:.1} waits={}",
        active as f64 / samples.max(1) as f64,
        share(locks),
        waits.join(",")
    )
}

fn percentile(values: &mut [Duration], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_unstable();
    let index = ((values.len() - 1) as f64 * q).round() as usize;
    values[index].as_secs_f64() * 1000.0
}

/// CPU clock ticks of `root` (its own, and those of its children it has reaped) and of its live
/// children: PostgreSQL's backends are the postmaster's children.
fn tree_ticks(root: u32) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue; // gone meanwhile
        };
        // Fields after the command's closing parenthesis: state ppid … utime(14) stime cutime
        // cstime, counted from 3 for the state.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<u64> = rest
            .split_whitespace()
            .skip(1)
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let (ppid, utime, stime, cutime, cstime) =
            (fields[0], fields[10], fields[11], fields[12], fields[13]);
        if pid == root {
            total += utime + stime + cutime + cstime;
        } else if ppid == u64::from(root) {
            total += utime + stime;
        }
    }
    Ok(total)
}

fn ticks_to_ms(ticks: u64) -> anyhow::Result<f64> {
    let out = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .context("getconf CLK_TCK")?;
    let per_second: f64 = String::from_utf8_lossy(&out.stdout).trim().parse()?;
    Ok(ticks as f64 * 1000.0 / per_second)
}
