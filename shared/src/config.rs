//! Typed configuration, read once at cold start from the environment; a missing or malformed
//! variable stops the function at init with a message naming it.

use std::fmt::Debug;
use std::str::FromStr;

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
    /// Write shards of the "pending by due time" index (spreads hot partitions).
    pub pending_shards: u32,
    /// Recipients per delivery message.
    pub chunk_size: usize,
    /// Receives of a queue message before it moves to its DLQ (the queues' redrive policy).
    pub max_receive_count: u32,
    /// Recipients a company's group sends may reach per UTC day.
    pub daily_recipient_cap: u64,
    /// Where callbacks may go besides public addresses (`OUTBOUND_ALLOW_CIDRS`).
    pub outbound: crate::adapters::outbound::OutboundPolicy,
}

impl Config {
    pub const NOTIFICATIONS_TABLE: &'static str = "NOTIFICATIONS_TABLE";
    pub const INBOX_TABLE: &'static str = "INBOX_TABLE";
    pub const DIRECTORY_TABLE: &'static str = "DIRECTORY_TABLE";
    pub const FANOUT_QUEUE_URL: &'static str = "FANOUT_QUEUE_URL";
    pub const DELIVERY_QUEUE_URL: &'static str = "DELIVERY_QUEUE_URL";
    pub const PENDING_SHARDS: &'static str = "PENDING_SHARDS";
    pub const CHUNK_SIZE: &'static str = "CHUNK_SIZE";
    pub const MAX_RECEIVE_COUNT: &'static str = "MAX_RECEIVE_COUNT";
    pub const OUTBOUND_ALLOW_CIDRS: &'static str = "OUTBOUND_ALLOW_CIDRS";
    pub const DAILY_RECIPIENT_CAP: &'static str = "DAILY_RECIPIENT_CAP";
    pub const DEFAULT_DAILY_RECIPIENT_CAP: u64 = 5_000_000;

    pub const DEFAULT_PENDING_SHARDS: u32 = 4;
    pub const DEFAULT_CHUNK_SIZE: usize = 500;
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
            pending_shards: parse_or(&lookup, Self::PENDING_SHARDS, Self::DEFAULT_PENDING_SHARDS)?,
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
        };
        if !(1..=64).contains(&config.pending_shards) {
            return Err(ConfigError::Invalid { var: Self::PENDING_SHARDS, reason: "must be 1..=64".into() });
        }
        if !(1..=5000).contains(&config.chunk_size) {
            return Err(ConfigError::Invalid { var: Self::CHUNK_SIZE, reason: "must be 1..=5000".into() });
        }
        Ok(config)
    }
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
    ];

    #[test]
    fn reads_required_and_defaults() {
        let c = Config::from_lookup(env(FULL)).unwrap();
        assert_eq!(c.inbox_table, "i");
        assert_eq!(c.pending_shards, Config::DEFAULT_PENDING_SHARDS);
        assert_eq!(c.chunk_size, Config::DEFAULT_CHUNK_SIZE);
    }

    #[test]
    fn names_the_missing_variable() {
        let err = Config::from_lookup(env(&FULL[..4])).unwrap_err();
        assert_eq!(err, ConfigError::Missing("DELIVERY_QUEUE_URL"));
        assert!(err.to_string().contains("DELIVERY_QUEUE_URL"));
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
