//! Creates the template's DynamoDB tables, SQS queues, SES identity and configuration set on an
//! endpoint (moto, or an account for a quick experiment), reading `template.yaml` itself so the
//! template and the code cannot drift. Resource names get a prefix, so parallel tests each have
//! their own. Generated secrets (`AWS::SecretsManager::Secret`) get a random value here, which
//! their `{{resolve:secretsmanager:..}}` references in the environment resolve to.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, LocalSecondaryIndex,
    Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("cannot read the template: {0}")]
    Template(String),
    #[error("cannot create {resource}: {message}")]
    Create { resource: String, message: String },
}

/// What was created: physical names by logical id, and the function environment of the
/// template's `Globals` with every `!Ref` resolved.
#[derive(Debug, Clone, Default)]
pub struct Provisioned {
    pub tables: BTreeMap<String, String>,
    pub queue_urls: BTreeMap<String, String>,
    pub queue_arns: BTreeMap<String, String>,
    /// What `!Ref` of other resources gives (configuration-set names, secret ids).
    pub refs: BTreeMap<String, String>,
    /// Generated secret values by secret id.
    secrets: BTreeMap<String, String>,
    /// The functions' environment: `Globals` and every function's own variables.
    pub env: BTreeMap<String, String>,
}

impl Provisioned {
    pub fn config(&self) -> Result<shared::Config, shared::config::ConfigError> {
        shared::Config::from_lookup(|k| self.env.get(k).cloned())
    }
}

/// Values of the template's parameters for local runs against moto: the sender, which has no
/// default, and the runner's own address for the links in emails (the stack's default, its
/// HTTP API, does not exist here).
pub const LOCAL_PARAMETERS: &[(&str, &str)] =
    &[("PublicApiUrl", "http://127.0.0.1:3000"), ("EmailFromAddress", "notifications@demo.example")];

/// The template, parsed with CloudFormation's short-form tags kept as tagged values.
pub fn read_template(path: &Path) -> Result<Value, ProvisionError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ProvisionError::Template(format!("{}: {e}", path.display())))?;
    serde_yaml_ng::from_str(&text).map_err(|e| ProvisionError::Template(e.to_string()))
}

fn tag_of(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_string(), &t.value)),
        _ => None,
    }
}

fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Resources of the template of one CloudFormation type, by logical id.
pub fn resources_of_type<'a>(template: &'a Value, kind: &str) -> Vec<(String, &'a Value)> {
    let Some(Value::Mapping(resources)) = template.get("Resources") else {
        return Vec::new();
    };
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .filter_map(|(k, r)| Some((k.as_str()?.to_string(), r)))
        .collect()
}

struct Resolver<'a> {
    template: &'a Value,
    parameters: &'a BTreeMap<String, String>,
    done: &'a Provisioned,
}

impl Resolver<'_> {
    /// A property's value: literals as they are, `!Ref` of a parameter (its default) or of a
    /// created resource (table name, queue URL), `!GetAtt Queue.Arn`.
    fn resolve(&self, v: &Value) -> Option<String> {
        if let Some(s) = str_of(v) {
            return Some(s);
        }
        let (tag, inner) = tag_of(v)?;
        match tag.as_str() {
            "Ref" => {
                let name = inner.as_str()?;
                if let Some(t) = self.done.tables.get(name) {
                    return Some(t.clone());
                }
                if let Some(q) = self.done.queue_urls.get(name) {
                    return Some(q.clone());
                }
                if let Some(r) = self.done.refs.get(name) {
                    return Some(r.clone());
                }
                if let Some(p) = self.parameters.get(name) {
                    return Some(p.clone());
                }
                self.template.get("Parameters")?.get(name)?.get("Default").and_then(str_of)
            }
            // `!Sub "text ${Name} text"` with names resolved as `!Ref`, then dynamic references
            // to generated secrets.
            "Sub" => {
                let mut text = inner.as_str()?.to_string();
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}')?;
                    let name = text[start + 2..end].to_string();
                    let value =
                        self.resolve(&Value::Tagged(Box::new(serde_yaml_ng::value::TaggedValue {
                            tag: serde_yaml_ng::value::Tag::new("Ref"),
                            value: Value::String(name),
                        })))?;
                    text.replace_range(start..=end, &value);
                }
                // `{{resolve:secretsmanager:<id>:SecretString[::<version stage>]}}`: the one
                // version a generated secret has here.
                if let Some(id) = text
                    .strip_prefix("{{resolve:secretsmanager:")
                    .and_then(|r| r.strip_suffix("}}"))
                    .and_then(|r| r.rsplit_once(":SecretString").map(|(id, _)| id))
                {
                    return self.done.secrets.get(id).cloned();
                }
                Some(text)
            }
            // `!Select [i, !Split [sep, value]]`.
            "Select" => {
                let seq = inner.as_sequence()?;
                let index: usize = str_of(seq.first()?)?.parse().ok()?;
                let (split, args) = tag_of(seq.get(1)?)?;
                if split != "Split" {
                    return None;
                }
                let args = args.as_sequence()?;
                let separator = args.first()?.as_str()?.to_string();
                let value = self.resolve(args.get(1)?)?;
                value.split(separator.as_str()).nth(index).map(str::to_string)
            }
            "GetAtt" => {
                let target = inner.as_str().map(str::to_string).or_else(|| {
                    let seq = inner.as_sequence()?;
                    Some(format!("{}.{}", seq.first()?.as_str()?, seq.get(1)?.as_str()?))
                })?;
                let (logical, attr) = target.split_once('.')?;
                (attr == "Arn").then(|| self.done.queue_arns.get(logical).cloned()).flatten()
            }
            _ => None,
        }
    }
}

