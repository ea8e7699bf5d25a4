//! `notifications-local`: every route and background worker of the service in one process.
//!
//! ```text
//! notifications-local [--port 3000] [--backend memory|aws] [--provision] [--provision-only ENV.json] [--tick-seconds 5] [--no-demo]
//! ```
//! `memory` (default): embedded storage with the demo directory loaded. The web inbox is at `/`,
//! its realtime channel at `/realtime` (Server-Sent Events).
//! `--backfill-inbox-markers` (with `aws`, the table named by INBOX_TABLE): writes the markers of marks
//! an earlier version made (docs/deploy.md), prints what it did, exits.
//! `--copy-inbox-from TABLE` (with `aws`, into the table named by INBOX_TABLE): copies the Inbox
//! table of a version before issue #17 (`notifications-<stage>-inbox`) into it (docs/deploy.md),
//! its Scan in `--segments` parallel segments (4), prints what it did, exits.
//! `aws`: DynamoDB/SQS at the standard endpoint settings (`AWS_ENDPOINT_URL` for moto); with
//! `--provision`, the template's tables and queues are created first (prefix `local-`) and the
//! demo directory loaded into them; without it, the names come from the usual variables
//! (NOTIFICATIONS_TABLE, ...).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use shared::runtime::{MemoryPorts, Services, aws_ports, aws_sdk_config};

struct Args {
    /// Provision, load the demo directory, write the functions' environment as JSON here, exit
    /// (`scripts/sam-local` gives it to `sam local` as `--env-vars`).
    provision_only: Option<PathBuf>,
    port: u16,
    backend: String,
    provision: bool,
    tick_seconds: u64,
    demo: bool,
    template: PathBuf,
    backfill_markers: bool,
    copy_inbox_from: Option<String>,
    /// Parallel Scan segments of `--copy-inbox-from`.
    segments: u32,
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}");
    eprintln!(
        "usage: notifications-local [--port N] [--backend memory|aws] [--provision] [--provision-only ENV.json] [--tick-seconds N] [--no-demo] [--template PATH] [--backfill-inbox-markers] [--copy-inbox-from TABLE [--segments N]]"
    );
    std::process::exit(2)
}

