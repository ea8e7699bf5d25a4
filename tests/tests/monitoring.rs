//! What an operator watches (issue #29): the template alarms on every dead-letter queue, every
//! consumed queue's oldest message, every function's errors and throttles, every table's
//! throttling and SES's reputation, all to one topic; its alarms and dashboard name the metrics
//! the code records with exactly their dimensions; and the code records them, once each, as
//! lines CloudWatch reads as embedded metric format.

use std::collections::BTreeSet;

use local::provision::{read_template, resources_of_type};
use serde_json::{Value as Json, json};
use serde_yaml_ng::Value;
use shared::metrics::Metric;

fn template() -> Value {
    read_template(&tests::template_path()).unwrap()
}

/// A value as the template writes it (`!Ref X`, `!GetAtt Q.QueueName`).
fn text(v: &Value) -> String {
    serde_yaml_ng::to_string(v).unwrap()
}

/// Logical ids of the resources of one type.
fn ids(t: &Value, kind: &str) -> BTreeSet<String> {
    resources_of_type(t, kind).into_iter().map(|(id, _)| id).collect()
}

fn alarms(t: &Value) -> Vec<(String, Value)> {
    resources_of_type(t, "AWS::CloudWatch::Alarm").into_iter().map(|(id, r)| (id, r.clone())).collect()
}

/// The alarms on `metric` of `namespace` whose dimensions mention `needle`.
fn alarms_on(t: &Value, namespace: &str, metric: &str, needle: &str) -> Vec<String> {
    alarms(t)
        .into_iter()
        .filter(|(_, a)| {
            let p = &a["Properties"];
            let direct =
                p["Namespace"].as_str() == Some(namespace) && p["MetricName"].as_str() == Some(metric);
            let stats = text(&p["Metrics"]);
            let math = stats.contains(&format!("Namespace: {namespace}")) && stats.contains(metric);
            (direct && text(&p["Dimensions"]).contains(needle)) || (math && stats.contains(needle))
        })
        .map(|(id, _)| id)
        .collect()
}

/// Dead-letter queues: those another queue's redrive policy, or the scheduler, sends to.
fn dead_letter_queues(t: &Value) -> BTreeSet<String> {
    let queues = ids(t, "AWS::SQS::Queue");
    let whole = text(&t["Resources"]);
    queues
        .iter()
        .filter(|q| {
            whole.contains(&format!("deadLetterTargetArn: !GetAtt {q}.Arn"))
                || whole.contains(&format!("Arn: !GetAtt {q}.Arn\n")) && q.contains("Scheduler")
        })
        .cloned()
        .collect()
}

/// The queues deliver consumes (its SQS event sources).
fn consumed_by_deliver(t: &Value) -> BTreeSet<String> {
    let events = &t["Resources"]["DeliverFunction"]["Properties"]["Events"];
    let Value::Mapping(events) = events else { panic!("deliver's events") };
    ids(t, "AWS::SQS::Queue")
        .into_iter()
        .filter(|q| {
            events.values().any(|e| {
                e["Type"].as_str() == Some("SQS")
                    && text(&e["Properties"]["Queue"]).contains(&format!("{q}.Arn"))
            })
        })
        .collect()
}

#[test]
fn every_dead_letter_queue_has_an_alarm() {
    let t = template();
    let dead = dead_letter_queues(&t);
    assert_eq!(dead.len(), 6, "the template's dead-letter queues: {dead:?}");
    let consumed = consumed_by_deliver(&t);
    for q in &dead {
        if consumed.contains(q) {
            // Settled by deliver as it receives them: counted as received (`DeadLetters`), and
            // watched by age should deliver stop consuming them.
            let found = alarms_on(&t, "AWS/SQS", "ApproximateAgeOfOldestMessage", &format!("{q}.QueueName"));
            assert_eq!(found.len(), 1, "{q}: its age alarm, {found:?}");
            continue;
        }
        let found = alarms_on(&t, "AWS/SQS", "ApproximateNumberOfMessagesVisible", &format!("{q}.QueueName"));
        assert!(!found.is_empty(), "{q}: no alarm on its messages");
    }
    // The dead-letter queues deliver consumes: an alarm per `Queue` value its records count as.
    let settled: BTreeSet<&String> = dead.intersection(&consumed).collect();
    assert_eq!(settled.len(), 2, "deliver settles the delivery and email dead letters: {settled:?}");
    let kinds = [deliver::Kind::DeadChunk, deliver::Kind::DeadEmailJob];
    for queue in kinds.iter().filter_map(|k| k.dead_letter_queue()) {
        let found = alarms_on(&t, "Notifications", Metric::DeadLetters.name(), &format!("Value: {queue}\n"));
        assert_eq!(found.len(), 1, "DeadLetters {queue}: {found:?}");
    }
    let other = [deliver::Kind::Chunk, deliver::Kind::EmailJob, deliver::Kind::SesEvent, deliver::Kind::Hook];
    assert!(other.iter().all(|k| k.dead_letter_queue().is_none()));
}

