//! The template, the Lambda packages, the local runner and `events/` describe one service:
//! these tests fail when one of them drifts from the others.

use std::collections::{BTreeMap, BTreeSet};

use local::provision::{read_template, resources_of_type};
use serde_yaml_ng::Value;

/// (logical id, package from CodeUri, binary from BuildProperties, resource).
fn functions() -> Vec<(String, String, String, Value)> {
    let template = read_template(&tests::template_path()).unwrap();
    resources_of_type(&template, "AWS::Serverless::Function")
        .into_iter()
        .map(|(id, r)| {
            let code_uri =
                r["Properties"]["CodeUri"].as_str().unwrap_or_else(|| panic!("{id}: CodeUri")).to_string();
            let package = code_uri
                .strip_prefix("functions/")
                .unwrap_or_else(|| panic!("{id}: CodeUri {code_uri} is not functions/<package>"));
            let binary = r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: Binary"))
                .to_string();
            (id, package.to_string(), binary, r.clone())
        })
        .collect()
}

fn package_manifest(package: &str) -> String {
    let path = tests::repo_root().join("functions").join(package).join("Cargo.toml");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn template_routes_equal_the_route_table() {
    let mut template_routes = BTreeMap::new();
    for (id, package, _, r) in functions() {
        let Some(Value::Mapping(events)) = r["Properties"].get("Events") else { continue };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let p = &event["Properties"];
                let key =
                    (p["Method"].as_str().unwrap().to_uppercase(), p["Path"].as_str().unwrap().to_string());
                assert!(
                    template_routes.insert(key.clone(), package.clone()).is_none(),
                    "{id}: {key:?} declared twice"
                );
            }
        }
    }
    let local_routes: BTreeMap<(String, String), String> = local::routes::ROUTES
        .iter()
        .map(|r| ((r.method.to_string(), r.path.to_string()), r.function().package().to_string()))
        .collect();
    assert_eq!(
        template_routes.keys().collect::<BTreeSet<_>>(),
        local_routes.keys().collect::<BTreeSet<_>>(),
        "(method, path) routes of template.yaml and of the route table (shared::routes)"
    );
    assert_eq!(template_routes, local_routes, "each route is served by the same function in both");
}

/// `openapi.yaml` documents exactly the routes of the table.
#[test]
fn openapi_paths_equal_the_route_table() {
    let text = std::fs::read_to_string(tests::repo_root().join("openapi.yaml")).unwrap();
    let openapi: Value = serde_yaml_ng::from_str(&text).unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in openapi["paths"].as_mapping().unwrap() {
        for (method, _) in item.as_mapping().unwrap() {
            let method = method.as_str().unwrap();
            if ["get", "post", "put", "patch", "delete", "head", "options"].contains(&method) {
                documented.insert((method.to_uppercase(), path.as_str().unwrap().to_string()));
            }
        }
    }
    let table: BTreeSet<(String, String)> =
        shared::routes::ROUTES.iter().map(|r| (r.method.to_string(), r.path.to_string())).collect();
    assert_eq!(documented, table, "(method, path) of openapi.yaml and of the route table");
}

#[test]
fn every_template_function_is_a_workspace_package_with_its_binary() {
    let fns = functions();
    assert_eq!(fns.len(), 7);
    for (id, package, binary, _) in fns {
        let manifest = package_manifest(&package);
        assert!(manifest.contains(&format!("name = \"{package}\"")), "{id}: package {package}");
        assert!(
            manifest.contains(&format!("name = \"{binary}\"")),
            "{id}: binary {binary} in functions/{package}"
        );
        assert!(tests::repo_root().join("functions").join(&package).join("src/main.rs").exists());
    }
}

/// Every function runs on one thread (`bench cold-start`: a multi-threaded runtime cost each AWS
/// request a third more CPU on a fraction of a vCPU, and its init two thread starts).
#[test]
fn every_function_runs_on_a_current_thread_runtime() {
    for (id, package, _, _) in functions() {
        let path = tests::repo_root().join("functions").join(&package).join("src/main.rs");
        let main = std::fs::read_to_string(&path).unwrap();
        assert!(
            main.contains("#[tokio::main(flavor = \"current_thread\")]"),
            "{id}: functions/{package}/src/main.rs starts a multi-threaded runtime"
        );
    }
}

/// The samples in `events/` take the paths the functions dispatch on: an HTTP sample's `routeKey`
/// is a row of the route table served by the sample's function; a deliver sample's queue is the
/// one its body belongs to (a dev stage's queue names).
#[test]
fn event_samples_name_their_route_and_queue() {
    let dev = |name: &str| format!("notifications-dev-{name}");
    let sources = deliver::Sources {
        chunks: dev("delivery"),
        email_jobs: dev("email"),
        email_events: dev("email-events"),
        dead_chunks: dev("delivery-dlq"),
        dead_email_jobs: dev("email-dlq"),
        hooks: dev("webhooks"),
    };
    for entry in std::fs::read_dir(tests::repo_root().join("events")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Some(key) = event["routeKey"].as_str() {
            let route = shared::routes::by_key(key).unwrap_or_else(|| panic!("{name}: {key} is no route"));
            assert!(
                name.starts_with(&format!("{}-", route.function().package())),
                "{name}: {key} is not its function's"
            );
            assert_eq!(event["requestContext"]["routeKey"].as_str(), Some(key), "{name}");
        }
        if name.starts_with("deliver-") {
            let arn = event["Records"][0]["eventSourceARN"].as_str().unwrap();
            let want = match name.as_str() {
                "deliver-queue" => deliver::Kind::Chunk,
                "deliver-email-job" => deliver::Kind::EmailJob,
                "deliver-ses-bounce" => deliver::Kind::SesEvent,
                "deliver-dead-chunk" => deliver::Kind::DeadChunk,
                "deliver-dead-email-job" => deliver::Kind::DeadEmailJob,
                "deliver-webhook" => deliver::Kind::Hook,
                other => panic!("{other}: which queue is it from?"),
            };
            assert_eq!(sources.kind_of(arn), Some(want), "{name}: {arn}");
        }
    }
}

