//! `hub rp ...` and `hub idp ...`: the admin API's command-line client, for changing the
//! registry of a running deployment (docs/operations.md, "The registry").

use std::io::Read as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::Value;

/// Where the admin API is and how to authenticate there.
#[derive(Args, Debug)]
pub(crate) struct Connection {
    /// The hub's base URL (default: server.public_url of the configuration).
    #[arg(long, env = "HUB_ADMIN_URL", global = true)]
    hub_url: Option<String>,
    /// An operator's client id (`[[operators]]` in the hub's configuration).
    #[arg(long, env = "HUB_ADMIN_CLIENT_ID", global = true)]
    client_id: Option<String>,
    /// Its secret; prefer the environment variable to the command line.
    #[arg(
        long,
        env = "HUB_ADMIN_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    client_secret: Option<String>,
    /// Print the API's JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand, Debug)]
pub(crate) enum RegistryCommand {
    /// Register one from a settings document (JSON, or TOML when the file ends in .toml;
    /// `-` reads JSON from stdin), with the fields of its configuration section.
    Add { file: PathBuf },
    /// Show one (secrets are never shown).
    Show { id: String },
    /// List every one, retired ones included.
    List,
    /// Change settings: a merge-patch document (as for add), and/or `--set name=value`
    /// (the value as JSON when it parses, else as a string; `null` removes a setting).
    Update {
        id: String,
        file: Option<PathBuf>,
        #[arg(long = "set", value_name = "NAME=VALUE")]
        set: Vec<String>,
    },
    /// Stop offering it (identity provider) or serving it (relying party) at once.
    Disable { id: String },
    /// Serve it again after `disable`.
    Enable { id: String },
    /// Retire it for good: its id can never be used again.
    Retire { id: String },
}

/// Runs `command` for `collection` (`relying-parties` or `identity-providers`).
pub(crate) async fn run(
    collection: &str,
    command: RegistryCommand,
    connection: Connection,
    settings: &hub::Settings,
) -> anyhow::Result<()> {
    let base = connection
        .hub_url
        .clone()
        .unwrap_or_else(|| settings.server.public_url.to_string());
    let base = base.trim_end_matches('/').to_owned();
    let http = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()?;
    let token = access_token(&http, &base, &connection).await?;
    let url = |path: &str| format!("{base}/admin/v1/{collection}{path}");
    let segment =
        |id: &str| -> String { url::form_urlencoded::byte_serialize(id.as_bytes()).collect() };
    let request = match &command {
        RegistryCommand::Add { file } => http.post(url("")).json(&document(file)?),
        RegistryCommand::Show { id } => http.get(url(&format!("/{}", segment(id)))),
        RegistryCommand::List => http.get(url("")),
        RegistryCommand::Update { id, file, set } => http
            .patch(url(&format!("/{}", segment(id))))
            .json(&patch(file.as_deref(), set)?),
        RegistryCommand::Disable { id } => http.post(url(&format!("/{}/disable", segment(id)))),
        RegistryCommand::Enable { id } => http.post(url(&format!("/{}/enable", segment(id)))),
        RegistryCommand::Retire { id } => http.post(url(&format!("/{}/retire", segment(id)))),
    };
    let response = request.bearer_auth(token).send().await?;
    let status = response.status();
    let answer = response.text().await.context("reading the hub's answer")?;
    let body: Value = serde_json::from_str(&answer)
        .with_context(|| format!("{status}: the hub's answer is not JSON"))?;
    if !status.is_success() {
        bail!(
            "{status}: {}",
            body["error_description"]
                .as_str()
                .unwrap_or("no description")
        );
    }
    if connection.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else if let Some(items) = body["items"].as_array() {
        println!(
            "{:<24} {:<9} {:<7} {:>8}  NAME",
            "ID", "STATUS", "SOURCE", "REVISION"
        );
        for item in items {
            println!(
                "{:<24} {:<9} {:<7} {:>8}  {}",
                text(&item["id"]),
                text(&item["status"]),
                text(&item["source"]),
                item["revision"],
                text(&item["settings"]["name"])
            );
        }
    } else {
        println!(
            "{} {}: {} (revision {}, by {} at {})",
            collection.trim_end_matches('s').replace("ie", "y"),
            text(&body["id"]),
            text(&body["status"]),
            body["revision"],
            text(&body["updated_by"]),
            text(&body["updated_at"])
        );
        if matches!(command, RegistryCommand::Show { .. }) {
            println!("{}", serde_json::to_string_pretty(&body["settings"])?);
        }
    }
    Ok(())
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

/// An operator's access token from the hub's `/token` (client credentials, scope admin).
async fn access_token(
    http: &reqwest::Client,
    base: &str,
    connection: &Connection,
) -> anyhow::Result<String> {
    let (Some(id), Some(secret)) = (&connection.client_id, &connection.client_secret) else {
        bail!("set HUB_ADMIN_CLIENT_ID and HUB_ADMIN_CLIENT_SECRET (an operator's client)");
    };
    let response = http
        .post(format!("{base}/token"))
        .basic_auth(form_encode(id), Some(form_encode(secret)))
        .form(&[("grant_type", "client_credentials"), ("scope", "admin")])
        .send()
        .await
        .with_context(|| format!("reaching {base}/token"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .context("reading the token response")?;
    match body["access_token"].as_str() {
        Some(token) if status.is_success() => Ok(token.to_owned()),
        _ => bail!(
            "the hub refused the operator's credentials ({status}): {}",
            body["error_description"]
                .as_str()
                .unwrap_or("no description")
        ),
    }
}

/// RFC 6749 §2.3.1: client credentials in Basic are form-encoded first.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A settings document from `file` (`-`: stdin), JSON or TOML.
fn document(file: &Path) -> anyhow::Result<Value> {
    let text = if file == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        text
    } else {
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
    };
    if file.extension().is_some_and(|e| e == "toml") {
        let value: toml::Value = toml::from_str(&text).context("parsing TOML")?;
        Ok(toml_to_json(value))
    } else {
        serde_json::from_str(&text).context("parsing JSON")
    }
}

/// TOML as the JSON the API takes: a TOML date-time becomes its RFC 3339 text.
fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => Value::from(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The merge patch of `update`: the file's document, then each `--set`.
fn patch(file: Option<&Path>, set: &[String]) -> anyhow::Result<Value> {
    let mut patch = match file {
        Some(file) => document(file)?,
        None => Value::Object(serde_json::Map::new()),
    };
    let Some(fields) = patch.as_object_mut() else {
        bail!("the patch must be a JSON object");
    };
    for assignment in set {
        let Some((name, value)) = assignment.split_once('=') else {
            bail!("--set {assignment:?}: expected NAME=VALUE");
        };
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.into()));
        fields.insert(name.to_owned(), value);
    }
    if fields.is_empty() {
        bail!("nothing to change: give a file or --set NAME=VALUE");
    }
    Ok(patch)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn set_values_are_json_when_they_parse() {
        let patch = patch(
            None,
            &[
                "temporarily_unavailable=Back at 6pm".into(),
                "relying_parties=[\"pilot\"]".into(),
                "registration_until=null".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            patch,
            serde_json::json!({
                "temporarily_unavailable": "Back at 6pm",
                "relying_parties": ["pilot"],
                "registration_until": null
            })
        );
        assert!(super::patch(None, &[]).is_err());
        let toml: toml::Value =
            toml::from_str("certified_until = 2027-01-01T00:00:00Z\nmax_level = \"P2\"").unwrap();
        assert_eq!(
            toml_to_json(toml),
            serde_json::json!({"certified_until": "2027-01-01T00:00:00Z", "max_level": "P2"})
        );
        assert!(super::patch(None, &["no-equals".into()]).is_err());
    }
}
