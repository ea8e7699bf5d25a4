//! Typed configuration, read once at cold start from the environment; a missing or malformed
//! variable stops the function at init with a message naming it.

use std::fmt::Debug;
use std::str::FromStr;

use crate::settings::Settings;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("missing environment variable {0}")]
    Missing(&'static str),
    #[error("environment variable {var} is invalid: {reason}")]
    Invalid { var: &'static str, reason: String },
}

/// Where everything lives and the tunables of fan-out and delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub notifications_table: String,
    pub inbox_table: String,
    pub directory_table: String,
    pub fanout_queue_url: String,
    pub delivery_queue_url: String,
    pub email_queue_url: String,
    /// Status webhooks' deliveries (`WEBHOOK_QUEUE_URL`).
    pub webhook_queue_url: String,
    /// The queue SES's bounces and complaints arrive on (`EMAIL_EVENTS_QUEUE_ARN`): deliver's
    /// alone, which tells its five queues apart by their ARNs.
    pub email_events_queue_arn: Option<String>,
    /// The DeliveryQueue's and EmailQueue's dead-letter queues (`DELIVERY_DEAD_LETTER_QUEUE_ARN`,
    /// `EMAIL_DEAD_LETTER_QUEUE_ARN`): deliver's alone, which settles what reaches them.
    pub delivery_dead_letter_queue_arn: Option<String>,
    pub email_dead_letter_queue_arn: Option<String>,
    /// The account's SES sending rate, emails per second (`EMAIL_SEND_RATE`): email is paced
    /// to it.
    pub email_send_rate: u32,
    /// Write shards of the "pending by due time" index (spreads hot partitions).
    pub pending_shards: u32,
    /// Whether an email's body and parameters are stored apart from its notification
    /// (`EMAIL_CONTENT_APART`, default false: inside it, as earlier versions stored them;
    /// decision 0018). Both shapes are read either way: `true` once every function runs a
    /// version that reads them apart (docs/deploy.md).
    pub email_content_apart: bool,
    /// Recipients per delivery message.
    pub chunk_size: usize,
    /// Receives of a queue message before it moves to its DLQ (the queues' redrive policy).
    pub max_receive_count: u32,
    /// Recipients a company's group sends may reach per UTC day.
    pub daily_recipient_cap: u64,
    /// Where callbacks may go besides public addresses (`OUTBOUND_ALLOW_CIDRS`).
    pub outbound: crate::adapters::outbound::OutboundPolicy,
    /// Sender of emails (`EMAIL_FROM`, a verified SES identity); required where email is sent.
    pub email_from: Option<String>,
    /// SES configuration set emails are sent with (`SES_CONFIGURATION_SET`).
    pub ses_configuration_set: Option<String>,
    /// Base URL of the public API, for links in emails (`PUBLIC_API_URL`); where it is not
    /// given, read at start from the SSM parameter `PUBLIC_API_URL_PARAMETER` names (the stack
    /// writes its own HTTP API's URL there: a function cannot name that API in its environment
    /// without a dependency circle).
    pub public_api_url: Option<String>,
    /// The SSM parameter holding the public API's base URL (`PUBLIC_API_URL_PARAMETER`).
    pub public_api_url_parameter: Option<String>,
    /// Keys of signed links (`LINK_SIGNING_KEY`: keys of at least 32 characters, separated by
    /// white space; the first signs, every one verifies, so that a rotation keeps the links
    /// already sent working).
    pub link_signing_key: Option<String>,
    /// Open realtime connections (`CONNECTIONS_TABLE`), when the stack has its WebSocket API.
    pub connections_table: Option<String>,
    /// The WebSocket API's connection management endpoint (`REALTIME_ENDPOINT`,
    /// `https://{api}.execute-api.{region}.amazonaws.com/{stage}`): where deliveries and marks are
    /// told to open connections.
    pub realtime_endpoint: Option<String>,
    /// The same API as its clients connect to (`REALTIME_URL`, `wss://…/live`): the web inbox's.
    pub realtime_url: Option<String>,
    /// SNS platform applications (`PUSH_APNS_APPLICATION_ARN`, `PUSH_APNS_SANDBOX_APPLICATION_ARN`,
    /// `PUSH_GCM_APPLICATION_ARN`); a platform without one cannot register devices.
    pub push_applications: Vec<(crate::model::Platform, String)>,
}