/// Every consumed queue's oldest message is watched, above its visibility timeout (a single
/// receive that failed is no page).
#[test]
fn every_consumed_queue_has_an_alarm_on_its_oldest_message() {
    let t = template();
    let dead = dead_letter_queues(&t);
    for q in ids(&t, "AWS::SQS::Queue").difference(&dead) {
        let found = alarms_on(&t, "AWS/SQS", "ApproximateAgeOfOldestMessage", &format!("{q}.QueueName"));
        assert_eq!(found.len(), 1, "{q}: {found:?}");
    }
    for (id, a) in alarms(&t) {
        let p = &a["Properties"];
        if p["MetricName"].as_str() != Some("ApproximateAgeOfOldestMessage") {
            continue;
        }
        let dims = text(&p["Dimensions"]);
        let queue = ids(&t, "AWS::SQS::Queue")
            .into_iter()
            .find(|q| dims.contains(&format!("{q}.QueueName")))
            .unwrap_or_else(|| panic!("{id}: names a queue"));
        let visibility =
            t["Resources"][queue.as_str()]["Properties"]["VisibilityTimeout"].as_f64().unwrap_or(30.0);
        let threshold = p["Threshold"].as_f64().unwrap();
        assert!(
            threshold > visibility,
            "{id}: {threshold} s is within {queue}'s visibility timeout ({visibility} s)"
        );
    }
}

#[test]
fn every_function_has_error_and_throttle_alarms_and_every_table_a_throttling_one() {
    let t = template();
    let functions = ids(&t, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 7);
    for f in &functions {
        for metric in ["Errors", "Throttles"] {
            let found = alarms_on(&t, "AWS/Lambda", metric, &format!("!Ref {f}\n"));
            assert_eq!(found.len(), 1, "{f} {metric}: {found:?}");
        }
    }
    for (table, r) in resources_of_type(&t, "AWS::DynamoDB::Table") {
        for metric in ["ReadThrottleEvents", "WriteThrottleEvents"] {
            let found = alarms_on(&t, "AWS/DynamoDB", metric, &format!("!Ref {table}\n"));
            assert_eq!(found.len(), 1, "{table} {metric}: {found:?}");
            // An index's throttling is published under its own name too.
            let alarm = &t["Resources"][found[0].as_str()]["Properties"]["Metrics"];
            for index in r["Properties"]
                .get("GlobalSecondaryIndexes")
                .and_then(Value::as_sequence)
                .into_iter()
                .flatten()
            {
                let name = index["IndexName"].as_str().unwrap();
                let watched = alarm.as_sequence().unwrap().iter().any(|m| {
                    let m = text(m);
                    m.contains(metric)
                        && m.contains(&format!("Value: {name}\n"))
                        && m.contains(&format!("!Ref {table}\n"))
                });
                assert!(watched, "{table}'s index {name}: {metric} not in {}", found[0]);
                let expression = text(alarm);
                assert!(expression.contains("Expression:"), "{}", found[0]);
            }
        }
    }
    // Failed queue records (no Lambda error) and the HTTP API's 5xx (no Lambda error either).
    assert_eq!(alarms_on(&t, "Notifications", Metric::RecordsFailed.name(), "Stage").len(), 1);
    assert_eq!(alarms_on(&t, "AWS/ApiGateway", "5xx", "!Ref HttpApi").len(), 1);
    // SES's reputation, well before AWS reviews an account (5 % bounces, 0.1 % complaints).
    for (metric, review) in [("Reputation.BounceRate", 0.05), ("Reputation.ComplaintRate", 0.001)] {
        let (_, alarm) = alarms(&t)
            .into_iter()
            .find(|(_, a)| a["Properties"]["MetricName"].as_str() == Some(metric))
            .unwrap_or_else(|| panic!("an alarm on {metric}"));
        let threshold = alarm["Properties"]["Threshold"].as_f64().unwrap();
        assert!(threshold <= review / 2.0, "{metric} alarms at {threshold}, review at {review}");
    }
    assert_eq!(alarms_on(&t, "Notifications", Metric::RealtimePostFailures.name(), "Stage").len(), 1);
}