#[test]
fn every_template_function_has_an_event_sample() {
    let names: Vec<String> = std::fs::read_dir(tests::repo_root().join("events"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for (id, package, _, _) in functions() {
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{package}-")) && n.ends_with(".json")),
            "{id}: no events/{package}-*.json"
        );
    }
}

#[test]
fn queues_outlast_their_consumers_and_redrive_to_a_dlq() {
    let template = read_template(&tests::template_path()).unwrap();
    let default_timeout = template["Globals"]["Function"]["Timeout"].as_u64().unwrap();
    let queues: BTreeMap<String, Value> =
        resources_of_type(&template, "AWS::SQS::Queue").into_iter().map(|(k, v)| (k, v.clone())).collect();
    // Dead-letter queues: the targets of the others' redrive policies.
    let dead_letter_queues: Vec<String> = queues
        .values()
        .filter_map(|q| match &q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"] {
            Value::Tagged(t) => t.value.as_str().map(|v| v.trim_end_matches(".Arn").to_string()),
            _ => None,
        })
        .collect();
    let mut consumed = 0;
    for (id, _, _, r) in functions() {
        let timeout = r["Properties"]["Timeout"].as_u64().unwrap_or(default_timeout);
        let Some(Value::Mapping(events)) = r["Properties"].get("Events") else { continue };
        for (_, event) in events {
            if event["Type"].as_str() != Some("SQS") {
                continue;
            }
            consumed += 1;
            let p = &event["Properties"];
            let queue_ref = match &p["Queue"] {
                Value::Tagged(t) => t.value.as_str().unwrap().trim_end_matches(".Arn").to_string(),
                other => panic!("{id}: Queue must be !GetAtt X.Arn, got {other:?}"),
            };
            let queue = &queues[&queue_ref];
            let visibility = queue["Properties"]["VisibilityTimeout"].as_u64().unwrap();
            assert!(
                visibility >= 6 * timeout,
                "{queue_ref}: visibility {visibility}s < 6 × {id}'s {timeout}s"
            );
            // A dead-letter queue's consumer settles each message once, never failing it for good.
            assert!(
                queue["Properties"].get("RedrivePolicy").is_some() || dead_letter_queues.contains(&queue_ref),
                "{queue_ref} has no DLQ"
            );
            assert_eq!(p["FunctionResponseTypes"][0].as_str(), Some("ReportBatchItemFailures"), "{id}");
            assert!(p.get("MaximumBatchingWindowInSeconds").is_some(), "{id}: batching window");
            assert!(p["ScalingConfig"].get("MaximumConcurrency").is_some(), "{id}: maximum concurrency");
        }
    }
    assert_eq!(
        consumed, 7,
        "FanoutQueue, DeliveryQueue, EmailQueue, EmailEventsQueue, WebhookQueue, and the dead letters of the DeliveryQueue and EmailQueue"
    );
}

/// A chunk's or email job's lease outlives the attempt that holds it (a holder is dead when its
/// lease runs out: the deliver function's timeout, and a margin of 10 s for clocks) and runs out
/// before its queue hands a failed message out again (its visibility timeout), so a redelivery
/// after a kill never waits for a lease.
#[test]
fn a_chunks_lease_outlives_its_attempt_and_not_its_message() {
    let template = read_template(&tests::template_path()).unwrap();
    let resources = &template["Resources"];
    let timeout = resources["DeliverFunction"]["Properties"]["Timeout"].as_u64().unwrap();
    let lease = shared::service::deadline::WORK_LEASE.as_secs();
    assert!(lease >= timeout + 10, "lease {lease}s < deliver's timeout {timeout}s + 10s");
    // Chunks and email jobs are held by the same lease.
    for queue in ["DeliveryQueue", "EmailQueue"] {
        let visibility = resources[queue]["Properties"]["VisibilityTimeout"].as_u64().unwrap();
        assert!(lease < visibility, "lease {lease}s ≥ {queue}'s visibility timeout {visibility}s");
    }
}

