//! Bad input never panics and never answers 5xx, on every route of the API (the list comes from
//! the route table, and a route without a sample fails `every_route_has_a_sample`): arbitrary
//! bytes, arbitrary JSON, arbitrary query strings, valid requests with one field replaced by
//! arbitrary JSON, and valid requests with one query parameter (each route's own, from
//! `openapi.yaml`) set to arbitrary text — on memory (generated) and on moto (a fixed set). Bodies over Lambda's 6 MB
//! synchronous payload cap answer 413 on every route.

use proptest::prelude::*;
use serde_json::{Value, json};
use shared::runtime::Ports;
use tests::routes::{Sample, call, samples};

/// Every route of the API (`tests::routes`, from the route table the template matches).
fn routes() -> Vec<Sample> {
    samples()
}

/// The routes that read a body, with a valid one to mutate.
fn body_routes() -> Vec<Sample> {
    samples().into_iter().filter(|s| s.valid.is_some()).collect()
}

/// The query parameters `openapi.yaml` documents for a route (its own and its path's, `$ref`s
/// resolved).
fn query_parameters(method: &str, path: &str) -> Vec<String> {
    use std::sync::OnceLock;
    static SPEC: OnceLock<serde_yaml_ng::Value> = OnceLock::new();
    let spec = SPEC.get_or_init(|| {
        let text = std::fs::read_to_string(tests::repo_root().join("openapi.yaml")).expect("openapi.yaml");
        serde_yaml_ng::from_str(&text).expect("openapi.yaml parses")
    });
    let resolve = |p: &serde_yaml_ng::Value| -> serde_yaml_ng::Value {
        match p.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => {
                let name = r.rsplit('/').next().expect("a reference");
                spec["components"]["parameters"][name].clone()
            }
            None => p.clone(),
        }
    };
    let item = &spec["paths"][path];
    let own = item[method.to_lowercase().as_str()]["parameters"].as_sequence().cloned().unwrap_or_default();
    let shared = item["parameters"].as_sequence().cloned().unwrap_or_default();
    own.iter()
        .chain(shared.iter())
        .map(resolve)
        .filter(|p| p["in"].as_str() == Some("query"))
        .filter_map(|p| p["name"].as_str().map(str::to_string))
        .collect()
}

/// The routes that take query parameters, each with their names.
fn query_routes() -> Vec<(Sample, Vec<String>)> {
    samples()
        .into_iter()
        .map(|s| {
            let names = query_parameters(s.method, s.path);
            (s, names)
        })
        .filter(|(_, names)| !names.is_empty())
        .collect()
}

/// `query` with parameter `name` set to `value` (percent-encoded), replacing it or added.
fn with_parameter(query: &str, name: &str, value: &str) -> String {
    let encoded: String = value
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some(name))
        .map(str::to_string)
        .collect();
    pairs.push(format!("{name}={encoded}"));
    pairs.join("&")
}

async fn status(ports: &Ports, route: &Sample, body: Vec<u8>, query: &str) -> u16 {
    call(ports, route, body, query).await.status().as_u16()
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1e300f64..1e300).prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("x".repeat(3000))),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid body with the value at one (possibly nested, possibly new) key replaced.
fn mutate(mut body: Value, path: &[usize], replacement: Value, new_key: Option<String>) -> Value {
    let mut cursor = &mut body;
    for (depth, &i) in path.iter().enumerate() {
        let Value::Object(map) = cursor else { break };
        if map.is_empty() {
            break;
        }
        let key = map.keys().nth(i % map.len()).cloned().expect("non-empty");
        let last = depth + 1 == path.len() || !map[&key].is_object();
        if last {
            match &new_key {
                Some(k) => map.insert(k.clone(), replacement),
                None => map.insert(key, replacement),
            };
            return body;
        }
        cursor = map.get_mut(&key).expect("present");
    }
    body
}