#[test]
fn every_alarm_goes_to_the_alarm_topic_both_ways() {
    let t = template();
    for (id, a) in alarms(&t) {
        for actions in ["AlarmActions", "OKActions"] {
            let listed = text(&a["Properties"][actions]);
            assert_eq!(
                listed.split_whitespace().collect::<Vec<_>>(),
                [
                    "-",
                    "!If",
                    "-",
                    "CreatesAlarmTopic",
                    "-",
                    "!Ref",
                    "AlarmTopic",
                    "-",
                    "!Ref",
                    "AlarmTopicArn"
                ],
                "{id}: {actions}"
            );
        }
        let name = text(&a["Properties"]["AlarmName"]);
        assert!(name.contains("${Stage}"), "{id}: its name is the stage's: {name}");
        let description = a["Properties"]["AlarmDescription"].as_str().unwrap_or_default();
        assert!(description.contains("docs/operations.md#"), "{id}: says where its runbook is");
    }
}

/// The metric lines carry no level: Lambda takes them as INFO, and drops them below the
/// application log level. Alarms on metrics would go quiet at WARN.
#[test]
fn metric_lines_pass_the_functions_log_level() {
    let t = template();
    let level = t["Globals"]["Function"]["LoggingConfig"]["ApplicationLogLevel"].as_str();
    assert!(matches!(level, Some("INFO" | "DEBUG" | "TRACE")), "{level:?}");
    for (id, f) in resources_of_type(&t, "AWS::Serverless::Function") {
        assert!(f["Properties"].get("LoggingConfig").is_none(), "{id}: its own log level");
    }
}

/// The metrics the alarms and the dashboard name are those the code records, with exactly
/// their dimensions (a metric renamed in `shared::metrics` fails here until the template
/// follows), and the dashboard shows every one.
#[test]
fn the_template_names_the_codes_metrics_with_their_dimensions() {
    let t = template();
    let known = |name: &str, dimensions: &[String], id: &str| {
        let metric = Metric::ALL
            .iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("{id}: {name} is not a metric the code records"));
        let expected: Vec<String> = metric.dimensions().iter().map(|d| d.to_string()).collect();
        assert_eq!(dimensions, expected.as_slice(), "{id}: {name}'s dimensions");
    };
    for (id, a) in alarms(&t) {
        let p = &a["Properties"];
        if p["Namespace"].as_str() == Some("Notifications") {
            let dims: Vec<String> = p["Dimensions"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|d| d["Name"].as_str().unwrap().to_string())
                .collect();
            known(p["MetricName"].as_str().unwrap(), &dims, &id);
        }
    }
    let body = text(&t["Resources"]["Dashboard"]["Properties"]["DashboardBody"]);
    let json_text = body.trim().trim_start_matches("!Sub").trim().trim_matches('\'');
    let dashboard: Json = serde_json::from_str(json_text).expect("the dashboard's body is JSON");
    let mut shown = BTreeSet::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for m in widget["properties"]["metrics"].as_array().unwrap() {
            let parts = m.as_array().unwrap();
            if parts[0] != "Notifications" {
                continue;
            }
            let name = parts[1].as_str().unwrap();
            let dims: Vec<String> =
                parts[2..].iter().filter_map(Json::as_str).step_by(2).map(str::to_string).collect();
            known(name, &dims, "Dashboard");
            shown.insert(name.to_string());
        }
    }
    let all: BTreeSet<String> = Metric::ALL.iter().map(|m| m.name().to_string()).collect();
    assert_eq!(shown, all, "the dashboard shows every metric");
    for d in shared::model::Origin::ALL {
        assert!(json_text.contains(&format!("\"Dialect\",\"{}\"", d.name())), "the dashboard shows {d:?}");
    }
}