/// Bounces and complaints reach deliver: the configuration set emails are sent with publishes
/// them to a topic SES may publish to, the topic delivers them raw (SES's record itself, which
/// `ses::parse_event` reads) to a queue SNS may send to, and deliver consumes that queue.
#[test]
fn bounces_and_complaints_flow_from_the_configuration_set_to_deliver() {
    let template = read_template(&tests::template_path()).unwrap();
    let resources = &template["Resources"];
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap();
    let destination = &resources["EmailEventDestination"]["Properties"];
    assert!(yaml(&destination["ConfigurationSetName"]).contains("EmailConfigurationSet"));
    let deliver = &resources["DeliverFunction"]["Properties"];
    assert!(
        yaml(&deliver["Environment"]["Variables"]["SES_CONFIGURATION_SET"]).contains("EmailConfigurationSet")
    );
    let event = &destination["EventDestination"];
    assert_eq!(event["Enabled"].as_bool(), Some(true));
    let types: BTreeSet<&str> =
        event["MatchingEventTypes"].as_sequence().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(types, BTreeSet::from(["bounce", "complaint"]));
    assert!(yaml(&event["SnsDestination"]["TopicARN"]).contains("EmailEventsTopic"));

    let topic_policy = yaml(&resources["EmailEventsTopicPolicy"]["Properties"]);
    assert!(
        topic_policy.contains("ses.amazonaws.com") && topic_policy.contains("sns:Publish"),
        "{topic_policy}"
    );
    assert!(topic_policy.contains("EmailEventsTopic") && topic_policy.contains("aws:SourceAccount"));

    let subscription = &resources["EmailEventsSubscription"]["Properties"];
    assert!(yaml(&subscription["TopicArn"]).contains("EmailEventsTopic"));
    assert_eq!(subscription["Protocol"].as_str(), Some("sqs"));
    assert!(yaml(&subscription["Endpoint"]).contains("EmailEventsQueue.Arn"));
    assert_eq!(subscription["RawMessageDelivery"].as_bool(), Some(true), "parse_event reads SES's record");

    let queue_policy = yaml(&resources["EmailEventsQueuePolicy"]["Properties"]);
    assert!(queue_policy.contains("sns.amazonaws.com") && queue_policy.contains("sqs:SendMessage"));
    assert!(queue_policy.contains("EmailEventsTopic") && queue_policy.contains("aws:SourceArn"));
    assert!(yaml(&deliver["Events"]["EmailEvents"]["Properties"]["Queue"]).contains("EmailEventsQueue.Arn"));
}

/// Deliver tells its five queues apart by the queue a record came from: each of its SQS event
/// sources is one of the queues its configuration names (`deliver::Sources`), each a different
/// kind, from the template's own variables.
#[test]
fn deliver_knows_each_queue_it_consumes_by_its_configuration() {
    let template = read_template(&tests::template_path()).unwrap();
    let deliver = &template["Resources"]["DeliverFunction"]["Properties"];
    // A stand-in for CloudFormation: `!Ref Queue` is its URL, `!GetAtt Queue.Arn` its ARN, both
    // ending in the logical id.
    let render = |v: &Value| -> Option<String> {
        let text = serde_yaml_ng::to_string(v).unwrap();
        let text = text.trim();
        if let Some(q) = text.strip_prefix("!Ref ") {
            Some(format!("https://sqs.eu-west-1.amazonaws.com/123456789012/{q}"))
        } else if let Some(q) = text.strip_prefix("!GetAtt ").and_then(|t| t.strip_suffix(".Arn")) {
            Some(format!("arn:aws:sqs:eu-west-1:123456789012:{q}"))
        } else {
            Some(text.to_string())
        }
    };
    let config = shared::Config::from_lookup(|k| {
        if !(k.contains("_QUEUE_") || k.ends_with("_TABLE")) {
            return None; // the rest at their defaults
        }
        let own = &deliver["Environment"]["Variables"][k];
        let global = &template["Globals"]["Function"]["Environment"]["Variables"][k];
        if !own.is_null() {
            render(own)
        } else if !global.is_null() {
            render(global)
        } else {
            None
        }
    })
    .expect("deliver's configuration");
    let sources = deliver::Sources::from_config(&config).expect("deliver's queues");
    let mut kinds = Vec::new();
    for (name, event) in deliver["Events"].as_mapping().unwrap() {
        if event["Type"].as_str() != Some("SQS") {
            continue;
        }
        let arn = render(&event["Properties"]["Queue"]).unwrap();
        let kind = sources.kind_of(&arn);
        assert!(kind.is_some(), "{name:?}: {arn} is none of deliver's queues ({sources:?})");
        kinds.push(kind);
    }
    kinds.sort_by_key(|k| format!("{k:?}"));
    assert_eq!(
        kinds,
        vec![
            Some(deliver::Kind::Chunk),
            Some(deliver::Kind::DeadChunk),
            Some(deliver::Kind::DeadEmailJob),
            Some(deliver::Kind::EmailJob),
            Some(deliver::Kind::Hook),
            Some(deliver::Kind::SesEvent)
        ],
        "six event sources, one of each kind"
    );
}

/// Email is paced to the account's SES rate shared by the email queue's consumers: the code's
/// share (`EMAIL_CONSUMERS`) must be the template's concurrency, one job per invocation.
#[test]
fn the_email_queue_consumers_are_the_ones_the_pace_is_shared_by() {
    let template = read_template(&tests::template_path()).unwrap();
    let deliver = &template["Resources"]["DeliverFunction"]["Properties"];
    let emails = &deliver["Events"]["Emails"]["Properties"];
    let queue = serde_yaml_ng::to_string(&emails["Queue"]).unwrap();
    assert!(queue.contains("EmailQueue.Arn"), "{queue}");
    assert_eq!(
        emails["ScalingConfig"]["MaximumConcurrency"].as_u64(),
        Some(u64::from(shared::settings::EMAIL_CONSUMERS))
    );
    assert_eq!(emails["BatchSize"].as_u64(), Some(1), "one job per invocation: the pace is per invocation");
    let rate =
        serde_yaml_ng::to_string(&deliver["Environment"]["Variables"][shared::Config::EMAIL_SEND_RATE])
            .unwrap();
    assert!(rate.contains("EmailSendRate"), "EMAIL_SEND_RATE: {rate}");
    assert_eq!(
        template["Parameters"]["EmailSendRate"]["Default"].as_u64(),
        Some(u64::from(shared::Config::DEFAULT_EMAIL_SEND_RATE))
    );
}

