//! The test emulator refuses what DynamoDB and SQS refuse (their documented limits), so that code
//! which would fail on AWS fails here first. Some rules moto applies itself, the rest
//! `scripts/moto-serial` applies in front of it; each is pinned here, on tables and queues
//! provisioned from `template.yaml`.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, PutRequest, TransactWriteItem, Update, WriteRequest,
};

type Item = HashMap<String, AttributeValue>;

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn key(pk: &str, sk: &str) -> Item {
    HashMap::from([("pk".to_string(), s(pk)), ("sk".to_string(), s(sk))])
}

fn with(mut item: Item, name: &str, value: AttributeValue) -> Item {
    item.insert(name.into(), value);
    item
}

/// The error's code and text, for assertions that name what was refused.
fn refusal<E: std::fmt::Debug>(result: Result<impl std::fmt::Debug, E>) -> String {
    match result {
        Ok(ok) => panic!("the emulator accepted what AWS refuses: {ok:?}"),
        Err(e) => format!("{e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_limits_are_enforced() {
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let table = provisioned.tables["NotificationsTable"].clone();
    let put = |item: Item| db.put_item().table_name(&table).set_item(Some(item)).send();

    // Items over 400 KB, written whole or grown by an update.
    let e = refusal(put(with(key("big", "META"), "body", s(&"x".repeat(410 * 1024)))).await);
    assert!(e.contains("ValidationException") && e.contains("size"), "{e}");
    put(with(key("grows", "META"), "body", s(&"x".repeat(300 * 1024)))).await.expect("300 KB fits");
    let grow = db
        .update_item()
        .table_name(&table)
        .set_key(Some(key("grows", "META")))
        .update_expression("SET more = :m")
        .expression_attribute_values(":m", s(&"y".repeat(150 * 1024)))
        .send()
        .await;
    let e = refusal(grow);
    assert!(e.contains("ValidationException") && e.contains("size"), "{e}");

    // A set holding one member twice (numbers by value).
    let e = refusal(
        put(with(key("set", "META"), "tags", AttributeValue::Ss(vec!["a".into(), "a".into()]))).await,
    );
    assert!(e.contains("ValidationException") && e.contains("duplicates"), "{e}");
    let e =
        refusal(put(with(key("set", "META"), "n", AttributeValue::Ns(vec!["1".into(), "1.0".into()]))).await);
    assert!(e.contains("duplicates"), "{e}");
    let e = refusal(
        db.update_item()
            .table_name(&table)
            .set_key(Some(key("set", "META")))
            .update_expression("ADD marks :m")
            .expression_attribute_values(":m", AttributeValue::Ss(vec!["u1".into(), "u1".into()]))
            .send()
            .await,
    );
    assert!(e.contains("duplicates"), "an ADD of a set with a repeated member: {e}");

    // BatchWriteItem: at most 25 requests, no key twice (even with other attributes).
    let write = |items: Vec<Item>| {
        let requests: Vec<WriteRequest> = items
            .into_iter()
            .map(|i| {
                WriteRequest::builder()
                    .put_request(PutRequest::builder().set_item(Some(i)).build().unwrap())
                    .build()
            })
            .collect();
        db.batch_write_item().request_items(&table, requests).send()
    };
    let e = refusal(write((0..26).map(|i| key(&format!("b{i}"), "META")).collect()).await);
    assert!(e.contains("ValidationException") && e.contains("25"), "{e}");
    write((0..25).map(|i| key(&format!("b{i}"), "META")).collect()).await.expect("25 requests");
    let e = refusal(
        write(vec![with(key("twice", "META"), "v", s("1")), with(key("twice", "META"), "v", s("2"))]).await,
    );
    assert!(e.contains("duplicates"), "{e}");

    // BatchGetItem: at most 100 keys.
    let keys: Vec<Item> = (0..101).map(|i| key(&format!("g{i}"), "META")).collect();
    let e = refusal(
        db.batch_get_item()
            .request_items(&table, KeysAndAttributes::builder().set_keys(Some(keys)).build().unwrap())
            .send()
            .await,
    );
    assert!(e.contains("ValidationException") && e.contains("100"), "{e}");

    // TransactWriteItems: at most 100 actions, never two on one item.
    let update = |pk: &str| {
        TransactWriteItem::builder()
            .update(
                Update::builder()
                    .table_name(&table)
                    .set_key(Some(key(pk, "META")))
                    .update_expression("SET n = :one")
                    .expression_attribute_values(":one", AttributeValue::N("1".into()))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let e = refusal(
        db.transact_write_items()
            .set_transact_items(Some((0..101).map(|i| update(&format!("t{i}"))).collect()))
            .send()
            .await,
    );
    assert!(e.contains("ValidationException") && e.contains("100"), "{e}");
    let e = refusal(
        db.transact_write_items().transact_items(update("same")).transact_items(update("same")).send().await,
    );
    assert!(e.contains("multiple operations on one item"), "{e}");

    // An index key attribute of another type than its definition (pendingShard is S).
    let e = refusal(put(with(key("typed", "META"), "pendingShard", AttributeValue::N("3".into()))).await);
    assert!(e.contains("ValidationException") && e.contains("Type mismatch"), "{e}");

    // An ExclusiveStartKey from another partition, or not a key of the index read.
    let query = |partition: &str, start: Item| {
        db.query()
            .table_name(&table)
            .index_name("pending")
            .key_condition_expression("pendingShard = :p")
            .expression_attribute_values(":p", s(partition))
            .set_exclusive_start_key(Some(start))
            .send()
    };
    let from_other =
        with(with(key("q", "META"), "pendingShard", s("P#2")), "dueMs", AttributeValue::N("1".into()));
    let e = refusal(query("P#1", from_other.clone()).await);
    assert!(e.contains("ValidationException") && e.contains("starting key"), "another partition: {e}");
    let e = refusal(query("P#2", key("q", "META")).await);
    assert!(e.contains("starting key"), "not a key of the index: {e}");
    query("P#2", from_other).await.expect("a start key of this query");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_limits_are_enforced() {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let url = provisioned.queue_urls["FanoutQueue"].clone();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize)
        .send()
        .await
        .expect("queue attributes");
    let max: usize = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize))
        .and_then(|v| v.parse().ok())
        .expect("MaximumMessageSize");
    assert!((1024..=1_048_576).contains(&max), "{max}");

    sqs.send_message()
        .queue_url(&url)
        .message_body("x".repeat(max))
        .send()
        .await
        .expect("the largest message");
    let e = refusal(sqs.send_message().queue_url(&url).message_body("x".repeat(max + 1)).send().await);
    assert!(e.contains("InvalidParameterValue") || e.contains("shorter"), "{e}");

    let entry = |i: usize, len: usize| {
        SendMessageBatchRequestEntry::builder()
            .id(format!("m{i}"))
            .message_body("y".repeat(len))
            .build()
            .unwrap()
    };
    let e = refusal(
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some((0..11).map(|i| entry(i, 10)).collect()))
            .send()
            .await,
    );
    assert!(e.contains("TooManyEntriesInBatchRequest"), "{e}");
    // The whole batch is at most 1 MiB, whatever each message's limit.
    let per = (1_048_576 / 5).min(max);
    let e = refusal(
        sqs.send_message_batch()
            .queue_url(&url)
            .set_entries(Some((0..6).map(|i| entry(i, per)).collect()))
            .send()
            .await,
    );
    assert!(e.contains("BatchRequestTooLong"), "{e}");
}

/// SES's sending rate and daily quota, armed on this test's configuration set: over the rate
/// SendEmail answers TooManyRequestsException, over the quota LimitExceededException, and the
/// mailer reports both as transient (try again later), never as a rejected address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_sending_limits_are_enforced() {
    use shared::ports::{Mailer, OutgoingEmail, SendError};
    let (sdk, _, config) = tests::provision_moto().await;
    let set = config.ses_configuration_set.clone().expect("the template's configuration set");
    let from = config.email_from.clone().expect("EMAIL_FROM");
    tests::arm_ses_limits(&set, 3, 5).await;
    // Without the SDK's own retries (in the functions it retries throttling itself, up to 3
    // tries with backoff), so that each answer is seen.
    let client = aws_sdk_sesv2::Client::from_conf(
        aws_sdk_sesv2::config::Builder::from(&sdk)
            .retry_config(aws_sdk_sesv2::config::retry::RetryConfig::disabled())
            .build(),
    );
    let mailer = shared::adapters::ses::SesMailer::new(client, from, Some(set));
    let email = |i: usize| OutgoingEmail {
        to: format!("user{i}@demo.example"),
        subject: "limits".into(),
        html: "<p>hi</p>".into(),
        text: "hi".into(),
        headers: Vec::new(),
        notification: None,
    };
    let mut outcomes = Vec::new();
    for i in 0..4 {
        outcomes.push(mailer.send(&email(i)).await);
    }
    assert!(outcomes[..3].iter().all(Result::is_ok), "{outcomes:?}");
    let e = format!("{:?}", outcomes[3]);
    assert!(matches!(outcomes[3], Err(SendError::Transient(_))) && e.contains("TooManyRequests"), "{e}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(mailer.send(&email(4)).await.is_ok() && mailer.send(&email(5)).await.is_ok(), "the rate refills");
    let over = mailer.send(&email(6)).await;
    let e = format!("{over:?}");
    assert!(
        matches!(over, Err(SendError::Transient(_))) && e.contains("LimitExceeded"),
        "the daily quota: {e}"
    );
}

/// DynamoDB cancels transactions unasked (a conflict with another transaction on one of its
/// items, or throttling): scripts/test runs the whole suite with moto-serial cancelling a share
/// of them at random, so every transaction of the service meets it. Four hundred transactions
/// here, each on an item of its own, without retries: some are cancelled as DynamoDB cancels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_cancelled_unasked_across_the_suite() {
    let rate: f64 = std::env::var("MOTO_SERIAL_TRANSACTION_CANCELS")
        .ok()
        .and_then(|r| r.parse().ok())
        .expect("MOTO_SERIAL_TRANSACTION_CANCELS: scripts/test runs moto-serial cancelling transactions");
    assert!(rate > 0.0, "the suite runs with transactions cancelled");
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let conf = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .build();
    let db = aws_sdk_dynamodb::Client::from_conf(conf);
    let table = provisioned.tables["NotificationsTable"].clone();
    let mut reasons = std::collections::BTreeMap::new();
    for i in 0..400 {
        let put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&table)
            .set_item(Some(key(&format!("tx{i}"), "META")))
            .build()
            .unwrap();
        let result = db
            .transact_write_items()
            .transact_items(aws_sdk_dynamodb::types::TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        if let Err(e) = result {
            let e = e.into_service_error();
            let code = match &e {
                aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
                    t.cancellation_reasons().iter().find_map(|r| r.code().filter(|c| *c != "None")).unwrap_or("?").to_string()
                }
                other => panic!("not a cancellation: {other:?}"),
            };
            *reasons.entry(code).or_insert(0) += 1;
        }
    }
    let cancelled: u32 = reasons.values().sum();
    assert!(cancelled > 0, "none of 400 cancelled at rate {rate}");
    assert!(reasons.keys().all(|c| c == "TransactionConflict" || c == "ThrottlingError"), "{reasons:?}");
}

