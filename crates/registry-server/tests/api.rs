//! The distribution-spec flows over real HTTP on 127.0.0.1: pull, push (monolithic,
//! chunked, streamed, mount), discovery, referrers, management, limits and auth.

mod common;

use anyhow::Result;
use berth_content::Digest;
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn base_endpoint_answers_with_the_api_version() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let r = s.get("/v2/").await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(&r, "docker-distribution-api-version"),
        "registry/2.0"
    );
    assert_eq!(r.text().await?, "{}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn monolithic_push_then_get_head_and_ranges() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let digest = s.push_blob("a/b/c", &data).await?;
    let path = format!("/v2/a/b/c/blobs/{digest}");

    let r = s.get(&path).await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    assert_eq!(r.bytes().await?.as_ref(), &data[..]);

    let r = s.request(Method::HEAD, &path).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "1000");

    for (range, from, to) in [
        ("bytes=500-599", 500, 600),
        ("bytes=900-", 900, 1000),
        ("bytes=-100", 900, 1000),
    ] {
        let r = s
            .request(Method::GET, &path)
            .header("range", range)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {from}-{}/1000", to - 1)
        );
        assert_eq!(r.bytes().await?.as_ref(), &data[from..to], "{range}");
    }
    let r = s
        .request(Method::GET, &path)
        .header("range", "bytes=1000-")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&r, "content-range"), "bytes */1000");

    // Blobs are per repository: another repository does not see it.
    let r = s.get(&format!("/v2/other/blobs/{digest}")).await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await?, "BLOB_UNKNOWN");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn post_then_put_with_the_body() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(!header(&r, "docker-upload-uuid").is_empty());
    let location = header(&r, "location");
    let digest = Digest::sha256_of(b"hello");
    let r = s
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body("hello")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/x/blobs/{digest}"));
    assert_eq!(
        s.get(&format!("/v2/x/blobs/{digest}"))
            .await?
            .text()
            .await?,
        "hello"
    );
    // The session is over.
    assert_eq!(s.get(&location).await?.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_upload_rejects_out_of_order_chunks() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let r = s
        .request(Method::POST, "/v2/chunky/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    let patch = |range: &'static str, body: &'static str| {
        s.request(Method::PATCH, &location)
            .header("content-range", range)
            .header("content-type", "application/octet-stream")
            .body(body)
            .send()
    };
    let r = patch("0-4", "01234").await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-4");
    // A retried chunk and a gap are both out of order.
    assert_eq!(
        patch("0-4", "01234").await?.status(),
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    assert_eq!(
        patch("6-7", "67").await?.status(),
        StatusCode::RANGE_NOT_SATISFIABLE
    );
    assert_eq!(patch("5-9", "56789").await?.status(), StatusCode::ACCEPTED);
    // Streamed PATCH: no Content-Range.
    let r = s
        .request(Method::PATCH, &location)
        .body("abc")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert_eq!(header(&r, "range"), "0-12");

    let r = s.get(&location).await?;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-12");
    assert!(!header(&r, "docker-upload-uuid").is_empty());

    let digest = Digest::sha256_of(b"0123456789abcdef");
    let r = s
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body("def")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let blob = s
        .get(&format!("/v2/chunky/blobs/{digest}"))
        .await?
        .text()
        .await?;
    assert_eq!(blob, "0123456789abcdef");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_mismatch_stores_nothing() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let claimed = Digest::sha256_of(b"what I claim");
    let r = s
        .request(
            Method::POST,
            &format!("/v2/x/blobs/uploads/?digest={claimed}"),
        )
        .body("what I send")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");

    // Chunked, then a PUT with the wrong digest.
    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    s.request(Method::PATCH, &location)
        .body("what I send")
        .send()
        .await?;
    let r = s
        .request(Method::PUT, &format!("{location}?digest={claimed}"))
        .send()
        .await?;
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");

    let actual = Digest::sha256_of(b"what I send");
    for d in [&claimed, &actual] {
        assert_eq!(
            s.get(&format!("/v2/x/blobs/{d}")).await?.status(),
            StatusCode::NOT_FOUND
        );
        assert!(!s.dir.path().join("blobs/sha256").join(d.hex()).exists());
    }
    assert_nothing_left(s.dir.path())?;

    let r = s
        .request(
            Method::POST,
            "/v2/x/blobs/uploads/?digest=sha256:baddigeststring",
        )
        .send()
        .await?;
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");
    Ok(())
}

/// No partial writes in either store, and no verified blob waiting in staging.
fn assert_nothing_left(root: &std::path::Path) -> Result<()> {
    for dir in ["ingest", "staging/ingest", "staging/blobs/sha256"] {
        let left: Vec<_> = std::fs::read_dir(root.join(dir))?.collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cross_repository_mount() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let digest = s.push_blob("src", b"shared layer").await?;
    let r = s
        .request(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={digest}&from=src"),
        )
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "location"), format!("/v2/dst/blobs/{digest}"));
    assert_eq!(
        s.get(&format!("/v2/dst/blobs/{digest}")).await?.status(),
        StatusCode::OK
    );

    // Unknown blob: the registry opens an upload session instead.
    let unknown = Digest::sha256_of(b"nobody has this");
    let r = s
        .request(
            Method::POST,
            &format!("/v2/dst/blobs/uploads/?mount={unknown}&from=src"),
        )
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    assert!(header(&r, "location").starts_with("/v2/dst/blobs/uploads/"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn cancelled_upload_is_gone() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    s.request(Method::PATCH, &location)
        .body("partial")
        .send()
        .await?;
    assert_eq!(
        s.request(Method::DELETE, &location).send().await?.status(),
        StatusCode::NO_CONTENT
    );
    let r = s.get(&location).await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await?, "BLOB_UPLOAD_UNKNOWN");
    let r = s.get("/v2/x/blobs/uploads/not-an-id").await?;
    assert_eq!(error_code(r).await?, "BLOB_UPLOAD_UNKNOWN");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_push_and_pull_by_tag_and_digest() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let manifest = s.image_manifest("app", b"layer bytes").await?;
    let digest = Digest::sha256_of(&manifest);
    let r = s.put_manifest("app", "v1", OCI_MANIFEST, &manifest).await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
    assert_eq!(
        header(&r, "location"),
        format!("/v2/app/manifests/{digest}")
    );

    for reference in ["v1".to_owned(), digest.to_string()] {
        let r = s
            .request(Method::GET, &format!("/v2/app/manifests/{reference}"))
            .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}"))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-type"), OCI_MANIFEST);
        assert_eq!(header(&r, "docker-content-digest"), digest.to_string());
        assert_eq!(r.bytes().await?.as_ref(), &manifest[..]);
        let r = s
            .request(Method::HEAD, &format!("/v2/app/manifests/{reference}"))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(header(&r, "content-length"), manifest.len().to_string());
    }
    // A client that only takes Docker schema 2 does not get an OCI manifest.
    let r = s
        .request(Method::GET, "/v2/app/manifests/v1")
        .header(
            "accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(r).await?, "MANIFEST_UNKNOWN");

    let r = s.get("/v2/app/manifests/nope").await?;
    assert_eq!(error_code(r).await?, "MANIFEST_UNKNOWN");
    // A manifest with no layers is fine.
    let config = s.push_blob("app", b"{}").await?;
    let empty = manifest_over(&config, 2, &[]);
    assert_eq!(
        s.put_manifest("app", "empty", OCI_MANIFEST, &empty)
            .await?
            .status(),
        StatusCode::CREATED
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn manifest_validation_errors() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let manifest = s.image_manifest("app", b"layer").await?;

    let missing = manifest_over(&Digest::sha256_of(b"not pushed"), 10, &[]);
    let r = s.put_manifest("app", "v1", OCI_MANIFEST, &missing).await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(r).await?, "MANIFEST_BLOB_UNKNOWN");

    let wrong = Digest::sha256_of(b"other");
    let r = s
        .put_manifest("app", &wrong.to_string(), OCI_MANIFEST, &manifest)
        .await?;
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");

    let r = s
        .put_manifest("app", "v1", OCI_MANIFEST, b"{not json")
        .await?;
    assert_eq!(error_code(r).await?, "MANIFEST_INVALID");
    let r = s.put_manifest("app", "v1", OCI_INDEX, &manifest).await?;
    assert_eq!(error_code(r).await?, "MANIFEST_INVALID");
    let r = s
        .put_manifest("app", ".bad-tag", OCI_MANIFEST, &manifest)
        .await?;
    assert_eq!(error_code(r).await?, "TAG_INVALID");
    let r = s
        .put_manifest("Bad/Name", "v1", OCI_MANIFEST, &manifest)
        .await?;
    assert_eq!(error_code(r).await?, "NAME_INVALID");
    let r = s.get("/v2/app/manifests/sha256:baddigeststring").await?;
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");

    let mut huge: Value = serde_json::from_slice(&manifest)?;
    huge["annotations"] = json!({ "padding": "x".repeat(5 << 20) });
    let r = s
        .put_manifest("app", "huge", OCI_MANIFEST, huge.to_string().as_bytes())
        .await?;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(r).await?, "SIZE_INVALID");
    // Nothing got tagged along the way.
    let r = s.get("/v2/app/tags/list").await?;
    assert_eq!(r.json::<Value>().await?["tags"], json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn index_children_must_exist() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let child = s.image_manifest("multi", b"amd64 layer").await?;
    let child_digest = Digest::sha256_of(&child);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": child_digest.to_string(), "size": child.len(),
                       "platform": {"architecture": "amd64", "os": "linux"}}],
    })
    .to_string();
    let r = s
        .put_manifest("multi", "latest", OCI_INDEX, index.as_bytes())
        .await?;
    assert_eq!(error_code(r).await?, "MANIFEST_BLOB_UNKNOWN");
    let r = s
        .put_manifest("multi", &child_digest.to_string(), OCI_MANIFEST, &child)
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s
        .put_manifest("multi", "latest", OCI_INDEX, index.as_bytes())
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let r = s.get("/v2/multi/manifests/latest").await?;
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn tags_are_sorted_and_paginated() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let manifest = s.image_manifest("paged", b"l").await?;
    for tag in ["c", "a", "e", "b", "d"] {
        assert_eq!(
            s.put_manifest("paged", tag, OCI_MANIFEST, &manifest)
                .await?
                .status(),
            StatusCode::CREATED
        );
    }
    let r = s.get("/v2/paged/tags/list").await?;
    assert_eq!(
        r.json::<Value>().await?,
        json!({"name": "paged", "tags": ["a", "b", "c", "d", "e"]})
    );

    let r = s.get("/v2/paged/tags/list?n=2").await?;
    assert_eq!(
        header(&r, "link"),
        "</v2/paged/tags/list?n=2&last=b>; rel=\"next\""
    );
    assert_eq!(r.json::<Value>().await?["tags"], json!(["a", "b"]));
    let r = s.get("/v2/paged/tags/list?n=2&last=d").await?;
    assert_eq!(header(&r, "link"), "");
    assert_eq!(r.json::<Value>().await?["tags"], json!(["e"]));
    // CVE-2023-2253: a huge n is capped, not allocated.
    let r = s.get("/v2/paged/tags/list?n=100000000000").await?;
    assert_eq!(
        r.json::<Value>().await?["tags"].as_array().map(Vec::len),
        Some(5)
    );
    let r = s.get("/v2/paged/tags/list?n=x").await?;
    assert_eq!(error_code(r).await?, "PAGINATION_NUMBER_INVALID");
    let r = s.get("/v2/nothing/tags/list").await?;
    assert_eq!(error_code(r).await?, "NAME_UNKNOWN");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn catalog_lists_nested_repositories() -> Result<()> {
    let s = Server::start(options(false)).await?;
    for repo in ["b", "a/x", "a/x/y", "c.d/e"] {
        s.push_blob(repo, b"x").await?;
    }
    // An upload session alone does not make a repository.
    s.request(Method::POST, "/v2/only-started/blobs/uploads/")
        .send()
        .await?;
    let r = s.get("/v2/_catalog").await?;
    assert_eq!(
        r.json::<Value>().await?,
        json!({"repositories": ["a/x", "a/x/y", "b", "c.d/e"]})
    );
    let r = s.get("/v2/_catalog?n=2").await?;
    assert_eq!(
        header(&r, "link"),
        "</v2/_catalog?n=2&last=a/x/y>; rel=\"next\""
    );
    let r = s.get("/v2/_catalog?n=2&last=a/x/y").await?;
    assert_eq!(
        r.json::<Value>().await?["repositories"],
        json!(["b", "c.d/e"])
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn referrers_list_manifests_with_a_subject() -> Result<()> {
    let s = Server::start(options(true)).await?;
    let image = s.image_manifest("app", b"layer").await?;
    let image_digest = Digest::sha256_of(&image);
    s.put_manifest("app", "v1", OCI_MANIFEST, &image).await?;

    let empty = s.push_blob("app", b"{}").await?;
    let mut artifacts = Vec::new();
    for kind in [
        "application/vnd.example.sbom",
        "application/vnd.example.signature",
    ] {
        let artifact = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": kind,
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image_digest.to_string(), "size": image.len()},
            "annotations": {"org.example": kind},
        })
        .to_string();
        let digest = Digest::sha256_of(artifact.as_bytes());
        let r = s
            .put_manifest(
                "app",
                &digest.to_string(),
                OCI_MANIFEST,
                artifact.as_bytes(),
            )
            .await?;
        assert_eq!(r.status(), StatusCode::CREATED);
        assert_eq!(header(&r, "oci-subject"), image_digest.to_string());
        artifacts.push(digest);
    }
    let r = s.get(&format!("/v2/app/referrers/{image_digest}")).await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), OCI_INDEX);
    let index: Value = r.json().await?;
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(2));

    let r = s
        .get(&format!(
            "/v2/app/referrers/{image_digest}?artifactType=application/vnd.example.sbom"
        ))
        .await?;
    assert_eq!(header(&r, "oci-filters-applied"), "artifactType");
    let index: Value = r.json().await?;
    assert_eq!(
        index["manifests"][0]["digest"],
        json!(artifacts[0].to_string())
    );
    assert_eq!(
        index["manifests"][0]["annotations"]["org.example"],
        json!("application/vnd.example.sbom")
    );
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));

    // Deleting a referrer removes it from the list.
    let r = s
        .request(
            Method::DELETE,
            &format!("/v2/app/manifests/{}", artifacts[1]),
        )
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let index: Value = s
        .get(&format!("/v2/app/referrers/{image_digest}"))
        .await?
        .json()
        .await?;
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(1));
    // An unknown subject has no referrers.
    let index: Value = s
        .get(&format!("/v2/app/referrers/{}", Digest::sha256_of(b"?")))
        .await?
        .json()
        .await?;
    assert_eq!(index["manifests"], json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_are_refused_unless_enabled() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let manifest = s.image_manifest("app", b"layer").await?;
    s.put_manifest("app", "v1", OCI_MANIFEST, &manifest).await?;
    let digest = Digest::sha256_of(&manifest);
    for path in [
        format!("/v2/app/manifests/{digest}"),
        format!("/v2/app/blobs/{}", Digest::sha256_of(b"layer")),
    ] {
        let r = s.request(Method::DELETE, &path).send().await?;
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(error_code(r).await?, "UNSUPPORTED");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deletes_when_enabled() -> Result<()> {
    let s = Server::start(options(true)).await?;
    let manifest = s.image_manifest("app", b"layer").await?;
    let digest = Digest::sha256_of(&manifest);
    s.put_manifest("app", "v1", OCI_MANIFEST, &manifest).await?;
    s.put_manifest("app", "v2", OCI_MANIFEST, &manifest).await?;

    // A tag delete leaves the manifest.
    assert_eq!(
        s.request(Method::DELETE, "/v2/app/manifests/v2")
            .send()
            .await?
            .status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(
        s.get("/v2/app/manifests/v2").await?.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.get(&format!("/v2/app/manifests/{digest}"))
            .await?
            .status(),
        StatusCode::OK
    );
    // A digest delete takes its tags along.
    let path = format!("/v2/app/manifests/{digest}");
    assert_eq!(
        s.request(Method::DELETE, &path).send().await?.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(s.get(&path).await?.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        s.get("/v2/app/manifests/v1").await?.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        s.request(Method::DELETE, &path).send().await?.status(),
        StatusCode::NOT_FOUND
    );

    let blob = format!("/v2/app/blobs/{}", Digest::sha256_of(b"layer"));
    assert_eq!(
        s.request(Method::DELETE, &blob).send().await?.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(s.get(&blob).await?.status(), StatusCode::NOT_FOUND);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_pushes_of_one_blob_are_safe() -> Result<()> {
    let s = std::sync::Arc::new(Server::start(options(false)).await?);
    let data: std::sync::Arc<Vec<u8>> =
        std::sync::Arc::new((0..(4u32 << 20)).map(|i| (i * 7 % 256) as u8).collect());
    let digest = Digest::sha256_of(&data);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (s, data, digest) = (s.clone(), data.clone(), digest.clone());
        tasks.push(tokio::spawn(async move {
            let repo = format!("repo{}", i % 2);
            if i % 2 == 0 {
                return s.push_blob(&repo, &data).await.map(|_| ());
            }
            // Chunked: two PATCHes, then PUT.
            let r = s
                .request(Method::POST, &format!("/v2/{repo}/blobs/uploads/"))
                .send()
                .await?;
            let location = header(&r, "location");
            let half = data.len() / 2;
            for (start, chunk) in [(0, &data[..half]), (half, &data[half..])] {
                let range = format!("{start}-{}", start + chunk.len() - 1);
                let r = s
                    .request(Method::PATCH, &location)
                    .header("content-range", range)
                    .body(chunk.to_vec())
                    .send()
                    .await?;
                anyhow::ensure!(r.status() == StatusCode::ACCEPTED, "patch {}", r.status());
            }
            let r = s
                .request(Method::PUT, &format!("{location}?digest={digest}"))
                .send()
                .await?;
            anyhow::ensure!(r.status() == StatusCode::CREATED, "put {}", r.status());
            Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    for repo in ["repo0", "repo1"] {
        let got = s
            .get(&format!("/v2/{repo}/blobs/{digest}"))
            .await?
            .bytes()
            .await?;
        assert!(got.as_ref() == data.as_slice(), "{repo}");
    }
    assert_nothing_left(s.dir.path())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_with_htpasswd() -> Result<()> {
    let hash = bcrypt::hash("s3cret", 4)?;
    let s = Server::start(with_htpasswd(&format!("# users\nalice:{hash}\n"))?).await?;
    let r = s.get("/v2/").await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(&r, "www-authenticate"),
        "Basic realm=\"berth-registry\""
    );
    assert_eq!(error_code(r).await?, "UNAUTHORIZED");
    let r = s
        .request(Method::GET, "/v2/")
        .basic_auth("alice", Some("wrong"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for _ in 0..2 {
        let r = s
            .request(Method::GET, "/v2/")
            .basic_auth("alice", Some("s3cret"))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = s
        .request(Method::GET, "/v2/_catalog")
        .basic_auth("bob", Some("s3cret"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(berth_registry_server::Htpasswd::parse("carol:{SHA}abc").is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn gc_sweeps_unreferenced_blobs_only() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let manifest = s.image_manifest("app", b"kept layer").await?;
    s.put_manifest("app", "v1", OCI_MANIFEST, &manifest).await?;
    let orphan = s.push_blob("app", b"orphan layer").await?;
    // A week-old abandoned upload session, and a fresh one.
    let mut sessions = Vec::new();
    for _ in 0..2 {
        let r = s
            .request(Method::POST, "/v2/app/blobs/uploads/")
            .send()
            .await?;
        let location = header(&r, "location");
        s.request(Method::PATCH, &location)
            .body("partial")
            .send()
            .await?;
        sessions.push(header(&r, "docker-upload-uuid"));
    }
    let week_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 24 * 3600);
    let stale_marker = s
        .dir
        .path()
        .join("repositories/app/_uploads")
        .join(&sessions[0]);
    std::fs::File::options()
        .write(true)
        .open(&stale_marker)?
        .set_modified(week_ago)?;
    // Refused while a server holds the root.
    assert!(berth_registry_server::gc::collect(s.dir.path(), true).is_err());
    let dir = s.stop().await;

    // Connections still closing may hold the registry for a moment.
    let mut dry = berth_registry_server::gc::collect(dir.path(), true);
    for _ in 0..50 {
        if dry.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        dry = berth_registry_server::gc::collect(dir.path(), true);
    }
    let dry = dry?;
    assert_eq!(dry.removed, vec![orphan.clone()]);
    assert!(dir.path().join("blobs/sha256").join(orphan.hex()).exists());
    let report = berth_registry_server::gc::collect(dir.path(), false)?;
    assert_eq!(report.removed, vec![orphan.clone()]);
    assert_eq!(report.kept, 3); // config, layer, manifest
    assert!(!dir.path().join("blobs/sha256").join(orphan.hex()).exists());
    assert_eq!(report.stale_uploads, vec![format!("app/{}", sessions[0])]);
    assert!(!stale_marker.exists());
    assert!(
        dir.path()
            .join("repositories/app/_uploads")
            .join(&sessions[1])
            .exists()
    );

    let s = Server::start_in(dir, options(false)).await?;
    assert_eq!(
        s.get("/v2/app/manifests/v1").await?.status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!(
            "/v2/app/blobs/{}",
            Digest::sha256_of(b"kept layer")
        ))
        .await?
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        s.get(&format!("/v2/app/blobs/{orphan}")).await?.status(),
        StatusCode::NOT_FOUND
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn upload_session_survives_a_server_restart() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    let r = s
        .request(Method::PATCH, &location)
        .header("content-range", "0-5")
        .body("first ")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let dir = s.stop().await;

    let s = restart(dir).await?;
    let r = s.get(&location).await?;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(header(&r, "range"), "0-5");
    let digest = Digest::sha256_of(b"first second");
    let r = s
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", "6-11")
        .body("second")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.get(&format!("/v2/x/blobs/{digest}"))
            .await?
            .text()
            .await?,
        "first second"
    );
    Ok(())
}

/// A new server on the same root, once the old one's connections have let go of it.
async fn restart(dir: tempfile::TempDir) -> Result<Server> {
    let mut dir = Some(dir);
    for _ in 0..50 {
        let root = dir.take().ok_or_else(|| anyhow::anyhow!("root lost"))?;
        if berth_registry_server::Registry::open(root.path(), options(false)).is_ok() {
            return Server::start_in(root, options(false)).await;
        }
        dir = Some(root);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("registry root stayed locked")
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connection_mid_blob_stores_nothing() -> Result<()> {
    use tokio::io::AsyncWriteExt;
    let s = Server::start(options(false)).await?;
    let digest = Digest::sha256_of(&[7u8; 1000]);
    let mut conn = tokio::net::TcpStream::connect(s.addr).await?;
    let head = format!(
        "POST /v2/x/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\nContent-Length: 1000\r\n\r\n",
        s.addr
    );
    conn.write_all(head.as_bytes()).await?;
    conn.write_all(&[7u8; 100]).await?;
    let ingest = s.dir.path().join("ingest");
    for _ in 0..100 {
        if std::fs::read_dir(&ingest)?.count() == 1 {
            break; // the server is writing
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_dir(&ingest)?.count(), 1);
    drop(conn);
    // The server notices the dropped body and cleans up its ingest.
    for _ in 0..50 {
        if std::fs::read_dir(&ingest)?.count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(std::fs::read_dir(&ingest)?.count(), 0);
    assert_eq!(
        s.get(&format!("/v2/x/blobs/{digest}")).await?.status(),
        StatusCode::NOT_FOUND
    );
    assert!(
        !s.dir
            .path()
            .join("blobs/sha256")
            .join(digest.hex())
            .exists()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_schema2_manifest_round_trip() -> Result<()> {
    const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    let s = Server::start(options(false)).await?;
    let config = s.push_blob("d", b"{\"os\":\"linux\"}").await?;
    let layer = s.push_blob("d", b"gzip bytes").await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config.to_string(), "size": 15},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": layer.to_string(), "size": 10},
                   {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
                    "digest": Digest::sha256_of(b"windows base").to_string(), "size": 12, "urls": ["https://example.invalid/l"]}],
    })
    .to_string();
    let r = s
        .put_manifest("d", "latest", DOCKER_MANIFEST, manifest.as_bytes())
        .await?;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "foreign layers need not be pushed"
    );
    let r = s
        .request(Method::GET, "/v2/d/manifests/latest")
        .header("accept", DOCKER_MANIFEST)
        .header("accept", DOCKER_LIST)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-type"), DOCKER_MANIFEST);
    assert_eq!(
        header(&r, "docker-content-digest"),
        Digest::sha256_of(manifest.as_bytes()).to_string()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sha512_blobs_monolithic_and_chunked() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let sha512 = |data: &[u8]| {
        let mut h = berth_content::Algorithm::Sha512.hasher();
        h.update(data);
        h.finish()
    };
    let digest = sha512(b"sha512 content");
    let r = s
        .request(
            Method::POST,
            &format!("/v2/x/blobs/uploads/?digest={digest}"),
        )
        .body("sha512 content")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.get(&format!("/v2/x/blobs/{digest}"))
            .await?
            .text()
            .await?,
        "sha512 content"
    );

    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    s.request(Method::PATCH, &location)
        .body("chunked ")
        .send()
        .await?;
    let digest = sha512(b"chunked sha512");
    let r = s
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body("sha512")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(
        s.get(&format!("/v2/x/blobs/{digest}"))
            .await?
            .text()
            .await?,
        "chunked sha512"
    );

    // And a mismatch under sha512 is still refused.
    let r = s
        .request(Method::POST, "/v2/x/blobs/uploads/")
        .send()
        .await?;
    let location = header(&r, "location");
    let r = s
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .body("other")
        .send()
        .await?;
    assert_eq!(error_code(r).await?, "DIGEST_INVALID");
    assert_nothing_left(s.dir.path())?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_blob() -> Result<()> {
    let s = Server::start(options(false)).await?;
    let digest = s.push_blob("x", b"").await?;
    let r = s.get(&format!("/v2/x/blobs/{digest}")).await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(&r, "content-length"), "0");
    let r = s
        .request(Method::GET, &format!("/v2/x/blobs/{digest}"))
        .header("range", "bytes=0-")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    Ok(())
}