#[test]
fn iam_policies_name_actions_and_resources_without_wildcards() {
    for (id, _, _, r) in functions() {
        let text = serde_yaml_ng::to_string(&r["Properties"]["Policies"]).unwrap();
        // The exceptions: SNS platform endpoints and WebSocket connections are created at
        // runtime, so their ids (the last segment under a named application or API stage) cannot
        // be listed.
        let text = text
            .replace(":endpoint/${App}/*", ":endpoint/${App}/<runtime id>")
            .replace("/live/POST/@connections/*", "/live/POST/@connections/<runtime id>");
        assert!(!text.contains('*'), "{id}: wildcard in its policy:\n{text}");
        assert!(text.contains("Action"), "{id}: explicit statements");
    }
}

#[test]
fn the_lambda_build_script_exists_and_parses() {
    let script = tests::repo_root().join("scripts/build-lambdas");
    let meta = std::fs::metadata(&script).unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0, "executable");
    let status = std::process::Command::new("bash").arg("-n").arg(&script).status().unwrap();
    assert!(status.success(), "bash -n scripts/build-lambdas");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("sam build --beta-features"));
}

#[test]
fn each_function_builds_the_aws_clients_its_policy_allows_and_no_other() {
    use shared::runtime::Services;
    for (id, package, _, r) in functions() {
        let policy = serde_yaml_ng::to_string(&r["Properties"]["Policies"]).unwrap();
        let allowed = (policy.contains("sqs:"), policy.contains("ses:"), policy.contains("sns:"));
        let path = tests::repo_root().join("functions").join(&package).join("src/main.rs");
        let main = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let named: Vec<&str> = main
            .match_indices("Services::")
            .map(|(i, _)| {
                let rest = &main[i + "Services::".len()..];
                &rest[..rest.find(|c: char| !(c.is_ascii_uppercase() || c == '_')).unwrap_or(rest.len())]
            })
            .collect();
        let [name] = named[..] else { panic!("{id}: main.rs names one Services constant, not {named:?}") };
        let services = match name {
            "TABLES" => Services::TABLES,
            "QUEUES" => Services::QUEUES,
            "PUSH" => Services::PUSH,
            "ALL" => Services::ALL,
            other => panic!("{id}: unknown Services::{other}"),
        };
        assert_eq!(services.uses(), allowed, "{id}: (SQS, SES, SNS) clients built vs allowed by its policy");
    }
}

/// A second stage deploys beside the first: every resource the template names (table, queue,
/// function, configuration set, secret, schedule, topic, alarm, dashboard) carries the stage in
/// its name, and the one
/// account-wide resource, the SES identity, can be left to an existing one.
#[test]
fn every_named_resource_carries_the_stage_and_the_email_identity_is_optional() {
    let template = read_template(&tests::template_path()).unwrap();
    let Value::Mapping(resources) = &template["Resources"] else { panic!("Resources") };
    let mut named = 0;
    let mut check = |what: String, name: &Value| {
        // A reference to another resource (a permission's function) names nothing itself.
        if let Value::Tagged(t) = name
            && ["Ref", "GetAtt"].contains(&t.tag.to_string().trim_start_matches('!'))
        {
            return;
        }
        let text = serde_yaml_ng::to_string(name).unwrap();
        assert!(text.contains("${Stage}"), "{what}: name {text} does not carry the stage");
        named += 1;
    };
    for (id, resource) in resources {
        let id = id.as_str().unwrap().to_string();
        let props = &resource["Properties"];
        for key in [
            "TableName",
            "QueueName",
            "FunctionName",
            "Name",
            "TopicName",
            "ScheduleGroupName",
            "AlarmName",
            "DashboardName",
        ] {
            if let Some(name) = props.get(key) {
                check(format!("{id}.{key}"), name);
            }
        }
        if let Some(Value::Mapping(events)) = props.get("Events") {
            for (event, e) in events {
                if e["Type"].as_str() == Some("ScheduleV2") {
                    let name = e["Properties"]
                        .get("Name")
                        .unwrap_or_else(|| panic!("{id}.{event:?}: a schedule needs a Name with the stage"));
                    check(format!("{id}.{}", event.as_str().unwrap()), name);
                }
            }
        }
    }
    assert!(named >= 12, "{named} named resources checked");
    let identity = &template["Resources"]["EmailIdentity"];
    assert_eq!(identity["Condition"].as_str(), Some("CreatesEmailIdentity"), "the SES identity is optional");
    // Never made by default, so that a second stage on the same domain deploys (issue #29), nor
    // left unmade by default: no default, each stage says (a default "false" would delete the
    // identity of a stack from before the parameter: docs/deploy.md); kept when a deploy turns it
    // off or the stack goes: a stage that made it keeps sending.
    assert!(template["Parameters"]["CreateEmailIdentity"].get("Default").is_none(), "a stage says");
    assert_eq!(identity["DeletionPolicy"].as_str(), Some("Retain"));
    assert_eq!(identity["UpdateReplacePolicy"].as_str(), Some("Retain"));
    let policies =
        serde_yaml_ng::to_string(&template["Resources"]["DeliverFunction"]["Properties"]["Policies"])
            .unwrap();
    assert!(
        !policies.contains("${EmailIdentity}"),
        "deliver's SES grant must not need the optional resource"
    );
}