/// Chaos (`tests::arm_chaos`) fails requests as AWS does, and what it says was not done was not
/// done: UnprocessedItems were not written (the rest were), UnprocessedKeys were not answered,
/// failed SendMessageBatch entries are not on the queue (the rest are), a "lost" answer's write
/// did happen, a throttled one did not. The harness's own identity is spared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_fails_requests_as_aws_does() {
    use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
    let (admin_sdk, provisioned, _) = tests::provision_moto().await;
    let prefix = tests::moto_prefix(&provisioned);
    // The functions' identities (delivery writes inbox entries, fan-out queues chunks), no SDK
    // retries: each answer as it came.
    let as_function = |logical_id| {
        tests::sdk_as(&admin_sdk, logical_id)
            .to_builder()
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build()
    };
    let db = aws_sdk_dynamodb::Client::new(&as_function("DeliverFunction"));
    let sqs = aws_sdk_sqs::Client::new(&as_function("FanoutFunction"));
    let admin = aws_sdk_dynamodb::Client::new(&admin_sdk);
    let table = provisioned.tables["InboxTable"].clone();
    let queue = provisioned.queue_urls["DeliveryQueue"].clone();
    tests::arm_chaos(&prefix, 7, 1.0).await;

    let exists = |pk: String| {
        let (admin, table) = (admin.clone(), table.clone());
        async move {
            let got = admin.get_item().table_name(&table).set_key(Some(key(&pk, "X"))).send().await;
            got.expect("the harness is spared").item.is_some()
        }
    };
    let (mut unprocessed, mut lost, mut refused) = (false, false, false);
    for round in 0..60 {
        let pks: Vec<String> = (0..5).map(|i| format!("chaos-{round}-{i}")).collect();
        let requests: Vec<WriteRequest> = pks
            .iter()
            .map(|pk| {
                let put = PutRequest::builder().set_item(Some(key(pk, "X"))).build().unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let answer = db.batch_write_item().request_items(&table, requests).send().await;
        let mut written = Vec::new();
        for pk in &pks {
            written.push(exists(pk.clone()).await);
        }
        match answer {
            Ok(out) => {
                let left: Vec<String> = out
                    .unprocessed_items
                    .and_then(|mut m| m.remove(&table))
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|w| w.put_request.as_ref()?.item.get("pk")?.as_s().ok().cloned())
                    .collect();
                assert!(!left.is_empty(), "chaos at rate 1 always fails a request");
                for (pk, written) in pks.iter().zip(&written) {
                    assert_eq!(*written, !left.contains(pk), "{pk}: unprocessed means not written");
                }
                unprocessed = true;
            }
            Err(e) => {
                let code = e.as_service_error().and_then(|s| s.meta().code()).unwrap_or("").to_string();
                let message = format!("{:?}", e);
                if message.contains("answer lost") {
                    assert!(written.iter().all(|w| *w), "a lost answer's write happened");
                    lost = true;
                } else {
                    assert!(!code.is_empty(), "{message}");
                    assert!(written.iter().all(|w| !w), "{code}: a refused write did not happen");
                    refused = true;
                }
            }
        }
        if unprocessed && lost && refused {
            break;
        }
    }
    assert!(unprocessed && lost && refused, "each kind seen: {unprocessed} {lost} {refused}");

    // Failed SendMessageBatch entries are not queued; the others are.
    let admin_sqs = aws_sdk_sqs::Client::new(&admin_sdk);
    let mut failed_entries = false;
    for round in 0..60 {
        let entries: Vec<SendMessageBatchRequestEntry> = (0..5)
            .map(|i| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(format!("m{round}-{i}"))
                    .build()
                    .unwrap()
            })
            .collect();
        let answer = sqs.send_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await;
        let mut queued = Vec::new();
        loop {
            let got = admin_sqs
                .receive_message()
                .queue_url(&queue)
                .max_number_of_messages(10)
                .send()
                .await
                .unwrap();
            let messages = got.messages.unwrap_or_default();
            if messages.is_empty() {
                break;
            }
            for m in messages {
                queued.push(m.body.unwrap_or_default());
                admin_sqs
                    .delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle.unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
        let Ok(out) = answer else { continue };
        queued.sort();
        let mut sent: Vec<String> = out.successful.iter().map(|s| format!("m{round}-{}", s.id)).collect();
        sent.sort();
        assert_eq!(queued, sent, "exactly the successful entries are queued");
        assert!(out.failed.iter().all(|f| !f.sender_fault), "failed entries are the service's fault");
        failed_entries = true;
        break;
    }
    assert!(failed_entries, "a batch came back with failed entries");
    tests::arm_chaos(&prefix, 7, 0.0).await;
}

/// Chaos on SES and SNS fails as they fail, and what it says was not done was not done: an email
/// or a push refused (throttled, 5xx, refused for good) was not sent; one whose answer was lost
/// was; a refusal quotes the address or the token, as AWS's messages do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_fails_emails_and_pushes_as_ses_and_sns_do() {
    use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
    let (admin_sdk, provisioned, config) = tests::provision_moto().await;
    let prefix = tests::moto_prefix(&provisioned);
    let deliver = tests::sdk_as(&admin_sdk, "DeliverFunction")
        .to_builder()
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .build();
    let outbox = tests::outbox::Outbox::Moto { endpoint: tests::moto_endpoint() };
    let ses = aws_sdk_sesv2::Client::new(&deliver);
    let from = config.email_from.clone().expect("a sender");
    let text = |t: &str| Content::builder().data(t).build().unwrap();
    // An endpoint of the test's application, made by the harness (spared).
    let (_, application) = config.push_applications.first().cloned().expect("an application");
    let token = format!("chaos-token-{prefix}{}", "x".repeat(120));
    let endpoint = aws_sdk_sns::Client::new(&admin_sdk)
        .create_platform_endpoint()
        .platform_application_arn(&application)
        .token(&token)
        .send()
        .await
        .expect("an endpoint")
        .endpoint_arn
        .expect("its ARN");
    // An endpoint is its application's: the same token under another application is another
    // endpoint (as AWS has it; moto would answer the first one).
    let (_, other) = config.push_applications.get(1).cloned().expect("a second application");
    let elsewhere = aws_sdk_sns::Client::new(&admin_sdk)
        .create_platform_endpoint()
        .platform_application_arn(&other)
        .token(&token)
        .send()
        .await
        .expect("an endpoint")
        .endpoint_arn
        .expect("its ARN");
    assert_ne!(elsewhere, endpoint, "one endpoint per application");
    assert!(elsewhere.contains(other.rsplit('/').next().unwrap()), "{elsewhere} is under {other}");
    let sns = aws_sdk_sns::Client::new(&deliver);
    tests::arm_chaos(&prefix, 11, 1.0).await;
    let mut seen: std::collections::BTreeSet<String> = Default::default();
    for round in 0..120 {
        let subject = format!("chaos {prefix} {round}");
        let to = format!("r{round}@example.com");
        let message =
            Message::builder().subject(text(&subject)).body(Body::builder().text(text("x")).build()).build();
        let answer = ses
            .send_email()
            .from_email_address(&from)
            .destination(Destination::builder().to_addresses(&to).build())
            .content(EmailContent::builder().simple(message).build())
            .set_configuration_set_name(config.ses_configuration_set.clone())
            .send()
            .await;
        let sent = outbox.emails(&subject).await.len();
        let e = answer.expect_err("chaos at rate 1 always fails a request");
        let code = e.as_service_error().and_then(|s| s.meta().code()).unwrap_or("").to_string();
        let text = format!("{e:?}");
        let kind = if text.contains("answer lost") {
            assert_eq!(sent, 1, "a lost answer's email was sent");
            "SendEmail:lost"
        } else {
            assert_eq!(sent, 0, "{code}: a refused email was not sent");
            match code.as_str() {
                "TooManyRequestsException" => "SendEmail:throttle",
                "InternalFailure" => "SendEmail:internal",
                "MessageRejected" => {
                    assert!(text.contains(&to), "SES's refusal quotes the address: {text}");
                    "SendEmail:refused"
                }
                other => panic!("SES answered {other}: {text}"),
            }
        };
        seen.insert(kind.into());

        let before = outbox.pushes(std::slice::from_ref(&endpoint)).await.len();
        let answer = sns.publish().target_arn(&endpoint).message(format!("m{round}")).send().await;
        let pushed = outbox.pushes(std::slice::from_ref(&endpoint)).await.len() - before;
        let e = answer.expect_err("chaos at rate 1 always fails a request");
        let code = e.as_service_error().and_then(|s| s.meta().code()).unwrap_or("").to_string();
        let text = format!("{e:?}");
        let kind = if text.contains("answer lost") {
            assert_eq!(pushed, 1, "a lost answer's push was sent");
            "Publish:lost"
        } else {
            assert_eq!(pushed, 0, "{code}: a refused push was not sent");
            match code.as_str() {
                "Throttled" => "Publish:throttle",
                "InternalError" => "Publish:internal",
                "InvalidParameter" => {
                    assert!(text.contains(&token), "SNS's refusal quotes the token: {text}");
                    "Publish:refused"
                }
                other => panic!("SNS answered {other}: {text}"),
            }
        };
        seen.insert(kind.into());
        if seen.len() == 8 {
            break;
        }
    }
    tests::arm_chaos(&prefix, 11, 0.0).await;
    assert_eq!(seen.len(), 8, "every kind on both: {seen:?}");
}