fn runtime_and_ports() -> (tokio::runtime::Runtime, Ports) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let ports = rt.block_on(async { tests::Env::memory().await.ports });
    (rt, ports)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_5xx(bytes in prop::collection::vec(any::<u8>(), 0..512), which in any::<prop::sample::Index>()) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let route = which.get(&routes);
        let got = rt.block_on(status(&ports, route, bytes, route.query));
        prop_assert!(got < 500, "{} {} answered {got}", route.method, route.path);
    }

    #[test]
    fn arbitrary_json_never_5xx(value in json_value(), which in any::<prop::sample::Index>()) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let route = which.get(&routes);
        let got = rt.block_on(status(&ports, route, value.to_string().into_bytes(), route.query));
        prop_assert!(got < 500, "{} {} answered {got} to {value}", route.method, route.path);
    }

    #[test]
    fn one_bad_field_never_5xx(
        which in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 1..4),
        replacement in json_value(),
        new_key in prop::option::of("[a-zA-Z@.]{1,12}"),
    ) {
        let (rt, ports) = runtime_and_ports();
        let routes = body_routes();
        let route = which.get(&routes);
        let body = mutate((route.valid.expect("a body route"))(), &path, replacement, new_key);
        let got = rt.block_on(status(&ports, route, body.to_string().into_bytes(), route.query));
        prop_assert!(got < 500, "{} {} answered {got} to {body}", route.method, route.path);
    }

    #[test]
    fn one_bad_query_parameter_never_5xx(
        which in any::<prop::sample::Index>(),
        parameter in any::<prop::sample::Index>(),
        value in prop_oneof!["\\PC{0,40}", "-?[0-9]{1,25}", "[0-9a-f-]{0,40}"],
    ) {
        let (rt, ports) = runtime_and_ports();
        let routes = query_routes();
        let (route, names) = which.get(&routes);
        let name: &String = parameter.get(names);
        let query = with_parameter(route.query, name, &value);
        let body = route.valid.map(|v| v().to_string().into_bytes()).unwrap_or_default();
        let got = rt.block_on(status(&ports, route, body, &query));
        prop_assert!(got < 500, "{} {} answered {got} for {query}", route.method, route.path);
    }

    #[test]
    fn query_strings_never_5xx(query in "[a-zA-Z=&%0-9._~-]{0,80}", which in any::<prop::sample::Index>()) {
        let (rt, ports) = runtime_and_ports();
        let routes = routes();
        let route = which.get(&routes);
        let body = route.valid.map(|v| v().to_string().into_bytes()).unwrap_or_default();
        let got = rt.block_on(status(&ports, route, body, &query));
        prop_assert!(got < 500, "{} {} answered {got} for {query}", route.method, route.path);
    }
}

/// The documented query parameters are found (the property above has routes to try).
#[test]
fn query_parameters_come_from_openapi() {
    let routes: std::collections::BTreeMap<String, Vec<String>> =
        query_routes().into_iter().map(|(s, names)| (format!("{} {}", s.method, s.path), names)).collect();
    assert!(routes["GET /rest/notification/sent"].contains(&"eventUUID".to_string()), "{routes:?}");
    assert!(routes["GET /users/{userId}/notifications"].contains(&"since".to_string()), "{routes:?}");
}

/// Every route of the table has a sample here (a new route fails until it has one).
#[test]
fn every_route_has_a_sample() {
    let sampled: std::collections::BTreeSet<(&str, &str)> =
        samples().iter().map(|s| (s.method, s.path)).collect();
    let routes: std::collections::BTreeSet<(&str, &str)> =
        local::routes::ROUTES.iter().map(|r| (r.method, r.path)).collect();
    assert_eq!(sampled, routes, "routes and their bad-input samples");
}

