//! The wire structs round-trip Docker's own responses: every key in the golden files is
//! known, typed right, and comes back out with the same value (nulls included).

use berth_api_types::{ErrorResponse, EventMessage, SystemInfo, Version};
use serde_json::Value;

const GOLDEN: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/reference/golden"
);

fn golden(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(format!("{GOLDEN}/{name}")).ok()?;
    Some(serde_json::from_str(&text).expect("golden file is JSON"))
}

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value) -> Value {
    let typed: T = serde_json::from_value(value.clone()).expect("golden parses into the type");
    serde_json::to_value(&typed).expect("serialises")
}

#[test]
fn info_round_trips_docker_20_10() {
    let Some(info) = golden("info.json") else {
        eprintln!("golden files not present; skipping");
        return;
    };
    assert_eq!(round_trip::<SystemInfo>(&info), info);
}

#[test]
fn version_round_trips_docker_20_10() {
    let Some(version) = golden("version.json") else {
        eprintln!("golden files not present; skipping");
        return;
    };
    assert_eq!(round_trip::<Version>(&version), version);
}

#[test]
fn events_round_trip_docker_20_10() {
    let Ok(text) = std::fs::read_to_string(format!("{GOLDEN}/events-sample.jsonl")) else {
        eprintln!("golden files not present; skipping");
        return;
    };
    for line in text.lines().filter(|l| !l.is_empty()) {
        let event: Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(round_trip::<EventMessage>(&event), event, "{line}");
    }
}

#[test]
fn error_body_is_a_message() {
    let body = ErrorResponse {
        message: "page not found".into(),
    };
    assert_eq!(
        serde_json::to_string(&body).expect("serialises"),
        r#"{"message":"page not found"}"#
    );
}
