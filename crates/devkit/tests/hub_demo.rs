//! `hub-demo`, as `make run` starts it: the hub, the demo IdP and the demo RP come up
//! from config/demo.toml (on free ports here), answer, and stop on SIGTERM.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Kills the demo if the test fails before stopping it.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for(client: &reqwest::Client, url: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(response) = client.get(url).send().await {
            return response;
        }
        assert!(
            Instant::now() < deadline,
            "{url} did not answer within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn hub_demo_serves_the_three_parties_and_stops_on_sigterm() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let ports = [free_port(), free_port(), free_port()];
    let config = std::fs::read_to_string(root.join("config/demo.toml"))
        .expect("config/demo.toml")
        .replace(":8080", &format!(":{}", ports[0]))
        .replace(":8081", &format!(":{}", ports[1]))
        .replace(":8082", &format!(":{}", ports[2]));
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("demo.toml");
    std::fs::write(&config_path, config).expect("write config");
    let child = Command::new(env!("CARGO_BIN_EXE_hub-demo"))
        .arg("--config")
        .arg(&config_path)
        .current_dir(&root)
        .env_remove("HUB_CONFIG")
        .env("HUB_DATA__DIR", dir.path().join("data"))
        .env(
            "HUB_DATABASE__URL",
            format!("sqlite://{}/hub.db", dir.path().display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("hub-demo starts");
    let mut demo = Running(child);

    let client = reqwest::Client::new();
    let [hub, idp, rp] = ports.map(|p| format!("http://127.0.0.1:{p}"));
    let home = wait_for(&client, &rp).await;
    assert_eq!(home.status(), reqwest::StatusCode::OK);
    let page = home.text().await.expect("body");
    assert!(page.contains("Prove your identity"), "{page}");
    for issuer in [&hub, &idp] {
        let discovery: serde_json::Value = wait_for(
            &client,
            &format!("{issuer}/.well-known/openid-configuration"),
        )
        .await
        .json()
        .await
        .expect("discovery JSON");
        assert_eq!(discovery["issuer"], issuer.as_str(), "{discovery}");
    }

    let pid = demo.0.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = demo.0.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "hub-demo ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "hub-demo exited with {status}");
}