impl Config {
    pub const NOTIFICATIONS_TABLE: &'static str = "NOTIFICATIONS_TABLE";
    pub const INBOX_TABLE: &'static str = "INBOX_TABLE";
    pub const DIRECTORY_TABLE: &'static str = "DIRECTORY_TABLE";
    pub const FANOUT_QUEUE_URL: &'static str = "FANOUT_QUEUE_URL";
    pub const DELIVERY_QUEUE_URL: &'static str = "DELIVERY_QUEUE_URL";
    pub const EMAIL_QUEUE_URL: &'static str = "EMAIL_QUEUE_URL";
    pub const WEBHOOK_QUEUE_URL: &'static str = "WEBHOOK_QUEUE_URL";
    pub const EMAIL_EVENTS_QUEUE_ARN: &'static str = "EMAIL_EVENTS_QUEUE_ARN";
    pub const DELIVERY_DEAD_LETTER_QUEUE_ARN: &'static str = "DELIVERY_DEAD_LETTER_QUEUE_ARN";
    pub const EMAIL_DEAD_LETTER_QUEUE_ARN: &'static str = "EMAIL_DEAD_LETTER_QUEUE_ARN";
    pub const EMAIL_SEND_RATE: &'static str = "EMAIL_SEND_RATE";
    /// A new SES account's production sending rate, emails per second.
    pub const DEFAULT_EMAIL_SEND_RATE: u32 = 14;
    pub const PENDING_SHARDS: &'static str = "PENDING_SHARDS";
    pub const EMAIL_CONTENT_APART: &'static str = "EMAIL_CONTENT_APART";
    pub const CHUNK_SIZE: &'static str = "CHUNK_SIZE";
    pub const MAX_RECEIVE_COUNT: &'static str = "MAX_RECEIVE_COUNT";
    pub const OUTBOUND_ALLOW_CIDRS: &'static str = "OUTBOUND_ALLOW_CIDRS";
    pub const DAILY_RECIPIENT_CAP: &'static str = "DAILY_RECIPIENT_CAP";
    pub const DEFAULT_DAILY_RECIPIENT_CAP: u64 = Settings::DEFAULT_DAILY_RECIPIENT_CAP;
    pub const EMAIL_FROM: &'static str = "EMAIL_FROM";
    pub const SES_CONFIGURATION_SET: &'static str = "SES_CONFIGURATION_SET";
    pub const PUBLIC_API_URL: &'static str = "PUBLIC_API_URL";
    pub const PUBLIC_API_URL_PARAMETER: &'static str = "PUBLIC_API_URL_PARAMETER";
    pub const LINK_SIGNING_KEY: &'static str = "LINK_SIGNING_KEY";
    pub const CONNECTIONS_TABLE: &'static str = "CONNECTIONS_TABLE";
    pub const REALTIME_ENDPOINT: &'static str = "REALTIME_ENDPOINT";
    pub const REALTIME_URL: &'static str = "REALTIME_URL";
    pub const MIN_LINK_KEY_CHARS: usize = 32;

