//! A GT broadcast to a generated company of 1,000 / 100,000 / 1,000,000 recipients (teams of
//! 200–2,000 members, 10% of memberships overlapping other teams, 2% unsubscribed from the
//! asset), through send, fan-out and delivery on the memory adapters. Prints recipients per
//! second for planning (resolve + dedupe + unsubscribe + chunk) and end to end, and peak memory.

use std::time::Instant;

use serde_json::{Value, json};
use shared::directory::{AssetRecord, DirectorySnapshot, TeamRecord, UserRecord};
use shared::model::{Audience, Unsubscribe};
use shared::runtime::MemoryPorts;
use uuid::Uuid;

use crate::peak_rss_mib;

pub const BROCHURE: u64 = 99;

/// A deterministic pseudo-random sequence (no dependency needed for a generator).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

fn user_id(i: usize) -> Uuid {
    Uuid::from_u128(0xbe00_0000_0000_4000_8000_0000_0000_0000 | i as u128)
}

fn user_record(i: usize) -> UserRecord {
    UserRecord {
        id: user_id(i),
        number: 100_000 + i as u64,
        company_id: 3,
        email: format!("bench{i}@bench.example"),
        first_name: String::new(),
        roles: vec![],
        token_sha256: format!("bench-token-{i}"),
        token_expires_at: None,
    }
}

/// Teams of 200..2000 members covering everyone once, 10% more memberships of people already in
/// another team, and 2% of people unsubscribed from the asset: the groups, without the users.
fn groups(n: usize) -> (DirectorySnapshot, Vec<String>) {
    let mut rng = Lcg(n as u64);
    let ids: Vec<Uuid> = (0..n).map(user_id).collect();
    let mut teams: Vec<Vec<Uuid>> = Vec::new();
    let mut start = 0;
    while start < n {
        let size = (200 + rng.next() as usize % 1800).min(n - start);
        teams.push(ids[start..start + size].to_vec());
        start += size;
    }
    for _ in 0..n / 10 {
        let who = ids[rng.next() as usize % n];
        let team = rng.next() as usize % teams.len();
        teams[team].push(who);
    }
    let team_ids: Vec<String> = (0..teams.len()).map(|t| format!("b{t}")).collect();
    let mut snapshot = DirectorySnapshot::default();
    snapshot.teams.extend(teams.into_iter().zip(&team_ids).map(|(members, id)| TeamRecord {
        company_id: 3,
        id: id.clone(),
        members,
    }));
    let unsubscribes = ids
        .iter()
        .step_by(50)
        .map(|u| Unsubscribe { user_id: *u, notifications: true, emails: false })
        .collect();
    snapshot.assets.push(AssetRecord { id: BROCHURE, company_id: 3, members: vec![], unsubscribes });
    (snapshot, team_ids)
}

/// The demo directory plus `n` generated people in teams, as one snapshot.
pub fn directory(n: usize) -> (DirectorySnapshot, Vec<String>) {
    let (groups, team_ids) = groups(n);
    let mut snapshot = DirectorySnapshot::demo();
    snapshot.users.extend((0..n).map(user_record));
    snapshot.teams.extend(groups.teams);
    snapshot.assets.extend(groups.assets);
    (snapshot, team_ids)
}

/// Loads the same directory in slices of people, so that the generator's copy of a million
/// people never sits beside the store's (loading merges).
pub async fn load_directory(memory: &MemoryPorts, n: usize) -> Vec<String> {
    memory.directory_load(&DirectorySnapshot::demo()).await;
    for start in (0..n).step_by(100_000) {
        let slice = DirectorySnapshot {
            users: (start..(start + 100_000).min(n)).map(user_record).collect(),
            ..Default::default()
        };
        memory.directory_load(&slice).await;
    }
    let (groups, team_ids) = groups(n);
    memory.directory_load(&groups).await;
    team_ids
}

async fn one(n: usize) -> Value {
    let memory = MemoryPorts::system();
    let team_ids = load_directory(&memory, n).await;
    let ports = memory.ports.clone();

    // Planning: resolve, dedupe, drop the unsubscribed, cut into chunks.
    let audience = Audience::Teams { company_id: 3, team_ids: team_ids.clone() };
    let start = Instant::now();
    let people = shared::service::audience::recipients(
        ports.directory.as_ref(),
        &audience,
        Some(BROCHURE),
        shared::service::audience::GroupCheck::Recheck,
    )
    .await
    .expect("resolve");
    let chunks = people.chunks(ports.settings.chunk_size).count();
    let planning = start.elapsed().as_secs_f64();
    let reached = people.len();
    drop(people);

    // End to end: the request, the fan-out job, every delivery chunk.
    let start = Instant::now();
    let body = json!({"version": 3, "type": "GT", "key": "3", "values": team_ids, "message": "bench broadcast", "brochureId": BROCHURE});
    crate::group_send(&ports, &body).await;
    local::workers::run_until_idle(&ports, 5).await.expect("deliver");
    let end_to_end = start.elapsed().as_secs_f64();
    let delivered = memory.inbox.item_count();
    assert_eq!(delivered, reached, "every recipient got exactly one item");

    let row = json!({
        "recipients": reached,
        "chunks": chunks,
        "planning_recipients_per_s": reached as f64 / planning,
        "end_to_end_recipients_per_s": delivered as f64 / end_to_end,
        "peak_rss_mib": peak_rss_mib(),
    });
    row
}

pub async fn run() -> Value {
    println!("\nfanout-memory: GT broadcast through send, fan-out and delivery (memory adapters)");
    println!(
        "{:<12} {:>12} {:>18} {:>18} {:>14}",
        "directory", "reached", "planning rcpt/s", "end-to-end rcpt/s", "peak RSS MiB"
    );
    // Each size in a process of its own, so that its peak memory is its own (not what an earlier
    // scenario or size left behind).
    let exe = std::env::current_exe().expect("the bench executable");
    let mut rows = Vec::new();
    for n in [1_000, 100_000, 1_000_000] {
        let out = std::process::Command::new(&exe)
            .args([ONE, &n.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("run one size");
        assert!(out.status.success(), "fanout-memory {n} failed");
        let text = String::from_utf8_lossy(&out.stdout);
        let row: Value = text
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no figures from fanout-memory {n}: {text}"));
        println!(
            "{:<12} {:>12} {:>18.0} {:>18.0} {:>14.0}",
            n,
            row["recipients"].as_u64().unwrap_or_default(),
            row["planning_recipients_per_s"].as_f64().unwrap_or_default(),
            row["end_to_end_recipients_per_s"].as_f64().unwrap_or_default(),
            row["peak_rss_mib"].as_f64().unwrap_or_default()
        );
        rows.push(row);
    }
    Value::Array(rows)
}

/// The hidden scenario a size runs as, in its own process: `bench fanout-memory-one <n>`
/// prints its row as one JSON line.
pub const ONE: &str = "fanout-memory-one";

/// One size, in this process (see `ONE`).
pub async fn run_one(n: usize) {
    let row = one(n).await;
    println!("{row}");
}
