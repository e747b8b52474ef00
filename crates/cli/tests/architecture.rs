//! The workspace's layering, checked: a berth crate may only depend on berth crates of a lower
//! layer (ARCHITECTURE.md). Dev-dependencies (test fixtures) are exempt.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::process::Command;

/// Each crate's rank; a crate may depend only on crates of a strictly lower rank.
const LAYERS: &[(&str, u32)] = &[
    ("berth-errdefs", 0),
    ("berth-testsupport", 0),
    ("berth-reference", 1),
    ("berth-api-types", 1),
    ("berth-cgroups", 1),
    ("berth-dockerfile", 1),
    ("berth-content", 2),
    ("berth-spec", 2),
    ("berth-runtime", 2),
    ("berth-volume", 2),
    ("berth-snapshot", 3),
    ("berth-shim", 3),
    ("berth-network", 3),
    ("berth-registry-client", 3),
    ("berth-image", 4),
    ("berth-registry-server", 4),
    ("berth-builder", 5),
    ("berth-engine", 6),
    ("berth-api-server", 7),
    ("berth-client", 7),
    ("berth-compose", 8),
    ("berth", 9),
];

#[test]
fn crates_only_import_lower_layers() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rank: BTreeMap<&str, u32> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for pkg in meta["packages"].as_array().unwrap() {
        let name = pkg["name"].as_str().unwrap();
        let Some(&own) = rank.get(name) else {
            problems.push(format!(
                "{name} has no layer: add it to LAYERS and ARCHITECTURE.md"
            ));
            continue;
        };
        for dep in pkg["dependencies"].as_array().unwrap() {
            let dep_name = dep["name"].as_str().unwrap();
            let is_dev = dep["kind"].as_str() == Some("dev");
            if let Some(&theirs) = rank.get(dep_name)
                && !is_dev
                && theirs >= own
            {
                problems.push(format!(
                    "{name} (layer {own}) imports {dep_name} (layer {theirs})"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}