    /// The environment variable naming the SNS platform application of `platform`.
    pub fn push_application_var(platform: crate::model::Platform) -> &'static str {
        match platform {
            crate::model::Platform::Apns => "PUSH_APNS_APPLICATION_ARN",
            crate::model::Platform::ApnsSandbox => "PUSH_APNS_SANDBOX_APPLICATION_ARN",
            crate::model::Platform::Gcm => "PUSH_GCM_APPLICATION_ARN",
        }
    }

    /// Link settings, for the functions that put links in emails or follow them:
    /// `LINK_SIGNING_KEY` must be set; `PUBLIC_API_URL` is the emails' (the composition reads it
    /// from its parameter where it is not given, `runtime::aws`).
    pub fn channel_settings(&self) -> Result<crate::email::ChannelSettings, ConfigError> {
        let keys = self.link_signing_key.as_deref().ok_or(ConfigError::Missing(Self::LINK_SIGNING_KEY))?;
        let mut keys = keys.split_whitespace().map(|k| k.as_bytes().to_vec());
        let signing = keys.next().ok_or(ConfigError::Missing(Self::LINK_SIGNING_KEY))?;
        Ok(crate::email::ChannelSettings {
            public_api_url: self.public_api_url.as_deref().map(|url| url.trim_end_matches('/').to_string()),
            links: crate::email::LinkSigner::rotated(signing, keys),
            realtime_url: self.realtime_url.clone(),
        })
    }

    pub const DEFAULT_PENDING_SHARDS: u32 = 4;
    /// 2,000 recipients: 80 inbox batch writes per chunk, so that the per-chunk bookkeeping (one
    /// read, one transaction, one completion check) stays within a few percent of the writes;
    /// the message is about 80 KB of the 256 KiB SQS allows.
    pub const DEFAULT_CHUNK_SIZE: usize = Settings::DEFAULT_CHUNK_SIZE;
    pub const DEFAULT_MAX_RECEIVE_COUNT: u32 = 5;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let required = |var: &'static str| -> Result<String, ConfigError> {
            match lookup(var) {
                Some(v) if !v.trim().is_empty() => Ok(v),
                _ => Err(ConfigError::Missing(var)),
            }
        };
        let config = Config {
            notifications_table: required(Self::NOTIFICATIONS_TABLE)?,
            inbox_table: required(Self::INBOX_TABLE)?,
            directory_table: required(Self::DIRECTORY_TABLE)?,
            fanout_queue_url: required(Self::FANOUT_QUEUE_URL)?,
            delivery_queue_url: required(Self::DELIVERY_QUEUE_URL)?,
            email_queue_url: required(Self::EMAIL_QUEUE_URL)?,
            webhook_queue_url: required(Self::WEBHOOK_QUEUE_URL)?,
            email_events_queue_arn: optional(&lookup, Self::EMAIL_EVENTS_QUEUE_ARN),
            delivery_dead_letter_queue_arn: optional(&lookup, Self::DELIVERY_DEAD_LETTER_QUEUE_ARN),
            email_dead_letter_queue_arn: optional(&lookup, Self::EMAIL_DEAD_LETTER_QUEUE_ARN),
            email_send_rate: parse_or(&lookup, Self::EMAIL_SEND_RATE, Self::DEFAULT_EMAIL_SEND_RATE)?,
            pending_shards: parse_or(&lookup, Self::PENDING_SHARDS, Self::DEFAULT_PENDING_SHARDS)?,
            email_content_apart: parse_or(&lookup, Self::EMAIL_CONTENT_APART, false)?,
            chunk_size: parse_or(&lookup, Self::CHUNK_SIZE, Self::DEFAULT_CHUNK_SIZE)?,
            max_receive_count: parse_or(&lookup, Self::MAX_RECEIVE_COUNT, Self::DEFAULT_MAX_RECEIVE_COUNT)?,
            daily_recipient_cap: parse_or(
                &lookup,
                Self::DAILY_RECIPIENT_CAP,
                Self::DEFAULT_DAILY_RECIPIENT_CAP,
            )?,
            outbound: crate::adapters::outbound::OutboundPolicy::with_allowed(
                &lookup(Self::OUTBOUND_ALLOW_CIDRS).unwrap_or_default(),
            )
            .map_err(|reason| ConfigError::Invalid { var: Self::OUTBOUND_ALLOW_CIDRS, reason })?,
            email_from: optional(&lookup, Self::EMAIL_FROM),
            ses_configuration_set: optional(&lookup, Self::SES_CONFIGURATION_SET),
            public_api_url: optional(&lookup, Self::PUBLIC_API_URL),
            public_api_url_parameter: optional(&lookup, Self::PUBLIC_API_URL_PARAMETER),
            link_signing_key: optional(&lookup, Self::LINK_SIGNING_KEY),
            connections_table: optional(&lookup, Self::CONNECTIONS_TABLE),
            realtime_endpoint: optional(&lookup, Self::REALTIME_ENDPOINT),
            realtime_url: optional(&lookup, Self::REALTIME_URL),
            push_applications: crate::model::Platform::ALL
                .into_iter()
                .filter_map(|p| optional(&lookup, Self::push_application_var(p)).map(|arn| (p, arn)))
                .collect(),
        };
        if let Some(url) = &config.public_api_url
            && !is_http_url(url)
        {
            return Err(ConfigError::Invalid {
                var: Self::PUBLIC_API_URL,
                reason: "must be an http(s) URL".into(),
            });
        }
        if let Some(keys) = &config.link_signing_key
            && (keys.split_whitespace().next().is_none()
                || keys.split_whitespace().any(|k| k.len() < Self::MIN_LINK_KEY_CHARS))
        {
            return Err(ConfigError::Invalid {
                var: Self::LINK_SIGNING_KEY,
                reason: format!(
                    "must be keys of at least {} characters each, separated by spaces",
                    Self::MIN_LINK_KEY_CHARS
                ),
            });
        }
        if let Some((p, arn)) = config.push_applications.iter().find(|(_, arn)| !arn.starts_with("arn:")) {
            return Err(ConfigError::Invalid {
                var: Self::push_application_var(*p),
                reason: format!("{arn:?} is not an ARN"),
            });
        }
        if !(1..=64).contains(&config.pending_shards) {
            return Err(ConfigError::Invalid { var: Self::PENDING_SHARDS, reason: "must be 1..=64".into() });
        }
        if config.email_send_rate == 0 {
            return Err(ConfigError::Invalid {
                var: Self::EMAIL_SEND_RATE,
                reason: "must be at least 1".into(),
            });
        }
        if !(1..=5000).contains(&config.chunk_size) {
            return Err(ConfigError::Invalid { var: Self::CHUNK_SIZE, reason: "must be 1..=5000".into() });
        }
        Ok(config)
    }
}

