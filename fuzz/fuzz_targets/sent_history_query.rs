//! Any bytes as a query string (`k=v&k=v`): the parser answers Ok or a parameter error.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let pairs: Vec<(String, String)> = text
        .split('&')
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let _ = shared::dialects::sent_history::parse(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()));
});