/// A stage that made the SES identity when `CreateEmailIdentity` defaulted to "true" keeps it
/// now that it has no default: `sam deploy` (the project's, from `.venv`) updates a stack with
/// every parameter it is not given at its previous value. (A stack without the parameter, from
/// before it, gets none: CloudFormation refuses the update for want of a value, and nothing is
/// deleted.)
#[test]
fn a_stage_that_made_the_email_identity_keeps_it_without_a_default() {
    let root = tests::repo_root();
    let script = r#"
import json, sys
from samcli.commands.deploy.deploy_context import DeployContext
from samcli.yamlhelper import yaml_parse
template = yaml_parse(open(sys.argv[1]).read())
print(json.dumps(DeployContext.merge_parameters(template, {"Stage": "prod", "EmailFromAddress": "n@example.com"})))
"#;
    let out = std::process::Command::new(root.join(".venv/bin/python"))
        .args(["-c", script])
        .arg(root.join("template.yaml"))
        .output()
        .expect("sam runs with the project's Python (scripts/test makes .venv)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let parameters: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let of = |key: &str| {
        parameters.as_array().unwrap().iter().find(|p| p["ParameterKey"] == key).cloned().unwrap()
    };
    assert_eq!(
        of("CreateEmailIdentity"),
        serde_json::json!({"ParameterKey": "CreateEmailIdentity", "UsePreviousValue": true}),
        "an update keeps the stage's earlier value"
    );
    assert_eq!(of("Stage")["ParameterValue"], "prod", "what is given is passed");
}

/// The resources moto cannot check (it evaluates SES and SNS requests against `*`), checked
/// here against what the code uses: deliver sends email only as `EMAIL_FROM` (the
/// `EmailFromAddress` parameter, also the `ses:FromAddress` condition) through the
/// configuration set `SES_CONFIGURATION_SET` names, on the identity of that address's domain;
/// the SNS grants name the endpoints under the applications `PUSH_*_APPLICATION_ARN` name, and
/// creating endpoints is granted on those applications only.
#[test]
fn ses_and_sns_grants_name_exactly_what_the_code_uses() {
    let fns = functions();
    let function = |id: &str| fns.iter().find(|(i, ..)| i == id).map(|(.., r)| r.clone()).unwrap();
    let yaml = |v: &Value| serde_yaml_ng::to_string(v).unwrap();

    // The environment the code reads its sender, configuration set and applications from.
    let deliver = function("DeliverFunction");
    let env = &deliver["Properties"]["Environment"]["Variables"];
    assert_eq!(yaml(&env["EMAIL_FROM"]).trim(), "!Ref EmailFromAddress");
    assert_eq!(yaml(&env["SES_CONFIGURATION_SET"]).trim(), "!Ref EmailConfigurationSet");
    let inbox = function("InboxFunction");
    let inbox_env = yaml(&inbox["Properties"]["Environment"]["Variables"]);
    for app in ["ApnsApplicationArn", "ApnsSandboxApplicationArn", "GcmApplicationArn"] {
        assert!(inbox_env.contains(&format!("!Ref {app}")), "inbox reads {app}");
    }

    // deliver: SendEmail on the sender's domain identity and the configuration set, for that
    // sender only; Publish and DeleteEndpoint on endpoints under the configured applications.
    let policies = yaml(&deliver["Properties"]["Policies"]);
    let ses = policies.split("- Effect").find(|s| s.contains("ses:SendEmail")).expect("an SES statement");
    assert!(
        ses.contains(":identity/${Domain}") && ses.contains("!Split") && ses.contains("EmailFromAddress"),
        "{ses}"
    );
    assert!(ses.contains(":configuration-set/${EmailConfigurationSet}"), "{ses}");
    assert!(ses.contains("ses:FromAddress: !Ref EmailFromAddress"), "the sender condition: {ses}");
    assert_eq!(ses.matches("arn:${AWS::Partition}:ses:").count(), 2, "two resources, nothing else: {ses}");
    let sns = policies.split("- Effect").find(|s| s.contains("sns:Publish")).expect("an SNS statement");
    for app in ["ApnsApplicationArn", "ApnsSandboxApplicationArn", "GcmApplicationArn"] {
        assert!(sns.contains(&format!("!Ref {app}")) && sns.contains(":endpoint/${App}/*"), "{app}: {sns}");
    }

    // inbox: CreatePlatformEndpoint on the applications themselves; the rest on their endpoints.
    let policies = yaml(&inbox["Properties"]["Policies"]);
    let create =
        policies.split("- Effect").find(|s| s.contains("sns:CreatePlatformEndpoint")).expect("create");
    assert!(!create.contains(":endpoint/"), "creating is granted on applications: {create}");
    let manage =
        policies.split("- Effect").find(|s| s.contains("sns:GetEndpointAttributes")).expect("manage");
    assert!(
        manage.contains("sns:SetEndpointAttributes") && manage.contains(":endpoint/${App}/*"),
        "{manage}"
    );

    // No other function may email or push.
    for (id, _, _, r) in &fns {
        if id != "DeliverFunction" && id != "InboxFunction" {
            let text = yaml(&r["Properties"]["Policies"]);
            assert!(!text.contains("ses:") && !text.contains("sns:"), "{id} has no email or push grant");
        }
    }
}