/// A deploy loses nothing: every table, queue and secret keeps the name and key
/// `tests/stateful-resources.json` records (CloudFormation replaces a resource whose name or key
/// changes, empty), the tables that hold people's data are retained, and every earlier name the
/// file lists has its upgrade note in docs/deploy.md.
#[test]
fn stateful_resources_keep_their_names_and_keys() {
    let t = template();
    let recorded: Json = serde_json::from_str(
        &std::fs::read_to_string(tests::repo_root().join("tests/stateful-resources.json")).unwrap(),
    )
    .unwrap();
    let recorded = recorded["resources"].as_object().unwrap();
    let deploy = std::fs::read_to_string(tests::repo_root().join("docs/deploy.md")).unwrap();
    let name_of = |v: &Value| text(v).trim().trim_start_matches("!Sub").trim().trim_matches('"').to_string();
    let mut seen = BTreeSet::new();
    for kind in ["AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SecretsManager::Secret"] {
        for (id, r) in resources_of_type(&t, kind) {
            let p = &r["Properties"];
            let entry = recorded.get(&id).unwrap_or_else(|| {
                panic!("{id}: a new stateful resource: record it in tests/stateful-resources.json")
            });
            let name = p.get("TableName").or(p.get("QueueName")).or(p.get("Name")).expect("a name");
            assert_eq!(
                name_of(name),
                entry["name"].as_str().unwrap(),
                "{id}: its name changed (CloudFormation would replace it, empty): a migration and a note in \
                 docs/deploy.md, then tests/stateful-resources.json"
            );
            if kind == "AWS::DynamoDB::Table" {
                let key: Vec<String> = p["KeySchema"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|k| {
                        format!("{} {}", k["AttributeName"].as_str().unwrap(), k["KeyType"].as_str().unwrap())
                    })
                    .collect();
                assert_eq!(json!(key), entry["key"], "{id}: its key changed");
                let attributes: Vec<String> = p["AttributeDefinitions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|k| {
                        format!(
                            "{} {}",
                            k["AttributeName"].as_str().unwrap(),
                            k["AttributeType"].as_str().unwrap()
                        )
                    })
                    .collect();
                assert_eq!(json!(attributes), entry["attributes"], "{id}: a key attribute's type changed");
                let indexes: Vec<&str> = p
                    .get("GlobalSecondaryIndexes")
                    .and_then(Value::as_sequence)
                    .map(|s| s.iter().map(|i| i["IndexName"].as_str().unwrap()).collect())
                    .unwrap_or_default();
                assert_eq!(json!(indexes), entry["indexes"], "{id}: its indexes changed");
                assert!(
                    p.get("LocalSecondaryIndexes").is_none(),
                    "{id}: a local index cannot be removed in place"
                );
                if id != "ConnectionsTable" {
                    assert_eq!(
                        r["DeletionPolicy"].as_str(),
                        Some("Retain"),
                        "{id}: kept when the stack goes"
                    );
                    assert_eq!(r["UpdateReplacePolicy"].as_str(), Some("Retain"), "{id}: kept when replaced");
                }
            }
            for earlier in entry.get("earlier").and_then(Json::as_array).into_iter().flatten() {
                let said = earlier.as_str().unwrap().replace("${Stage}", "<stage>");
                assert!(deploy.contains(&format!("`{said}`")), "{id}: docs/deploy.md has no note on {said}");
            }
            seen.insert(id);
        }
    }
    let listed: BTreeSet<String> = recorded.keys().cloned().collect();
    assert_eq!(seen, listed, "tests/stateful-resources.json lists what the template has");
}