fn key_schema(v: Option<&Value>) -> Vec<KeySchemaElement> {
    v.and_then(Value::as_sequence)
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let name = k.get("AttributeName")?.as_str()?;
            let kind = KeyType::from(k.get("KeyType")?.as_str()?);
            KeySchemaElement::builder().attribute_name(name).key_type(kind).build().ok()
        })
        .collect()
}

fn projection(v: Option<&Value>) -> Projection {
    let kind = v.and_then(|p| p.get("ProjectionType")).and_then(Value::as_str).unwrap_or("ALL");
    let non_key: Option<Vec<String>> = v
        .and_then(|p| p.get("NonKeyAttributes"))
        .and_then(Value::as_sequence)
        .map(|s| s.iter().filter_map(|a| a.as_str().map(str::to_string)).collect());
    Projection::builder().projection_type(ProjectionType::from(kind)).set_non_key_attributes(non_key).build()
}

/// A random byte, from the standard library's per-process random hasher keys (no extra crate
/// for a provisioning helper).
fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() as u8
}

fn create_err(resource: &str, e: impl std::fmt::Display) -> ProvisionError {
    ProvisionError::Create { resource: resource.to_string(), message: e.to_string() }
}

/// Creates every table and queue of the template, names prefixed with `prefix`.
pub async fn provision(
    sdk: &aws_config::SdkConfig,
    template_path: &Path,
    prefix: &str,
    parameters: &BTreeMap<String, String>,
) -> Result<Provisioned, ProvisionError> {
    let template = read_template(template_path)?;
    let dynamo = aws_sdk_dynamodb::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let mut done = Provisioned::default();

    for (logical, resource) in resources_of_type(&template, "AWS::DynamoDB::Table") {
        let props = resource.get("Properties").ok_or_else(|| create_err(&logical, "no Properties"))?;
        let name = format!("{prefix}{logical}");
        let attributes = props
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
            .filter_map(|a| {
                AttributeDefinition::builder()
                    .attribute_name(a.get("AttributeName")?.as_str()?)
                    .attribute_type(ScalarAttributeType::from(a.get("AttributeType")?.as_str()?))
                    .build()
                    .ok()
            })
            .collect::<Vec<_>>();
        let gsis = props.get("GlobalSecondaryIndexes").and_then(Value::as_sequence).map(|s| {
            s.iter()
                .filter_map(|g| {
                    GlobalSecondaryIndex::builder()
                        .index_name(g.get("IndexName")?.as_str()?)
                        .set_key_schema(Some(key_schema(g.get("KeySchema"))))
                        .projection(projection(g.get("Projection")))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        let lsis = props.get("LocalSecondaryIndexes").and_then(Value::as_sequence).map(|s| {
            s.iter()
                .filter_map(|l| {
                    LocalSecondaryIndex::builder()
                        .index_name(l.get("IndexName")?.as_str()?)
                        .set_key_schema(Some(key_schema(l.get("KeySchema"))))
                        .projection(projection(l.get("Projection")))
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>()
        });
        // Only what shapes the data is sent (keys, attributes, indexes; TTL below). Encryption,
        // recovery, deletion protection and `WarmThroughput` are left out on purpose: the last
        // depends on the `TableWarm*` parameters through conditions this resolver does not
        // evaluate (absent at their defaults), and moto has no throughput to warm;
        // scripts/dynamodb_meter.py models it, at the table rate a test arms
        // (`tests::table_write_units`, the template's default).
        dynamo
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(key_schema(props.get("KeySchema"))))
            .set_global_secondary_indexes(gsis)
            .set_local_secondary_indexes(lsis)
            .send()
            .await
            .map_err(|e| create_err(&logical, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        if let Some(ttl) = props.get("TimeToLiveSpecification") {
            let attr = ttl.get("AttributeName").and_then(Value::as_str).unwrap_or("ttl");
            let enabled = ttl.get("Enabled").and_then(Value::as_bool).unwrap_or(true);
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(attr)
                .enabled(enabled)
                .build()
                .map_err(|e| create_err(&logical, e))?;
            dynamo
                .update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| create_err(&logical, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
        }
        done.tables.insert(logical, name);
    }

    // Queues first without redrive (a DLQ must exist before a queue can point at it).
    let queues = resources_of_type(&template, "AWS::SQS::Queue");
    for (logical, resource) in &queues {
        let props = resource.get("Properties");
        let name = format!("{prefix}{logical}");
        let mut req = sqs.create_queue().queue_name(&name);
        for (prop, attr) in [
            ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
            ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
            ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ] {
            if let Some(v) = props.and_then(|p| p.get(prop)).and_then(str_of) {
                req = req.attributes(attr, v);
            }
        }
        let url = req
            .send()
            .await
            .map_err(|e| create_err(logical, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .queue_url
            .ok_or_else(|| create_err(logical, "no queue URL returned"))?;
        let arn = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| create_err(logical, aws_sdk_sqs::error::DisplayErrorContext(e)))?
            .attributes
            .and_then(|mut a| a.remove(&QueueAttributeName::QueueArn))
            .ok_or_else(|| create_err(logical, "no queue ARN returned"))?;
        done.queue_urls.insert(logical.clone(), url);
        done.queue_arns.insert(logical.clone(), arn);
    }
    for (logical, resource) in &queues {
        let Some(redrive) = resource.get("Properties").and_then(|p| p.get("RedrivePolicy")) else {
            continue;
        };
        let resolver = Resolver { template: &template, parameters, done: &done };
        let target = redrive.get("deadLetterTargetArn").and_then(|v| resolver.resolve(v));
        let max = redrive.get("maxReceiveCount").and_then(|v| resolver.resolve(v));
        let (Some(target), Some(max)) = (target, max) else {
            return Err(create_err(logical, "RedrivePolicy needs deadLetterTargetArn and maxReceiveCount"));
        };
        let policy = serde_json::json!({ "deadLetterTargetArn": target, "maxReceiveCount": max.parse::<u32>().unwrap_or(5) });
        sqs.set_queue_attributes()
            .queue_url(&done.queue_urls[logical])
            .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
            .send()
            .await
            .map_err(|e| create_err(logical, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    }

    // Generated secrets: a random value each, as CloudFormation would generate.
    for (logical, _) in resources_of_type(&template, "AWS::SecretsManager::Secret") {
        let id = format!("{prefix}{logical}");
        let value: String = (0..48).map(|_| char::from(b'a' + rand_byte() % 26)).collect();
        done.secrets.insert(id.clone(), value);
        done.refs.insert(logical, id);
    }

    // SES: the sending identity and the configuration set.
    let ses = aws_sdk_sesv2::Client::new(sdk);
    for (logical, resource) in resources_of_type(&template, "AWS::SES::ConfigurationSet") {
        let _ = resource;
        let name = format!("{prefix}{logical}");
        ses.create_configuration_set()
            .configuration_set_name(&name)
            .send()
            .await
            .map_err(|e| create_err(&logical, aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
        done.refs.insert(logical, name);
    }
    for (logical, resource) in resources_of_type(&template, "AWS::SES::EmailIdentity") {
        let resolver = Resolver { template: &template, parameters, done: &done };
        let identity = resource
            .get("Properties")
            .and_then(|p| p.get("EmailIdentity"))
            .and_then(|v| resolver.resolve(v))
            .ok_or_else(|| {
                create_err(&logical, "EmailIdentity does not resolve (a parameter without a value?)")
            })?;
        let exists = ses.get_email_identity().email_identity(&identity).send().await.is_ok();
        if !exists {
            ses.create_email_identity()
                .email_identity(&identity)
                .send()
                .await
                .map_err(|e| create_err(&logical, aws_sdk_sesv2::error::DisplayErrorContext(e)))?;
        }
        done.refs.insert(logical, identity);
    }

    // A WebSocket API has nothing to create here (its connections are the emulator's): its id,
    // and the pseudo parameters its endpoint is made of.
    for (logical, _) in resources_of_type(&template, "AWS::ApiGatewayV2::Api") {
        done.refs.insert(
            logical,
            format!("{prefix}api").to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), ""),
        );
    }
    let region = sdk.region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());
    done.refs.insert("AWS::Region".into(), region);
    done.refs.insert("AWS::URLSuffix".into(), "amazonaws.com".into());

    // The functions' environment: the template's Globals and each function's own variables.
    let variables = |f: &Value| {
        f.get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default()
    };
    let mut vars: Vec<(Value, Value)> = Vec::new();
    if let Some(globals) = template.get("Globals").and_then(|g| g.get("Function")) {
        vars.extend(variables(globals));
    }
    for (_, function) in resources_of_type(&template, "AWS::Serverless::Function") {
        if let Some(props) = function.get("Properties") {
            vars.extend(variables(props));
        }
    }
    let resolver = Resolver { template: &template, parameters, done: &done };
    let env: BTreeMap<String, String> =
        vars.iter().filter_map(|(k, v)| Some((k.as_str()?.to_string(), resolver.resolve(v)?))).collect();
    done.env = env;
    Ok(done)
}
