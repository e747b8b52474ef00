//! The Engine API through bollard, a Docker SDK for Rust: the same daemon the docker CLI
//! drives must serve an SDK that was written against Docker itself.

mod daemon_support;

use std::collections::HashMap;
use std::process::Command;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, InspectContainerOptions,
    ListContainersOptionsBuilder, ListImagesOptions, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, WaitContainerOptions,
};
use daemon_support::Daemon;
use futures_util::StreamExt;

fn busybox_tar(dir: &std::path::Path) -> Vec<u8> {
    let rootfs = dir.join("bb-rootfs");
    berth_testsupport::busybox_rootfs(&rootfs);
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    assert!(tar.status.success());
    std::fs::remove_dir_all(&rootfs).expect("remove rootfs");
    tar.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bollard_drives_images_and_containers() {
    let daemon = Daemon::start();
    let docker = Docker::connect_with_unix(
        &daemon.socket.display().to_string(),
        60,
        bollard::API_DEFAULT_VERSION,
    )
    .expect("connect")
    .negotiate_version()
    .await
    .expect("negotiate the API version");
    assert_eq!(docker.client_version().to_string(), "1.41");
    docker.ping().await.expect("ping");
    let version = docker.version().await.expect("version");
    assert_eq!(version.api_version.as_deref(), Some("1.41"));

    // Import busybox from a tar, as `docker import` does.
    let tar = busybox_tar(daemon.dir.path());
    let options = CreateImageOptionsBuilder::default()
        .from_src("-")
        .repo("busybox")
        .tag("latest")
        .build();
    let mut progress =
        docker.create_image(Some(options), Some(bollard::body_full(tar.into())), None);
    while let Some(item) = progress.next().await {
        item.expect("import progress");
    }
    let images = docker
        .list_images(None::<ListImagesOptions>)
        .await
        .expect("list images");
    assert!(
        images
            .iter()
            .any(|i| i.repo_tags.contains(&"busybox:latest".to_owned())),
        "{images:?}"
    );

    // create → start → wait → logs → inspect → remove.
    let body = ContainerCreateBody {
        image: Some("busybox".into()),
        cmd: Some(vec![
            "sh".into(),
            "-c".into(),
            "echo from-bollard; exit 4".into(),
        ]),
        labels: Some(HashMap::from([("suite".into(), "bollard".into())])),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name("sdk").build()),
            body,
        )
        .await
        .expect("create");
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    let mut wait = docker.wait_container(&created.id, None::<WaitContainerOptions>);
    let code = match wait.next().await {
        Some(Ok(r)) => r.status_code,
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        other => panic!("wait: {other:?}"),
    };
    assert_eq!(code, 4);
    let logs: Vec<String> = docker
        .logs(
            &created.id,
            Some(
                LogsOptionsBuilder::default()
                    .stdout(true)
                    .stderr(true)
                    .build(),
            ),
        )
        .map(|l| l.expect("log line").to_string())
        .collect()
        .await;
    assert_eq!(logs.concat(), "from-bollard\n");
    let inspect = docker
        .inspect_container("sdk", None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    let state = inspect.state.expect("state");
    assert_eq!(state.exit_code, Some(4));
    assert_eq!(inspect.name.as_deref(), Some("/sdk"));
    let mut filters = HashMap::new();
    filters.insert("label".to_owned(), vec!["suite=bollard".to_owned()]);
    let listed = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers");
    assert_eq!(listed.len(), 1);
    docker
        .remove_container(
            "sdk",
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .expect("remove");

    // Errors come back typed, with Docker's status and message.
    match docker
        .inspect_container("sdk", None::<InspectContainerOptions>)
        .await
    {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        }) => {
            assert_eq!(status_code, 404);
            assert_eq!(message, "No such container: sdk");
        }
        other => panic!("inspect of a removed container: {other:?}"),
    }
}