/// The write units the meter billed under `prefix` so far.
async fn billed(prefix: &str) -> f64 {
    tests::metered(prefix).await["write_units"].as_f64().expect("write units")
}

/// Every write is billed as DynamoDB bills it ("DynamoDB read and write operations", "Item
/// sizes"): the item's size (names and values; numbers by significant digits) rounded up per
/// 1 KB, at least one unit (a binary value by its bytes); an overwrite or update at the larger of before and after; a write
/// whose condition failed still billed; a transaction twice; every index holding the item
/// written again at its projection's size, and not when nothing it projects changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_writes_are_billed_as_aws_bills_them() {
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let prefix = tests::moto_prefix(&provisioned);
    tests::arm_meter(&prefix, 0.0, 0.0).await;
    let inbox = provisioned.tables["InboxTable"].clone();
    let put = |item: Item| db.put_item().table_name(&inbox).set_item(Some(item)).send();
    let mut total = 0.0;
    let mut expect = |units: f64, what: &str, now: f64| {
        total += units;
        assert_eq!(now, total, "{what}: {units} more write units");
    };
    let body = |n: usize| s(&"x".repeat(n));

    // key("p1", "s1") is 8 bytes, "body" 4 more: 1,012 bytes of body make 1,024 bytes.
    put(with(key("p1", "s1"), "body", body(1012))).await.unwrap();
    expect(1.0, "1,024 bytes", billed(&prefix).await);
    // A number is 1 byte per two significant digits and 1 more: "n" = 1234567 is 1 + 5 bytes.
    put(with(with(key("p2", "s1"), "body", body(1006)), "n", AttributeValue::N("1234567".into())))
        .await
        .unwrap();
    expect(1.0, "1,024 bytes with a number", billed(&prefix).await);
    put(with(with(key("p3", "s1"), "body", body(1006)), "n", AttributeValue::N("12345678".into())))
        .await
        .unwrap();
    expect(1.0, "12345678, eight digits, is 5 bytes too: 1,024", billed(&prefix).await);
    put(with(with(key("p4", "s1"), "body", body(1006)), "n", AttributeValue::N("123456789".into())))
        .await
        .unwrap();
    expect(2.0, "123456789 is 6 bytes: 1,025 bytes", billed(&prefix).await);
    // An overwrite, at the larger of before (1,024) and after (2,100).
    put(with(key("p1", "s1"), "body", body(2088))).await.unwrap();
    expect(3.0, "overwrite to 2,100 bytes", billed(&prefix).await);
    // An update that shrinks it, at the item before.
    db.update_item()
        .table_name(&inbox)
        .set_key(Some(key("p1", "s1")))
        .update_expression("SET body = :b")
        .expression_attribute_values(":b", s("short"))
        .send()
        .await
        .unwrap();
    expect(3.0, "update from 2,100 bytes", billed(&prefix).await);
    // A write whose condition fails, at the larger of what it found and would have written.
    let refused = db
        .put_item()
        .table_name(&inbox)
        .set_item(Some(with(key("p1", "s1"), "body", body(3000))))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await;
    assert!(refusal(refused).contains("ConditionalCheckFailed"));
    expect(3.0, "a failed condition, 3,012 bytes it would have written", billed(&prefix).await);
    // A delete, at the item deleted (17 bytes).
    db.delete_item().table_name(&inbox).set_key(Some(key("p1", "s1"))).send().await.unwrap();
    expect(1.0, "delete", billed(&prefix).await);
    // A transaction of two 1,500-byte puts: twice 2 units each.
    let tx_put = |pk: &str| {
        TransactWriteItem::builder()
            .put(
                aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&inbox)
                    .set_item(Some(with(key(pk, "s1"), "body", body(1488))))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    db.transact_write_items().transact_items(tx_put("t1")).transact_items(tx_put("t2")).send().await.unwrap();
    expect(8.0, "a transaction of two 2-unit puts", billed(&prefix).await);
    // A batch: each request its own write.
    let requests: Vec<WriteRequest> = ["b1", "b2", "b3"]
        .iter()
        .map(|pk| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(key(pk, "s1"))).build().unwrap())
                .build()
        })
        .collect();
    db.batch_write_item().request_items(&inbox, requests).send().await.unwrap();
    expect(3.0, "a batch of three small puts", billed(&prefix).await);
    // A binary attribute is its bytes (a chunk's kept people: 16 a person): 8 + "people" (6) +
    // 1,010 bytes is 1,024, one unit; overwritten with 1,011 bytes, the larger is 1,025: two.
    let people = |n: usize| AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(vec![7u8; n]));
    put(with(key("k1", "s1"), "people", people(1010))).await.unwrap();
    expect(1.0, "1,024 bytes with a binary", billed(&prefix).await);
    put(with(key("k1", "s1"), "people", people(1011))).await.unwrap();
    expect(2.0, "a binary overwritten at 1,025 bytes", billed(&prefix).await);

    // Indexes: the notifications table's history index projects ALL, pending KEYS_ONLY.
    let notifications = provisioned.tables["NotificationsTable"].clone();
    // 8 + histPk "h" (7) + scheduleId 1 (12) + body (4 + 1,000) = 1,031 bytes: 2 units, twice.
    let listed = with(
        with(with(key("n1", "META"), "histPk", s("h")), "scheduleId", AttributeValue::N("1".into())),
        "body",
        body(1000),
    );
    db.put_item().table_name(&notifications).set_item(Some(listed)).send().await.unwrap();
    expect(4.0, "an item and its copy in an ALL index", billed(&prefix).await);
    // In a KEYS_ONLY index: its copy is pk, sk, pendingShard, dueMs (under 1 KB).
    let pending = with(
        with(with(key("n2", "META"), "pendingShard", s("0")), "dueMs", AttributeValue::N("5".into())),
        "body",
        body(1000),
    );
    db.put_item().table_name(&notifications).set_item(Some(pending)).send().await.unwrap();
    expect(3.0, "an item (2) and its keys in a KEYS_ONLY index (1)", billed(&prefix).await);
    let touch = |pk: &'static str| {
        db.update_item()
            .table_name(&notifications)
            .set_key(Some(key(pk, "META")))
            .update_expression("SET body = :b")
            .expression_attribute_values(":b", body(900))
            .send()
    };
    touch("n2").await.unwrap();
    expect(2.0, "a change the KEYS_ONLY index does not project", billed(&prefix).await);
    touch("n1").await.unwrap();
    expect(4.0, "a change the ALL index projects", billed(&prefix).await);
    let report = tests::metered(&prefix).await;
    let index = |name: &str| {
        let table = &notifications[prefix.len()..];
        report["tables"][format!("{table}/{name}")]["write_units"].as_f64()
    };
    assert_eq!((index("history"), index("pending")), (Some(4.0), Some(1.0)), "{report}");
}