/// Realtime events are posted by the functions that deliver (deliver, and notify's synchronous
/// deliveries) and mark (inbox), and only those: each has the WebSocket API's endpoint, may
/// `execute-api:ManageConnections` on that API's connections only, and reads the connections
/// table; the WebSocket API's routes all go to the realtime function, which API Gateway may invoke.
#[test]
fn realtime_is_wired_to_the_functions_that_deliver_and_mark() {
    let mut posting = BTreeSet::new();
    for (id, package, _, r) in functions() {
        let env = serde_yaml_ng::to_string(&r["Properties"]["Environment"]).unwrap();
        let policies = serde_yaml_ng::to_string(&r["Properties"]["Policies"]).unwrap();
        let has_endpoint = env.contains("REALTIME_ENDPOINT");
        let may_post = policies.contains("execute-api:ManageConnections");
        assert_eq!(has_endpoint, may_post, "{id}: the endpoint and the grant go together");
        if may_post {
            assert!(
                policies.contains("${RealtimeApi}/live/POST/@connections/*"),
                "{id}: only that API's connections"
            );
            assert!(
                env.contains("${RealtimeApi}") && env.contains("/live"),
                "{id}: the live stage's endpoint"
            );
            assert!(policies.contains("ConnectionsTable"), "{id}: reads who is connected");
            posting.insert(package);
        }
    }
    assert_eq!(posting, BTreeSet::from(["deliver".to_string(), "inbox".into(), "notify".into()]));

    let template = read_template(&tests::template_path()).unwrap();
    let text = std::fs::read_to_string(tests::template_path()).unwrap();
    let routes: BTreeSet<String> = resources_of_type(&template, "AWS::ApiGatewayV2::Route")
        .iter()
        .map(|(_, r)| r["Properties"]["RouteKey"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        routes,
        BTreeSet::from(["$connect".into(), "$default".into(), "$disconnect".into(), "ping".into()])
    );
    // The keepalive is answered by API Gateway: no function runs per ping.
    let ping = resources_of_type(&template, "AWS::ApiGatewayV2::Route")
        .into_iter()
        .find(|(_, r)| r["Properties"]["RouteKey"].as_str() == Some("ping"))
        .unwrap()
        .1;
    let target = serde_yaml_ng::to_string(&ping["Properties"]["Target"]).unwrap();
    let integration = target.split("${").nth(1).and_then(|t| t.split('}').next()).unwrap().to_string();
    assert_eq!(template["Resources"][&integration]["Properties"]["IntegrationType"].as_str(), Some("MOCK"));
    assert!(
        text.contains("functions/${RealtimeFunction.Arn}/invocations"),
        "the integration invokes the realtime function"
    );
    assert!(text.contains("Principal: apigateway.amazonaws.com"), "API Gateway may invoke it");
    let stage = resources_of_type(&template, "AWS::ApiGatewayV2::Stage");
    assert_eq!(stage.len(), 1);
    assert_eq!(stage[0].1["Properties"]["StageName"].as_str(), Some("live"), "the stage the endpoints name");
}

/// `sam local start-api` takes the kind of the template's first API-like resource for all of them
/// and fails reading the WebSocket API's routes as HTTP ones: the HTTP API and the functions come
/// before any `AWS::ApiGatewayV2` resource (scripts/sam-local serves every HTTP route so).
#[test]
fn sam_local_sees_the_http_api_first() {
    let text = std::fs::read_to_string(tests::template_path()).unwrap();
    let first_sam = ["AWS::Serverless::HttpApi", "AWS::Serverless::Function"]
        .iter()
        .filter_map(|t| text.find(&format!("Type: {t}")))
        .min()
        .expect("SAM resources");
    let first_v2 = text.find("Type: AWS::ApiGatewayV2::").expect("the WebSocket API");
    assert!(
        first_sam < first_v2,
        "a SAM API or function must come before the first AWS::ApiGatewayV2 resource"
    );
}

/// A new on-demand table starts at a warm throughput of 4,000 write and 12,000 read units per
/// second ("Warm throughput for an on-demand table",
/// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput-scenarios.html),
/// and warm throughput can be raised, never lowered
/// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/warm-throughput.html): for
/// the template's on-demand tables these are the least DynamoDB accepts. The property's own
/// minimum, 1 (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-dynamodb-table-warmthroughput.html),
/// is a provisioned table's.
const NEW_ON_DEMAND_TABLE_WRITE_UNITS: u64 = 4_000;
const NEW_ON_DEMAND_TABLE_READ_UNITS: u64 = 12_000;

/// The two tables a broadcast writes are pre-warmed by `TableWarmWriteUnits` and
/// `TableWarmReadUnits`: a figure below AWS's minimum is refused at deploy (`MinValue`, with a
/// `ConstraintDescription` naming it), the defaults are a new table's own figures, and each
/// figure reaches both tables' `WarmThroughput` exactly when it is above that (left out at it:
/// the table may have grown past it, and DynamoDB refuses a lower value). The meter's table rate
/// for a new table (scripts/dynamodb_meter.py) is AWS's figure too.
#[test]
fn the_broadcasts_tables_are_warmed_by_parameters_with_awss_minimums() {
    let template = read_template(&tests::template_path()).unwrap();
    let write = ("TableWarmWriteUnits", NEW_ON_DEMAND_TABLE_WRITE_UNITS);
    let read = ("TableWarmReadUnits", NEW_ON_DEMAND_TABLE_READ_UNITS);
    for (parameter, least) in [write, read] {
        let p = &template["Parameters"][parameter];
        assert_eq!(p["Type"].as_str(), Some("Number"), "{parameter}: a Number, so that MinValue applies");
        assert_eq!(p["MinValue"].as_u64(), Some(least), "{parameter}: MinValue is AWS's minimum");
        assert_eq!(p["Default"].as_u64(), Some(least), "{parameter}: by default a new table's own figure");
        let constraint = p["ConstraintDescription"].as_str().unwrap_or_default();
        assert!(
            constraint.contains(&least.to_string()),
            "{parameter}: the refusal names {least}: {constraint:?}"
        );
    }

    // Each condition as CloudFormation evaluates it, for parameter values given as strings.
    let condition = |name: &str, values: &BTreeMap<&str, String>| -> bool {
        let not = tagged(&template["Conditions"][name], "Not");
        let equals = tagged(&not[0], "Equals");
        let parameter = tagged(&equals[0], "Ref").as_str().unwrap();
        let figure = equals[1].as_str().unwrap_or_else(|| panic!("{name}: compares with a string"));
        values[parameter] != figure
    };
    let warmed = |w: u64, r: u64| BTreeMap::from([(write.0, w.to_string()), (read.0, r.to_string())]);
    for table in ["NotificationsTable", "InboxTable"] {
        let property = &template["Resources"][table]["Properties"]["WarmThroughput"];
        assert!(!property.is_null(), "{table}: WarmThroughput");
        for (w, r, expected) in [
            (write.1, read.1, vec![]),
            (write.1 + 1, read.1, vec![("WriteUnitsPerSecond", write.0)]),
            (write.1, read.1 * 2, vec![("ReadUnitsPerSecond", read.0)]),
            (
                write.1 * 10,
                read.1 * 10,
                vec![("ReadUnitsPerSecond", read.0), ("WriteUnitsPerSecond", write.0)],
            ),
        ] {
            let values = warmed(w, r);
            let resolved = resolve_ifs(property, &|c| condition(c, &values));
            // Property -> the parameter it takes.
            let got: BTreeMap<&str, &str> = match &resolved {
                None => BTreeMap::new(),
                Some(Value::Mapping(m)) => {
                    m.iter().map(|(k, v)| (k.as_str().unwrap(), tagged(v, "Ref").as_str().unwrap())).collect()
                }
                Some(other) => panic!("{table}: WarmThroughput resolves to {other:?}"),
            };
            let expected = BTreeMap::from_iter(expected);
            assert_eq!(got, expected, "{table}: WarmThroughput with {}={w}, {}={r}", write.0, read.0);
        }
    }

    let meter = std::fs::read_to_string(tests::repo_root().join("scripts/dynamodb_meter.py")).unwrap();
    assert!(
        meter.contains(&format!("NEW_TABLE_WCU = {NEW_ON_DEMAND_TABLE_WRITE_UNITS}\n")),
        "the meter's rate for a new table is AWS's"
    );
    assert_eq!(
        tests::table_write_units(),
        NEW_ON_DEMAND_TABLE_WRITE_UNITS as f64,
        "what tests arm the meter with"
    );
}

/// The value under a short-form tag (`!Not`, `!Ref`), which must be `tag`.
fn tagged<'a>(v: &'a Value, tag: &str) -> &'a Value {
    match v {
        Value::Tagged(t) if t.tag == tag => &t.value,
        _ => panic!("expected !{tag}, found {v:?}"),
    }
}