/// The same inputs on moto, every route: malformed, empty, wrong-typed, oversized values and a
/// garbage query string.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_moto_never_5xx() {
    let env = tests::Env::moto().await;
    let inputs: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        vec![0xff, 0xfe, 0x00],
        json!({"version": 99999999999999999u64}).to_string().into_bytes(),
        json!({"a": "x".repeat(9000)}).to_string().into_bytes(),
    ];
    let mut calls = 0;
    for route in routes() {
        for body in &inputs {
            for query in [
                route.query,
                "limit=-1&nextToken=%ff&since=yesterday&version=1&broadcastType=GE",
                "version=1&broadcastType=GE&eventUUID=not-a-uuid&companyId=-3&brochureId=x&notificationScheduleId=9007199254740993",
                "status=everything&deliveredSince=%F0%9F%92%A5&limit=99999999999999999999&ticket=..",
            ] {
                let got = status(&env.ports, &route, body.clone(), query).await;
                assert!(
                    got < 500,
                    "{} {} answered {got} to {:?}?{query}",
                    route.method,
                    route.path,
                    String::from_utf8_lossy(body)
                );
                calls += 1;
            }
        }
        if let Some(valid) = route.valid {
            for (i, replacement) in
                [json!(null), json!(-1), json!("x".repeat(20_000)), json!({"deep": [[[]]]})]
                    .into_iter()
                    .enumerate()
            {
                let body = mutate(valid(), &[i], replacement, None);
                let got = status(&env.ports, &route, body.to_string().into_bytes(), route.query).await;
                assert!(got < 500, "{} {} answered {got} to {body}", route.method, route.path);
                calls += 1;
            }
        }
    }
    println!("bad input on moto: {calls} calls over {} routes, none 5xx", routes().len());
}

#[tokio::test]
async fn the_valid_bodies_are_valid() {
    let env = tests::Env::memory().await;
    for route in body_routes() {
        // A correction is of a send that went out: the samples' send 1 (made by the send route's
        // valid body, changed by the change route's while pending) goes out first.
        if route.path.ends_with("/correct") {
            local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
        }
        let body = (route.valid.expect("a body route"))().to_string().into_bytes();
        // A department message's or an in-app notification's correction: of one that went out
        // to the samples' user, sent by its dialect's own sample.
        let got = match sent_by_sample(&env, route.path).await {
            Some(id) => tests::routes::call_on(&env.ports, &route, body, &id).await.status().as_u16(),
            None => status(&env.ports, &route, body, route.query).await,
        };
        assert!((200..300).contains(&got), "{} {} answered {got}", route.method, route.path);
    }
}

/// For a route that names a department message or an in-app notification, one sent (and
/// delivered) by the sample of its dialect's send: its id.
async fn sent_by_sample(env: &tests::Env, path: &str) -> Option<String> {
    let (send, field) = if path.contains("{notificationMessageUUID}") {
        ("/communications/department/{departmentUUID}/user/{userUUID}/notify", "notificationMessageUUID")
    } else if path.contains("{NotificationId}") {
        ("/api/data/v9.2/SendAppNotification", "NotificationId")
    } else {
        return None;
    };
    let sample = samples().into_iter().find(|s| s.path == send).expect("the dialect's send sample");
    let body = (sample.valid.expect("a send reads a body"))().to_string().into_bytes();
    let resp = tests::routes::call(&env.ports, &sample, body, sample.query).await;
    let text = shared::http::body_text(&resp);
    assert_eq!(resp.status(), 200, "{send}: {text}");
    local::workers::run_until_idle(&env.ports, env.max_receives).await.unwrap();
    let answer: Value = serde_json::from_str(&text).expect("JSON");
    Some(answer[field].as_str().expect("the notification's id").to_string())
}

#[tokio::test]
async fn oversized_bodies_answer_413_on_every_route() {
    let env = tests::Env::memory().await;
    let huge = vec![b'{'; shared::http::MAX_BODY_BYTES + 1];
    for route in routes() {
        assert_eq!(
            status(&env.ports, &route, huge.clone(), route.query).await,
            413,
            "{} {}",
            route.method,
            route.path
        );
    }
}
