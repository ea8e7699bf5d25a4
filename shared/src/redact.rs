//! Personal data out of error texts before they are logged. AWS's error messages quote what
//! they refused — SES names the address it would not mail, SNS the token it would not take,
//! DynamoDB the values it could not accept — and callbacks fail with their URL. Every adapter
//! passes its error texts through `redact` when it builds them, so no log line carries them.

/// The text with every email address replaced by `<email>` and every long token-like run
/// (32 or more letters, digits, `-`, `_`, `:`; device tokens, keys) by `<token>`; UUIDs and ARNs
/// are kept, they identify our own records.
pub fn redact(text: &str) -> String {
    let separator = |c: char| c.is_whitespace() || "\"'<>()[]{},;=&?".contains(c);
    let mut out = String::with_capacity(text.len());
    for word in text.split_inclusive(separator) {
        let end = word.len() - word.chars().last().filter(|c| separator(*c)).map_or(0, char::len_utf8);
        let (core, tail) = word.split_at(end);
        out.push_str(&redact_word(core));
        out.push_str(tail);
    }
    out
}

fn redact_word(word: &str) -> String {
    let trimmed = word.trim_matches(|c: char| c == '.' || c == ':');
    if let Some((local, domain)) = trimmed.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
    {
        return word.replace(trimmed, "<email>");
    }
    let is_uuid = uuid::Uuid::parse_str(trimmed).is_ok();
    let tokenish = trimmed.len() >= 32
        && !is_uuid
        && !trimmed.starts_with("arn:")
        && trimmed.chars().all(|c| c.is_ascii_alphanumeric() || "-_:".contains(c))
        && trimmed.chars().any(|c| c.is_ascii_digit());
    if tokenish { word.replace(trimmed, "<token>") } else { word.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_tokens_go_uuids_and_arns_stay() {
        let ses = "MessageRejected: Email address is not verified. The following identities failed the check in region US-EAST-1: Aaron.McMullen@hypermedia.com.au, x@y.io";
        let r = redact(ses);
        assert!(!r.contains("McMullen") && !r.contains("x@y.io"), "{r}");
        assert!(r.contains("<email>, <email>") && r.contains("MessageRejected"), "{r}");
        let sns = "InvalidParameter: Invalid parameter: Token Reason: 0123456789abcdef0123456789abcdef0123456789abcdef is not valid";
        assert!(!redact(sns).contains("0123456789abcdef0123"), "{}", redact(sns));
        let url = "request failed: http://127.0.0.1:1/cb?who=secret.person@private.example&n=1";
        assert!(!redact(url).contains("secret.person"), "{}", redact(url));
        let kept = "notification 0d3b5a52-7c0e-4d6e-9a59-2f2b8c1e0a11 endpoint arn:aws:sns:us-east-1:123456789012:endpoint/GCM/app/0d3b5a52";
        assert_eq!(redact(kept), kept);
        assert_eq!(redact("plain words, nothing personal."), "plain words, nothing personal.");
    }
}