/// Deliver may delete only the registrations of retractions (`RECALL`/{id}) in the
/// Notifications table: moto does not evaluate IAM conditions, so the condition is pinned here.
#[test]
fn deliver_deletes_only_retraction_registrations() {
    let t = template();
    let policies = text(&t["Resources"]["DeliverFunction"]["Properties"]["Policies"]);
    let statements: Vec<&str> = policies.split("- Effect:").collect();
    let deletes: Vec<&&str> = statements
        .iter()
        .filter(|s| s.contains("dynamodb:DeleteItem") && s.contains("NotificationsTable"))
        .collect();
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert!(deletes[0].contains("dynamodb:LeadingKeys") && deletes[0].contains("RECALL"), "{}", deletes[0]);
    assert!(!deletes[0].contains("PutItem") && !deletes[0].contains("UpdateItem"), "{}", deletes[0]);
    assert_eq!(
        shared::adapters::dynamodb::RETRACTIONS_PARTITION,
        "RECALL",
        "the partition the condition names is the store's"
    );
}

/// A team send to three people, delivered, its chunk delivered again (SQS's copy), an email
/// send to brochure 4 (two emails): each line CloudWatch reads as EMF, and each fact counted
/// once: accepted 2, people reached 3 (not 6) + 3, one latency a chunk, emails sent 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_records_each_fact_once_as_emf() {
    let capture = tests::metrics::capture();
    let env = tests::Env::memory().await;
    let send = |body: Json| {
        let ports = &env.ports;
        async move {
            let req = shared::http::GatewayRequest::new(
                "POST",
                "/rest/notification/send",
                "/rest/notification/send",
            )
            .header("x-nextinteract-authtoken", "demo-admin-token")
            .header("x-nextinteract-company-api-key", "00000000-0000-4000-8000-000000000003")
            .body(body.to_string());
            let resp = send::handle(ports, req.into_request()).await;
            assert_eq!(resp.status(), 200, "{}", shared::http::body_text(&resp));
        }
    };
    send(json!({"version": 3, "type": "GT", "key": "3", "values": ["23"], "message": "metrics"})).await;
    local::workers::drain_fanout_once(&env.ports).await.unwrap();
    let chunk = env.ports.delivery_queue.receive(10).await.unwrap();
    assert_eq!(chunk.len(), 1);
    // SQS hands the chunk out twice: the second finds it recorded.
    env.ports.delivery_queue.send_all(&[chunk[0].body.clone(), chunk[0].body.clone()]).await.unwrap();
    env.ports.delivery_queue.ack(&chunk[0].receipt).await.unwrap();
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    send(json!({"version": 3, "type": "GA", "key": "3", "brochureId": 4, "message": "metrics",
        "emailTemplate": "Client.Generic.Notification.html", "emailSubject": "metrics",
        "emailParams": [{"key": "unsubcribeURL", "value": "x"}]}))
    .await;
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();

    for line in capture.lines() {
        let doc: Json = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let directive = &doc["_aws"]["CloudWatchMetrics"][0];
        assert!(doc["_aws"]["Timestamp"].is_i64(), "{line}");
        assert_eq!(directive["Namespace"], "Notifications", "{line}");
        for name in directive["Dimensions"][0].as_array().unwrap() {
            assert!(doc[name.as_str().unwrap()].is_string(), "{line}: dimension {name}");
        }
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(doc[m["Name"].as_str().unwrap()].is_number(), "{line}");
        }
        assert!(!line.contains('\n'));
        assert_eq!(doc["Stage"], "local", "{line}: the stage without STAGE set");
    }
    assert_eq!(capture.sum(Metric::NotificationsAccepted, &["groupSend"]), 2.0);
    assert_eq!(
        capture.sum(Metric::PeopleReached, &["groupSend"]),
        6.0,
        "team 23's 3 (its copy not counted), brochure 4's 3"
    );
    assert_eq!(capture.count(Metric::ChunkLatency), 2, "one a chunk recorded");
    assert_eq!(capture.sum(Metric::EmailsSent, &[]), 2.0, "brochure 4: two emails (u4 opted out)");
    assert_eq!(capture.count(Metric::EmailsFailed), 0, "none failed: no line (a zero count writes none)");
}