fn args() -> Args {
    let mut a = Args {
        provision_only: None,
        port: std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(3000),
        backend: "memory".into(),
        provision: false,
        tick_seconds: 5,
        demo: true,
        template: PathBuf::from("template.yaml"),
        backfill_markers: false,
        copy_inbox_from: None,
        segments: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| usage(&format!("{name} needs a value")));
        match arg.as_str() {
            "--port" => a.port = value("--port").parse().unwrap_or_else(|_| usage("--port must be a number")),
            "--backend" => a.backend = value("--backend"),
            "--provision" => a.provision = true,
            "--tick-seconds" => {
                a.tick_seconds = value("--tick-seconds")
                    .parse()
                    .unwrap_or_else(|_| usage("--tick-seconds must be a number"))
            }
            "--no-demo" => a.demo = false,
            "--backfill-inbox-markers" => a.backfill_markers = true,
            "--copy-inbox-from" => a.copy_inbox_from = Some(value("--copy-inbox-from")),
            "--segments" => {
                a.segments = value("--segments")
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .unwrap_or_else(|| usage("--segments must be a number from 1 to 1000"))
            }
            "--provision-only" => {
                a.provision = true;
                a.provision_only = Some(PathBuf::from(value("--provision-only")));
            }
            "--template" => a.template = PathBuf::from(value("--template")),
            "-h" | "--help" => usage("notifications-local: the whole service in one process"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    if !matches!(a.backend.as_str(), "memory" | "aws") {
        usage("--backend must be memory or aws");
    }
    a
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = args();
    if args.backfill_markers {
        if args.backend != "aws" {
            usage("--backfill-inbox-markers goes with --backend aws");
        }
        let table = std::env::var(shared::Config::INBOX_TABLE)
            .unwrap_or_else(|_| usage("--backfill-inbox-markers reads the table's name from INBOX_TABLE"));
        let client = aws_sdk_dynamodb::Client::new(&aws_sdk_config().await);
        let store = shared::adapters::dynamodb::DynamoInboxStore::new(client, &table);
        let (found, written) = store.backfill_markers().await?;
        println!("{table}: {found} entries with marks, {written} markers written");
        return Ok(());
    }
    if let Some(earlier) = &args.copy_inbox_from {
        if args.backend != "aws" {
            usage("--copy-inbox-from goes with --backend aws");
        }
        let table = std::env::var(shared::Config::INBOX_TABLE)
            .unwrap_or_else(|_| usage("--copy-inbox-from writes into the table INBOX_TABLE names"));
        if *earlier == table {
            usage("--copy-inbox-from names the earlier table, INBOX_TABLE this version's");
        }
        let client = aws_sdk_dynamodb::Client::new(&aws_sdk_config().await);
        let store = shared::adapters::dynamodb::DynamoInboxStore::new(client, &table);
        let c = store.copy_from_earlier_table(earlier, chrono::Utc::now(), args.segments).await?;
        println!(
            "{earlier} -> {table}: {} entries read, {} copied, {} there already ({} of them dismissed), {} expired not copied, {} contents written",
            c.found, c.copied, c.had, c.dismissed, c.expired, c.contents
        );
        return Ok(());
    }
    let (mut ports, max_receives, hub) = if args.backend == "memory" {
        let mut memory = MemoryPorts::system();
        // Links in emails point at this runner.
        if let Some(channels) = memory.ports.channels.as_mut() {
            channels.public_api_url = Some(format!("http://127.0.0.1:{}", args.port));
        }
        if args.demo {
            let summary = memory.load_demo_directory().await?;
            tracing::info!("demo directory loaded: {summary}");
        }
        (memory.ports, shared::runtime::MAX_RECEIVES, memory.realtime)
    } else {
        let sdk = aws_sdk_config().await;
        let config = if args.provision {
            let parameters = local::provision::LOCAL_PARAMETERS
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let p = local::provision::provision(&sdk, &args.template, "local-", &parameters).await?;
            tracing::info!(tables = ?p.tables, queues = ?p.queue_urls, "provisioned from {}", args.template.display());
            if let Some(path) = &args.provision_only {
                let config = p.config()?;
                let tables = aws_ports(&sdk, &config, Services::TABLES).await?;
                if args.demo {
                    tables.directory.load(&shared::directory::DirectorySnapshot::demo()).await?;
                }
                std::fs::write(path, serde_json::to_string_pretty(&p.env)?)?;
                tracing::info!("the functions' environment is in {}", path.display());
                return Ok(());
            }
            p.config()?
        } else {
            shared::Config::from_env()?
        };
        // Email and push where configured (PUBLIC_API_URL, LINK_SIGNING_KEY, EMAIL_FROM, ...).
        let ports = match aws_ports(&sdk, &config, Services::ALL).await {
            Ok(ports) => ports,
            Err(e) => {
                tracing::warn!("email and push are off: {e}");
                aws_ports(&sdk, &config, Services::QUEUES).await?
            }
        };
        if args.demo {
            let demo = shared::directory::DirectorySnapshot::demo();
            ports.directory.load(&demo).await?;
            tracing::info!("demo directory loaded: {}", demo.summary());
        }
        // Realtime goes through this process's hub, whatever the storage.
        (
            ports,
            config.max_receive_count,
            std::sync::Arc::new(shared::adapters::memory::MemoryRealtime::new()),
        )
    };
    ports.realtime = hub.clone();
    tokio::spawn(local::workers::run_forever(
        ports.clone(),
        max_receives,
        Duration::from_secs(args.tick_seconds.max(1)),
    ));
    let addr = SocketAddr::from(([127, 0, 0, 1], args.port));
    local::server::listen(ports, hub, addr).await?;
    Ok(())
}