/// Over a partition's or the table's throughput, DynamoDB refuses a request and does nothing
/// of it: ProvisionedThroughputExceededException for a hot partition key, ThrottlingException
/// for the table, the throttled requests of a batch back as UnprocessedItems, a transaction
/// cancelled with ThrottlingError. (Scaled: 1,000 x 0.0001 = one write unit every 10 s per key.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttles_a_hot_partition_and_a_busy_table() {
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let sdk = sdk.to_builder().retry_config(aws_config::retry::RetryConfig::disabled()).build();
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let prefix = tests::moto_prefix(&provisioned);
    let inbox = provisioned.tables["InboxTable"].clone();
    let put = |item: Item| db.put_item().table_name(&inbox).set_item(Some(item)).send();
    // Writes only: this test reads back what was written (reads: the next test).
    tests::arm_meter_with_reads(&prefix, 0.0001, 10_000_000.0, 0.0, 0.0).await;

    put(key("hot", "a")).await.expect("the key's one unit");
    let e = refusal(put(key("hot", "b")).await);
    assert!(e.contains("ProvisionedThroughputExceededException"), "{e}");
    let get = |pk: &str, sk: &str| db.get_item().table_name(&inbox).set_key(Some(key(pk, sk))).send();
    assert!(get("hot", "b").await.unwrap().item.is_none(), "a throttled write does nothing");

    let requests: Vec<WriteRequest> = [("hot", "c"), ("cold1", "x"), ("cold2", "x")]
        .iter()
        .map(|(pk, sk)| {
            WriteRequest::builder()
                .put_request(PutRequest::builder().set_item(Some(key(pk, sk))).build().unwrap())
                .build()
        })
        .collect();
    let answer = db.batch_write_item().request_items(&inbox, requests).send().await.unwrap();
    let unprocessed = answer.unprocessed_items.unwrap_or_default();
    let left: Vec<_> =
        unprocessed[&inbox].iter().map(|r| r.put_request.as_ref().unwrap().item["pk"].clone()).collect();
    assert_eq!(left, vec![s("hot")], "only the hot key's request comes back");
    assert!(
        get("cold1", "x").await.unwrap().item.is_some() && get("cold2", "x").await.unwrap().item.is_some()
    );
    assert!(get("hot", "c").await.unwrap().item.is_none());

    let tx_put = |pk: &str| {
        TransactWriteItem::builder()
            .put(
                aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&inbox)
                    .set_item(Some(key(pk, "t")))
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let e = refusal(
        db.transact_write_items().transact_items(tx_put("hot")).transact_items(tx_put("cold3")).send().await,
    );
    assert!(e.contains("TransactionCanceledException") && e.contains("ThrottlingError"), "{e}");
    assert!(get("cold3", "t").await.unwrap().item.is_none(), "nothing of a cancelled transaction");

    // The table: 10,000 x 0.0001 = one unit a second, whatever the key.
    tests::arm_meter_with_reads(&prefix, 0.0001, 10_000.0, 0.0, 0.0).await;
    put(key("spread1", "x")).await.expect("the table's one unit");
    let e = refusal(put(key("spread2", "x")).await);
    assert!(e.contains("ThrottlingException"), "{e}");
    let report = tests::metered(&prefix).await;
    assert_eq!(report["throttled"]["PutItem"].as_u64(), Some(1), "{report}");
}

