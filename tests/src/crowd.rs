//! A crowd: many people of company 3 in one team, so that one group send spans several chunks
//! and several fan-out batches (10 chunks each): progress saves between batches, and a fan-out
//! that dies between them resumes where its last save left it.

use shared::directory::{DirectorySnapshot, TeamRecord, UserRecord};
use shared::model::{Device, Platform, UserId};
use shared::runtime::Ports;
use uuid::Uuid;

/// The crowd's team in company 3 (a GT request's value).
pub const TEAM: &str = "900";

/// The crowd's `i`-th person.
pub fn person(i: usize) -> UserId {
    Uuid::from_u128(0xc0de_0000_0000 + i as u128)
}

/// The crowd's `i`-th person's address.
pub fn address(i: usize) -> String {
    format!("crowd{i}@example.com")
}

/// The crowd's `i`-th person's device token, shaped as FCM's registration tokens are (about 160
/// characters: an instance id, `:`, the token): what AWS's error messages quote.
pub fn token(i: usize) -> String {
    format!("fcm-crowd-{i:06}:APA91b{}", "Xy0_-".repeat(28))
}

/// `n` people with an address each, all members of [`TEAM`].
pub fn snapshot(n: usize) -> DirectorySnapshot {
    let users: Vec<UserRecord> = (0..n)
        .map(|i| UserRecord {
            id: person(i),
            number: 80_000 + i as u64,
            company_id: 3,
            email: address(i),
            first_name: format!("Crowd {i}"),
            roles: Vec::new(),
            token_sha256: format!("{:064x}", 0xc0de_0000 + i),
            token_expires_at: None,
        })
        .collect();
    let team = TeamRecord { company_id: 3, id: TEAM.into(), members: users.iter().map(|u| u.id).collect() };
    DirectorySnapshot { users, teams: vec![team], ..DirectorySnapshot::default() }
}

/// Adds the crowd of `n` to the directory (beside what is there); with `devices`, each person
/// also gets one Android device, so a send to them pushes. Returns the people.
pub async fn load(ports: &Ports, n: usize, devices: bool) -> Vec<UserId> {
    ports.directory.load(&snapshot(n)).await.expect("the crowd loads");
    let people: Vec<UserId> = (0..n).map(person).collect();
    if devices {
        for (i, p) in people.iter().enumerate() {
            let token = token(i);
            let endpoint_arn =
                ports.push.create_endpoint(Platform::Gcm, &token, *p).await.expect("an endpoint");
            let device = Device {
                device_id: Device::id_for(Platform::Gcm, &token),
                platform: Platform::Gcm,
                token,
                endpoint_arn,
                registered_at: crate::t0(),
            };
            ports.devices.put_device(*p, &device, 10).await.expect("a device");
        }
        ports.devices.mark_company_devices(3).await.expect("company 3 has devices");
    }
    people
}
