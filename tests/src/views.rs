//! The center's views against the model's rule, for any store: a random history of deliveries,
//! marks and marks over everything, then every view read page by page.

use chrono::{DateTime, Duration, Utc};
use shared::model::*;
use shared::ports::*;
use uuid::Uuid;

use crate::t0;

fn content(priority: Priority, created: DateTime<Utc>) -> InboxContent {
    InboxContent {
        notification_id: Uuid::new_v4(),
        origin: Origin::AppNotification,
        title: "t".into(),
        body: "b".into(),
        url: None,
        override_content: None,
        icon: IconType::Info,
        toast: ToastType::Hidden,
        priority,
        actions: vec![],
        data: None,
        source: None,
        created_at: created,
        expires_at: created + Duration::days(14),
    }
}

async fn deliver(inbox: &dyn InboxStore, user: Uuid, contents: &[InboxContent], at: DateTime<Utc>) {
    for c in contents {
        inbox.put_content(c).await.unwrap();
    }
    let entries: Vec<InboxEntry> = contents.iter().map(|c| c.entry_for(user, at)).collect();
    inbox.put_entries(&entries, &ManualClock::new(at)).await.unwrap();
}

/// Every page of a read of the center (a store that never ends its pages fails, not hangs).
pub async fn read_all(
    inbox: &dyn InboxStore,
    user: Uuid,
    query: &InboxQuery,
    now: DateTime<Utc>,
    limit: usize,
) -> Vec<InboxItem> {
    let mut seen = Vec::new();
    let mut page = PageRequest::first(limit);
    for _ in 0..10_000 {
        let got = inbox.list(user, query, now, &page).await.unwrap();
        assert!(got.items.len() <= limit);
        seen.extend(got.items);
        match got.next {
            Some(t) => page.after = Some(t),
            None => return seen,
        }
    }
    panic!("{query:?}: more than 10,000 pages of {limit}");
}

/// Every view, read page by page, is the model's rule over what happened: a history of
/// deliveries (some late, hours after their creation), marks one by one and marks over
/// everything, at random; each status, alone and after a delivery time, in pages of one to three
/// (a store that reads a view from several sets merges them page by page).
pub async fn match_the_rule(inbox: &dyn InboxStore, seeds: std::ops::Range<u64>) {
    use rand::{Rng, SeedableRng};
    for seed in seeds {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let user = Uuid::new_v4();
        let mut now = t0();
        let mut w = Watermarks::default();
        let mut model: Vec<InboxEntry> = Vec::new();
        let mut instants = Vec::new();
        for _ in 0..60 {
            now += Duration::milliseconds(rng.random_range(1..90_000));
            instants.push(now);
            match rng.random_range(0..10) {
                0..=3 => {
                    let late = rng.random_bool(0.25);
                    let age =
                        if late { Duration::hours(rng.random_range(2..30)) } else { Duration::seconds(5) };
                    let priority = if rng.random_bool(0.2) { Priority::High } else { Priority::Normal };
                    // A few at once, more than a store's first query of a page reads in all.
                    let cs: Vec<InboxContent> = (0..rng.random_range(1..=4))
                        .map(|i| content(priority, now - age - Duration::milliseconds(i)))
                        .collect();
                    deliver(inbox, user, &cs, now).await;
                    model.extend(cs.iter().map(|c| c.entry_for(user, now)));
                }
                4..=7 if !model.is_empty() => {
                    let i = rng.random_range(0..model.len());
                    let e = &mut model[i];
                    let mark = Mark::ALL[rng.random_range(0..Mark::ALL.len())];
                    let applies = mark == Mark::Dismissed || e.marks.dismissed_at.is_none();
                    assert_eq!(
                        inbox.mark(user, e.notification_id, mark, now).await.unwrap(),
                        applies,
                        "seed {seed}: {mark:?}"
                    );
                    if applies {
                        mark.apply(&mut e.marks, now);
                    }
                }
                _ => {
                    let all =
                        [MarkAll::Seen, MarkAll::Read { archive: false }, MarkAll::Read { archive: true }];
                    let mark = all[rng.random_range(0..all.len())];
                    inbox.mark_all(user, mark, now).await.unwrap();
                    mark.apply(&mut w, now);
                }
            }
        }
        now += Duration::seconds(1);
        let mut checked = 0;
        for status in StatusFilter::ALL {
            let at = instants[rng.random_range(0..instants.len())];
            for (since, delivered_since) in [(None, None), (Some(at), None), (None, Some(at))] {
                let query = InboxQuery { status, since, delivered_since };
                let mut expected: Vec<&InboxEntry> =
                    model.iter().filter(|e| query.admits(e, &w, now)).collect();
                expected.sort_by_key(|e| e.order());
                let expected: Vec<Uuid> = expected.iter().map(|e| e.notification_id).collect();
                let limit = rng.random_range(1..=3);
                let got: Vec<Uuid> = read_all(inbox, user, &query, now, limit)
                    .await
                    .iter()
                    .map(|i| i.content.notification_id)
                    .collect();
                assert_eq!(got, expected, "seed {seed}: {query:?} in pages of {limit}, under {w:?}");
                checked += expected.len();
            }
        }
        assert!(checked > 20, "seed {seed}: the views held entries to compare ({checked})");
        assert!(model.len() > 40, "seed {seed}: more entries than a first query reads ({})", model.len());
    }
}