/// `v` with every `!If [condition, then, else]` taken as `holds` says, and `!Ref AWS::NoValue`
/// removed (None when `v` itself is removed).
fn resolve_ifs(v: &Value, holds: &dyn Fn(&str) -> bool) -> Option<Value> {
    match v {
        Value::Tagged(t) if t.tag == "If" => {
            let branches = t.value.as_sequence().expect("!If [condition, then, else]");
            let name = branches[0].as_str().expect("!If names a condition");
            resolve_ifs(&branches[if holds(name) { 1 } else { 2 }], holds)
        }
        Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue") => None,
        Value::Mapping(m) => Some(Value::Mapping(
            m.iter().filter_map(|(k, v)| Some((k.clone(), resolve_ifs(v, holds)?))).collect(),
        )),
        other => Some(other.clone()),
    }
}

/// What send stores (a group send's email, its content apart: decision 0018; a retraction, whose
/// plan the fan-out runs: decision 0019) is read by deliver (its email jobs, a recall's steps),
/// sent history and fan-out: CloudFormation updates those three before send, so that no
/// notification a new send stored meets a reader still running the version before; and the
/// store's shape is the `EmailContentApart` parameter's, `false` by default (docs/deploy.md: a
/// stage turns it on once every function reads both shapes, so a rollback never meets it).
#[test]
fn the_readers_of_what_send_stores_update_before_it() {
    let template = read_template(&tests::template_path()).unwrap();
    // Notify stores notifications and records retractions too (department messages, in-app
    // notifications).
    for writer in ["SendFunction", "NotifyFunction"] {
        let depends: BTreeSet<&str> = template["Resources"][writer]["DependsOn"]
            .as_sequence()
            .unwrap_or_else(|| panic!("{writer}: DependsOn, a list"))
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            depends,
            BTreeSet::from(["DeliverFunction", "FanoutFunction", "SentHistoryFunction"]),
            "{writer}"
        );
    }
    let parameter = &template["Parameters"]["EmailContentApart"];
    assert_eq!(parameter["Default"].as_str(), Some("false"));
    let env =
        &template["Globals"]["Function"]["Environment"]["Variables"][shared::Config::EMAIL_CONTENT_APART];
    assert_eq!(serde_yaml_ng::to_string(env).unwrap().trim(), "!Ref EmailContentApart");
}