/// Reads too: over a partition's read throughput (3,000 units a second) or its table's or
/// index's, DynamoDB refuses a GetItem or a Query with ProvisionedThroughputExceededException
/// (ThrottlingException for the table), and answers a BatchGetItem's throttled keys as
/// UnprocessedKeys, the other keys' items served (the exception when none was). (Scaled: 3,000 x
/// 0.00001 = a read unit every 33 s per key, a burst of one unit.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_throttles_reads_of_a_hot_partition_and_a_busy_table() {
    let (sdk, provisioned, _) = tests::provision_moto().await;
    let sdk = sdk.to_builder().retry_config(aws_config::retry::RetryConfig::disabled()).build();
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let prefix = tests::moto_prefix(&provisioned);
    let inbox = provisioned.tables["InboxTable"].clone();
    for (pk, sk) in [("hot", "a"), ("cold1", "x"), ("cold2", "x"), ("spread1", "x"), ("spread2", "x")] {
        db.put_item().table_name(&inbox).set_item(Some(key(pk, sk))).send().await.unwrap();
    }
    tests::arm_meter_with_reads(&prefix, 0.0, 0.0, 0.00001, 10_000_000.0).await;
    let get = |pk: &str, sk: &str| {
        db.get_item().table_name(&inbox).set_key(Some(key(pk, sk))).consistent_read(true).send()
    };
    assert!(get("hot", "a").await.expect("the key's one unit").item.is_some());
    let e = refusal(get("hot", "a").await);
    assert!(e.contains("ProvisionedThroughputExceededException"), "{e}");
    let query = |pk: &str| {
        db.query()
            .table_name(&inbox)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", "pk")
            .expression_attribute_values(":p", s(pk))
            .send()
    };
    let e = refusal(query("hot").await);
    assert!(e.contains("ProvisionedThroughputExceededException"), "a Query of the hot key: {e}");
    assert_eq!(query("cold1").await.expect("another key's query").items.unwrap_or_default().len(), 1);

    let batch = |keys: Vec<Item>| {
        db.batch_get_item()
            .request_items(&inbox, KeysAndAttributes::builder().set_keys(Some(keys)).build().unwrap())
            .send()
    };
    let answer = batch(vec![key("hot", "a"), key("cold2", "x")]).await.expect("a batch with a key served");
    let served: Vec<_> =
        answer.responses.unwrap_or_default()[&inbox].iter().map(|i| i["pk"].clone()).collect();
    assert_eq!(served, vec![s("cold2")], "the cold key's item served");
    let unprocessed = answer.unprocessed_keys.unwrap_or_default();
    assert_eq!(unprocessed[&inbox].keys, vec![key("hot", "a")], "the hot key comes back unprocessed");
    let e = refusal(batch(vec![key("hot", "a")]).await);
    assert!(e.contains("ProvisionedThroughputExceededException"), "none served: {e}");

    // An index's partition: the history index's key, as a Query names it.
    let notifications = provisioned.tables["NotificationsTable"].clone();
    let history = || {
        db.query()
            .table_name(&notifications)
            .index_name("history")
            .key_condition_expression("histPk = :h")
            .expression_attribute_values(":h", s("C#3#GT"))
            .send()
    };
    history().await.expect("the index key's first read");
    let e = refusal(history().await);
    assert!(e.contains("ProvisionedThroughputExceededException"), "the index key: {e}");

    // The table: 10,000 x 0.00001 = a read unit every 10 s, whatever the key.
    tests::arm_meter_with_reads(&prefix, 0.0, 0.0, 0.00001, 10_000.0).await;
    get("spread1", "x").await.expect("the table's one unit");
    let e = refusal(get("spread2", "x").await);
    assert!(e.contains("ThrottlingException"), "{e}");
    let report = tests::metered(&prefix).await;
    assert_eq!(report["throttled"]["GetItem"].as_u64(), Some(1), "{report}");
}