/// A rotation of the link-signing key reaches every function that signs or verifies links: each
/// reads the secret by the staging label `LinkSigningKeyLabel` names (a new label makes
/// CloudFormation read the secret again: it reads a dynamic reference again only when its text
/// changes), AWSCURRENT unless a rotation says otherwise (docs/operations.md).
#[test]
fn every_reader_of_the_link_signing_key_reads_it_by_the_rotations_label() {
    let t = template();
    assert_eq!(text(&t["Parameters"]["LinkSigningKeyLabel"]["Default"]).trim(), "AWSCURRENT");
    let mut readers = BTreeSet::new();
    for (id, function) in resources_of_type(&t, "AWS::Serverless::Function") {
        let key = &function["Properties"]["Environment"]["Variables"][shared::Config::LINK_SIGNING_KEY];
        if key.is_null() {
            continue;
        }
        let key = text(key);
        assert!(
            key.contains(
                "{{resolve:secretsmanager:${LinkSigningSecret}:SecretString::${LinkSigningKeyLabel}}}"
            ),
            "{id}: {key}"
        );
        readers.insert(id);
    }
    let expected: BTreeSet<String> =
        ["DeliverFunction", "InboxFunction", "RealtimeFunction"].map(String::from).into();
    assert_eq!(readers, expected, "the functions that sign or verify links and tickets");
    let runbook = std::fs::read_to_string(tests::repo_root().join("docs/operations.md")).unwrap();
    assert!(runbook.contains("LinkSigningKeyLabel="), "the runbook's rotation names the parameter");
}

/// A deleted stage can be deployed again with its data: `scripts/import-retained` writes the
/// IMPORT change set that adopts every resource the template retains (each table, by the name
/// `tests/stateful-resources.json` records for the stage), and the link-signing key's secret when
/// asked; its template declares each as template.yaml does, with a DeletionPolicy (an import
/// requires one) and every parameter and condition it uses, and cfn-lint takes it; the runbook
/// (docs/deploy.md) runs it.
#[test]
fn a_deleted_stages_data_can_be_adopted_by_a_new_stack() {
    let root = tests::repo_root();
    let out = tempfile_dir("import-retained");
    let arn =
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:notifications-prod-link-signing-key-AbCdEf";
    let run = std::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/import-retained"))
        .args(["prod", out.to_str().unwrap(), "--secret-arn", arn])
        .output()
        .expect("the script runs with the project's Python (scripts/test makes .venv)");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let read =
        |f: &str| -> Json { serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap() };
    let (imported, written) = (read("resources.json"), read("template.json"));

    let t = template();
    let recorded: Json =
        serde_json::from_str(&std::fs::read_to_string(root.join("tests/stateful-resources.json")).unwrap())
            .unwrap();
    let mut expected: Vec<Json> = resources_of_type(&t, "AWS::DynamoDB::Table")
        .into_iter()
        .filter(|(_, r)| r["DeletionPolicy"].as_str() == Some("Retain"))
        .map(|(id, _)| {
            let name = recorded["resources"][&id]["name"].as_str().unwrap().replace("${Stage}", "prod");
            json!({"ResourceType": "AWS::DynamoDB::Table", "LogicalResourceId": id, "ResourceIdentifier": {"TableName": name}})
        })
        .collect();
    assert_eq!(expected.len(), 3, "the three tables of people's data are retained");
    expected.push(json!({"ResourceType": "AWS::SecretsManager::Secret", "LogicalResourceId": "LinkSigningSecret", "ResourceIdentifier": {"Id": arn}}));
    assert_eq!(imported, Json::Array(expected));
    for (id, resource) in written["Resources"].as_object().unwrap() {
        assert_eq!(resource["DeletionPolicy"], "Retain", "{id}");
        assert_eq!(resource["Type"].as_str(), t["Resources"][id.as_str()]["Type"].as_str(), "{id}");
        // Declared as template.yaml declares it: its name, for one.
        let name = &resource["Properties"][if id == "LinkSigningSecret" { "Name" } else { "TableName" }];
        assert_eq!(name["Fn::Sub"].as_str(), recorded["resources"][id.as_str()]["name"].as_str(), "{id}");
    }
    let lint = std::process::Command::new(root.join(".venv/bin/cfn-lint"))
        .arg(out.join("template.json"))
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    let runbook = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    assert!(runbook.contains("scripts/import-retained") && runbook.contains("--change-set-type IMPORT"));
}

/// A fresh directory under the system's temporary one.
fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