/// An optional variable: unset and blank are the same (CloudFormation passes empty parameters).
/// Whether `url` is an http(s) URL, as the public API's base must be.
pub fn is_http_url(url: &str) -> bool {
    url.starts_with("https://") || url.starts_with("http://")
}

fn optional(lookup: &impl Fn(&str) -> Option<String>, var: &str) -> Option<String> {
    lookup(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

fn parse_or<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: Debug,
{
    match lookup(var) {
        None => Ok(default),
        Some(v) => {
            v.trim().parse().map_err(|e| ConfigError::Invalid { var, reason: format!("{v:?}: {e:?}") })
        }
    }
}

impl Config {
    /// The services' tunables as configured (a Lambda function).
    pub fn settings(&self) -> Settings {
        Settings {
            callback_retry: crate::settings::CALLBACK_RETRY,
            email_sending: crate::settings::EmailSending::for_account_rate(f64::from(self.email_send_rate)),
            push_retry: crate::settings::PUSH_RETRY,
            hand_overs: crate::settings::HAND_OVERS,
            daily_recipient_cap: self.daily_recipient_cap,
            chunk_size: self.chunk_size,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| map.get(k).cloned()
    }

    const FULL: &[(&str, &str)] = &[
        ("NOTIFICATIONS_TABLE", "n"),
        ("INBOX_TABLE", "i"),
        ("DIRECTORY_TABLE", "d"),
        ("FANOUT_QUEUE_URL", "http://q/f"),
        ("DELIVERY_QUEUE_URL", "http://q/d"),
        ("EMAIL_QUEUE_URL", "http://q/e"),
        ("WEBHOOK_QUEUE_URL", "http://q/w"),
    ];

    #[test]
    fn reads_required_and_defaults() {
        let c = Config::from_lookup(env(FULL)).unwrap();
        assert_eq!(c.inbox_table, "i");
        assert_eq!(c.pending_shards, Config::DEFAULT_PENDING_SHARDS);
        assert_eq!(c.chunk_size, Config::DEFAULT_CHUNK_SIZE);
        assert!(!c.email_content_apart, "emails' content inside the notification unless told otherwise");
        let mut pairs = FULL.to_vec();
        pairs.push(("EMAIL_CONTENT_APART", "true"));
        assert!(Config::from_lookup(env(&pairs)).unwrap().email_content_apart);
        pairs.pop();
        pairs.push(("EMAIL_CONTENT_APART", "no"));
        assert!(matches!(
            Config::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid { var: "EMAIL_CONTENT_APART", .. })
        ));
    }

    #[test]
    fn names_the_missing_variable() {
        let err = Config::from_lookup(env(&FULL[..4])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DELIVERY_QUEUE_URL"));
        assert!(err.to_string().contains("DELIVERY_QUEUE_URL"));
    }

    #[test]
    fn channel_settings_need_url_and_a_long_key() {
        let c = Config::from_lookup(env(FULL)).unwrap();
        assert_eq!(c.channel_settings().unwrap_err(), ConfigError::Missing("LINK_SIGNING_KEY"));
        assert!(c.push_applications.is_empty());
        let mut pairs = FULL.to_vec();
        pairs.extend([
            ("PUBLIC_API_URL", "https://api.example/"),
            ("LINK_SIGNING_KEY", "0123456789abcdef0123456789abcdef"),
            ("PUSH_GCM_APPLICATION_ARN", "arn:aws:sns:eu-west-1:1:app/GCM/a"),
            ("PUSH_APNS_APPLICATION_ARN", ""),
        ]);
        let c = Config::from_lookup(env(&pairs)).unwrap();
        assert_eq!(c.channel_settings().unwrap().public_api_url.as_deref(), Some("https://api.example"));
        assert_eq!(
            c.push_applications,
            vec![(crate::model::Platform::Gcm, "arn:aws:sns:eu-west-1:1:app/GCM/a".into())]
        );
        let mut short = FULL.to_vec();
        short.push(("LINK_SIGNING_KEY", "short"));
        assert!(matches!(
            Config::from_lookup(env(&short)),
            Err(ConfigError::Invalid { var: "LINK_SIGNING_KEY", .. })
        ));
        // A rotation: the new key, then the old one; each of them long, none missing.
        const NEW: &str = "NEWNEWNEWNEWNEWNEWNEWNEWNEWNEWNEW";
        const OLD: &str = "0123456789abcdef0123456789abcdef";
        let mut rotated = FULL.to_vec();
        rotated.extend([
            ("PUBLIC_API_URL", "https://api.example"),
            ("LINK_SIGNING_KEY", "NEWNEWNEWNEWNEWNEWNEWNEWNEWNEWNEW \n 0123456789abcdef0123456789abcdef"),
        ]);
        let links = Config::from_lookup(env(&rotated)).unwrap().channel_settings().unwrap().links;
        let u = uuid::Uuid::from_u128(1);
        assert_eq!(links.sign(u, 4), crate::email::LinkSigner::new(NEW.as_bytes().to_vec()).sign(u, 4));
        assert!(links.verify(u, 4, &crate::email::LinkSigner::new(OLD.as_bytes().to_vec()).sign(u, 4)));
        for keys in ["0123456789abcdef0123456789abcdef short", "short 0123456789abcdef0123456789abcdef"] {
            let mut bad = FULL.to_vec();
            bad.push(("LINK_SIGNING_KEY", keys));
            assert!(
                matches!(
                    Config::from_lookup(env(&bad)),
                    Err(ConfigError::Invalid { var: "LINK_SIGNING_KEY", .. })
                ),
                "{keys:?}"
            );
        }
        let mut bad = FULL.to_vec();
        bad.push(("PUSH_GCM_APPLICATION_ARN", "my-app"));
        assert!(matches!(
            Config::from_lookup(env(&bad)),
            Err(ConfigError::Invalid { var: "PUSH_GCM_APPLICATION_ARN", .. })
        ));
    }

    #[test]
    fn names_the_malformed_variable() {
        let mut pairs = FULL.to_vec();
        pairs.push(("CHUNK_SIZE", "lots"));
        let err = Config::from_lookup(env(&pairs)).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { var: "CHUNK_SIZE", .. }), "{err}");
        let mut pairs = FULL.to_vec();
        pairs.push(("PENDING_SHARDS", "0"));
        assert!(matches!(
            Config::from_lookup(env(&pairs)),
            Err(ConfigError::Invalid { var: "PENDING_SHARDS", .. })
        ));
    }
}