/// Realtime posts stay within the share of the account's API Gateway quota the README states: a
/// fifth of the default 10,000 requests a second per Region (shared by the HTTP API, the WebSocket
/// API and the posts; https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html),
/// whatever number of chunks deliver takes at once (its chunk event source's concurrency, which the
/// code's figure must equal).
#[test]
fn realtime_posts_stay_within_their_share_of_the_account_quota() {
    const ACCOUNT_REQUESTS_PER_SECOND: u32 = 10_000;
    let template = read_template(&tests::template_path()).unwrap();
    let chunks = &template["Resources"]["DeliverFunction"]["Properties"]["Events"]["Chunks"]["Properties"];
    assert!(serde_yaml_ng::to_string(&chunks["Queue"]).unwrap().contains("DeliveryQueue.Arn"));
    let consumers = chunks["ScalingConfig"]["MaximumConcurrency"].as_u64().unwrap();
    assert_eq!(consumers, u64::from(shared::settings::CHUNK_CONSUMERS));
    let posts = consumers * u64::from(shared::settings::REALTIME_POSTS_PER_SECOND);
    assert!(posts <= u64::from(ACCOUNT_REQUESTS_PER_SECOND / 5), "{posts} posts a second");
    let readme = std::fs::read_to_string(tests::repo_root().join("docs/api/notification-center.md")).unwrap();
    let stated = format!("{} posts a second", posts.to_string().replace("000", ",000"));
    assert!(readme.contains(&stated), "docs/api/notification-center.md states {stated:?}");
}

/// Each route of the center a page reads has its own throttle, apart from the senders' routes;
/// `$connect`'s stays within the account's 500 new connections a second across all WebSocket
/// APIs (https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-execution-service-websocket-limits-table.html).
#[test]
fn the_centers_routes_are_throttled_apart() {
    let template = read_template(&tests::template_path()).unwrap();
    let settings = &template["Resources"]["HttpApi"]["Properties"]["RouteSettings"];
    let Value::Mapping(routes) = settings else { panic!("HttpApi RouteSettings") };
    let keys: BTreeSet<String> = routes.keys().map(|k| k.as_str().unwrap().to_string()).collect();
    // The center's routes (its reads and marks) and the realtime ticket: what a page calls.
    let expected: BTreeSet<String> = local::routes::ROUTES
        .iter()
        .filter(|r| {
            r.path.starts_with("/users/{userId}/notifications") || r.path == "/users/{userId}/realtime-ticket"
        })
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(keys, expected);
    for (_, s) in routes {
        let text = serde_yaml_ng::to_string(s).unwrap();
        assert!(text.contains("CenterRateLimit") && text.contains("CenterBurstLimit"), "{text}");
    }
    let stage = &template["Resources"]["RealtimeStage"]["Properties"]["RouteSettings"]["$connect"];
    assert!(serde_yaml_ng::to_string(stage).unwrap().contains("RealtimeConnectRateLimit"));
    let ping = &template["Resources"]["RealtimeStage"]["Properties"]["RouteSettings"]["ping"];
    assert!(serde_yaml_ng::to_string(ping).unwrap().contains("RealtimePingRateLimit"), "pings apart");
    let connect = template["Parameters"]["RealtimeConnectRateLimit"]["Default"].as_u64().unwrap();
    let burst = template["Parameters"]["RealtimeConnectBurstLimit"]["Default"].as_u64().unwrap();
    assert!(connect < 500 && burst <= 500, "{connect}/{burst} within the account's 500 a second");
}

/// A number of seconds a page promises, found after `before` (`"3\nminutes"` reads as 180).
fn promised_seconds(page: &str, before: &str) -> i64 {
    let text = std::fs::read_to_string(tests::repo_root().join(page)).unwrap().replace('\n', " ");
    let at = text.find(before).unwrap_or_else(|| panic!("{page} no longer says {before:?}"));
    let rest = &text[at + before.len()..];
    let number: String = rest.trim_start().chars().take_while(char::is_ascii_digit).collect();
    let n: i64 = number.parse().unwrap_or_else(|_| panic!("{page}: no number after {before:?}"));
    let unit = rest.trim_start()[number.len()..].trim_start();
    if unit.starts_with("minute") { n * 60 } else { n }
}

/// The fan-out's claim lasts what docs/architecture.md promises (a crashed run's notification is
/// due again that long after its last progress), and longer than the fan-out function may run,
/// so a live run never loses its claim to a tick.
#[test]
fn the_fan_out_lease_is_the_promised_one_and_outlives_its_function() {
    let promised = promised_seconds("docs/architecture.md", "due time moved to the lease expiry (");
    assert_eq!(shared::service::fanout::LEASE_SECONDS, promised, "docs/architecture.md's lease");
    let template = read_template(&tests::template_path()).unwrap();
    let timeout = template["Resources"]["FanoutFunction"]["Properties"]["Timeout"].as_i64().unwrap();
    assert!(promised > timeout, "the lease {promised}s outlives the fan-out function's {timeout}s");
}

/// An idempotency key held by a request still working is held for what the group-send page
/// promises, longer than the timeout of every function that serves requests (a request killed at
/// its timeout frees its key for the retry, rather than pinning it for a day).
#[test]
fn an_idempotency_key_in_progress_is_held_the_promised_time() {
    let promised = promised_seconds("docs/api/group-send.md", "one still working holds it for");
    assert_eq!(
        shared::service::idempotency::IN_PROGRESS_SECONDS,
        promised,
        "docs/api/group-send.md's window"
    );
    let template = read_template(&tests::template_path()).unwrap();
    let global = template["Globals"]["Function"]["Timeout"].as_i64().unwrap();
    let mut serving = 0;
    for (id, _, _, function) in functions() {
        let events = function["Properties"]["Events"].as_mapping().cloned().unwrap_or_default();
        if !events.values().any(|e| e["Type"].as_str() == Some("HttpApi")) {
            continue;
        }
        serving += 1;
        let timeout = function["Properties"]["Timeout"].as_i64().unwrap_or(global);
        assert!(promised > timeout, "{id}: the key's {promised}s outlive its timeout {timeout}s");
    }
    assert!(serving >= 3, "send, notify and the inbox serve requests with keys");
}
