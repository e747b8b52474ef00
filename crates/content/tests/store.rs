//! Content store behaviour: verified commits, mismatches, crash leftovers, resume,
//! concurrency and hostile digests.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use berth_content::{ContentError, ContentStore, Digest};

fn store() -> (tempfile::TempDir, ContentStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = ContentStore::open(dir.path().join("content")).unwrap();
    (dir, store)
}

fn ingest_count(store: &ContentStore) -> usize {
    std::fs::read_dir(store.root().join("ingest"))
        .unwrap()
        .count()
}

#[test]
fn write_commit_read() {
    let (_d, store) = store();
    let data = b"hello, layer".repeat(1000);
    let expected = Digest::sha256_of(&data);
    let mut w = store
        .writer(Some(expected.clone()), Some(data.len() as u64))
        .unwrap();
    for chunk in data.chunks(777) {
        w.write_all(chunk).unwrap();
    }
    assert!(!store.exists(&expected), "visible before commit");
    assert_eq!(w.commit().unwrap(), expected);

    assert!(store.exists(&expected));
    assert_eq!(store.info(&expected).unwrap().size, data.len() as u64);
    let mut got = Vec::new();
    store.get(&expected).unwrap().read_to_end(&mut got).unwrap();
    assert_eq!(got, data);
    assert_eq!(store.read_all(&expected, 1 << 20).unwrap(), data);
    assert_eq!(store.list().unwrap(), vec![expected.clone()]);
    assert_eq!(
        store.blob_path(&expected),
        store.root().join("blobs/sha256").join(expected.hex())
    );
    assert_eq!(ingest_count(&store), 0);

    store.delete(&expected).unwrap();
    assert!(!store.exists(&expected));
    assert!(store.delete(&expected).unwrap_err().is_not_found());
    assert!(store.get(&expected).unwrap_err().is_not_found());
}

#[test]
fn commit_without_expectations_names_the_blob() {
    let (_d, store) = store();
    let mut w = store.writer(None, None).unwrap();
    w.write_all(b"abc").unwrap();
    let d = w.commit().unwrap();
    assert_eq!(d, Digest::sha256_of(b"abc"));
    assert!(store.exists(&d));
}

#[test]
fn digest_mismatch_stores_nothing() {
    let (_d, store) = store();
    let claimed = Digest::sha256_of(b"what the registry promised");
    let mut w = store.writer(Some(claimed.clone()), None).unwrap();
    w.write_all(b"what it sent").unwrap();
    let err = w.commit().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert!(msg.contains(&claimed.to_string()), "{msg}");
    assert!(
        msg.contains(&Digest::sha256_of(b"what it sent").to_string()),
        "{msg}"
    );
    assert!(store.list().unwrap().is_empty());
    assert!(!store.exists(&Digest::sha256_of(b"what it sent")));
    assert_eq!(ingest_count(&store), 0);
}

#[test]
fn size_mismatch_stores_nothing() {
    let (_d, store) = store();
    let data = b"twelve bytes";
    // Short: fewer bytes than announced.
    let mut w = store
        .writer(Some(Digest::sha256_of(data)), Some(13))
        .unwrap();
    w.write_all(data).unwrap();
    let err = w.commit().unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::SizeMismatch {
                expected: 13,
                actual: 12,
                ..
            }
        ),
        "{err}"
    );
    // Long: a write past the announced size is refused as it happens.
    let mut w = store.writer(None, Some(5)).unwrap();
    assert!(w.write_all(data).is_err());
    assert!(w.commit().is_err());
    assert!(store.list().unwrap().is_empty());
    assert_eq!(ingest_count(&store), 0);
}

#[test]
fn read_all_refuses_oversized_blobs() {
    let (_d, store) = store();
    let mut w = store.writer(None, None).unwrap();
    w.write_all(&[7u8; 5000]).unwrap();
    let d = w.commit().unwrap();
    let err = store.read_all(&d, 4999).unwrap_err();
    assert!(
        matches!(
            err,
            ContentError::TooLarge {
                size: 5000,
                limit: 4999,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(store.read_all(&d, 5000).unwrap().len(), 5000);
}

#[test]
fn read_all_detects_corruption() {
    let (_d, store) = store();
    let mut w = store.writer(None, None).unwrap();
    w.write_all(b"original").unwrap();
    let d = w.commit().unwrap();
    let path = store.blob_path(&d);
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&perms) & 0o777,
        0o444
    );
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"tampered").unwrap();
    assert!(matches!(
        store.read_all(&d, 100),
        Err(ContentError::Corrupt { .. })
    ));
}

/// A writer dropped mid-stream (what a crash leaves) is only an ingest: the blob is not
/// visible, and start-up cleanup removes the ingest.
#[test]
fn dropped_writer_leaves_only_an_ingest() {
    let (_d, store) = store();
    let data = vec![1u8; 100_000];
    let d = Digest::sha256_of(&data);
    let mut w = store
        .writer(Some(d.clone()), Some(data.len() as u64))
        .unwrap();
    w.write_all(&data[..50_000]).unwrap();
    drop(w);
    assert!(!store.exists(&d));
    assert!(store.list().unwrap().is_empty());
    assert_eq!(ingest_count(&store), 1);
    // Not old enough yet.
    assert_eq!(store.cleanup_ingests(Duration::from_secs(3600)).unwrap(), 0);
    assert_eq!(store.cleanup_ingests(Duration::ZERO).unwrap(), 1);
    assert_eq!(ingest_count(&store), 0);
}

#[test]
fn cleanup_skips_ingests_held_by_a_writer() {
    let (_d, store) = store();
    let mut w = store.writer(None, None).unwrap();
    w.write_all(b"in progress").unwrap();
    assert_eq!(store.cleanup_ingests(Duration::ZERO).unwrap(), 0);
    assert_eq!(w.commit().unwrap(), Digest::sha256_of(b"in progress"));
}

#[test]
fn resume_by_ref() {
    let (_d, store) = store();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let d = Digest::sha256_of(&data);
    let size = Some(data.len() as u64);
    let r = "pull-layer-1";

    let mut w = store.writer_for_ref(r, Some(d.clone()), size).unwrap();
    assert_eq!(w.offset(), 0);
    w.write_all(&data[..70_001]).unwrap();
    // While held, the ref is locked.
    assert!(matches!(
        store.writer_for_ref(r, Some(d.clone()), size),
        Err(ContentError::IngestLocked(_))
    ));
    drop(w); // the connection broke

    let mut w = store.writer_for_ref(r, Some(d.clone()), size).unwrap();
    assert_eq!(w.offset(), 70_001, "resume offset for the Range request");
    w.write_all(&data[70_001..]).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert_eq!(store.read_all(&d, 1 << 20).unwrap(), data);

    // A fresh ingest under the same ref starts at 0 again.
    let w = store.writer_for_ref(r, None, None).unwrap();
    assert_eq!(w.offset(), 0);
    drop(w);
    store.abort(r).unwrap();
    assert_eq!(ingest_count(&store), 0);
}

#[test]
fn reset_restarts_an_ingest() {
    let (_d, store) = store();
    let mut w = store.writer_for_ref("r", None, None).unwrap();
    w.write_all(b"garbage from a first attempt").unwrap();
    w.reset().unwrap();
    assert_eq!(w.offset(), 0);
    w.write_all(b"good").unwrap();
    assert_eq!(w.commit().unwrap(), Digest::sha256_of(b"good"));
}

#[test]
fn resumed_ingest_longer_than_expected_starts_over() {
    let (_d, store) = store();
    let mut w = store.writer_for_ref("r", None, None).unwrap();
    w.write_all(&[0u8; 100]).unwrap();
    drop(w);
    let w = store.writer_for_ref("r", None, Some(10)).unwrap();
    assert_eq!(w.offset(), 0);
}

#[test]
fn invalid_refs() {
    let (_d, store) = store();
    assert!(matches!(
        store.writer_for_ref("", None, None),
        Err(ContentError::InvalidRef(_))
    ));
    let long = "x".repeat(257);
    assert!(matches!(
        store.writer_for_ref(&long, None, None),
        Err(ContentError::InvalidRef(_))
    ));
    // Any other string is fine: it is hashed into the file name, never used as a path.
    let w = store
        .writer_for_ref("../../../etc/passwd", None, None)
        .unwrap();
    drop(w);
    assert_eq!(ingest_count(&store), 1);
}

/// Two writers of the same digest at the same time (two pulls sharing a layer): both
/// commits succeed and the blob is intact.
#[test]
fn concurrent_same_digest_writers() {
    let (_d, store) = store();
    let data: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i * 7 % 256) as u8).collect());
    let d = Digest::sha256_of(&data);
    let threads = 6;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let (store, data, d, barrier) =
                (store.clone(), data.clone(), d.clone(), barrier.clone());
            std::thread::spawn(move || {
                let mut w = store
                    .writer(Some(d.clone()), Some(data.len() as u64))
                    .unwrap();
                barrier.wait();
                for chunk in data.chunks(64 * 1024) {
                    w.write_all(chunk).unwrap();
                }
                barrier.wait();
                w.commit().unwrap()
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), d);
    }
    assert_eq!(store.read_all(&d, 10 << 20).unwrap(), *data);
    assert_eq!(store.list().unwrap(), vec![d]);
    assert_eq!(ingest_count(&store), 0);
}

/// A reader holding the blob open while a second writer of the same digest commits still
/// reads the complete content.
#[test]
fn second_commit_does_not_disturb_readers() {
    let (_d, store) = store();
    let data = vec![9u8; 1 << 20];
    let mut w = store.writer(None, None).unwrap();
    w.write_all(&data).unwrap();
    let d = w.commit().unwrap();
    let mut reader = store.get(&d).unwrap();
    let mut w = store.writer(Some(d.clone()), None).unwrap();
    w.write_all(&data).unwrap();
    assert_eq!(w.commit().unwrap(), d);
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, data);
}

#[test]
fn hostile_digests_never_reach_the_filesystem() {
    let hex = "a".repeat(64);
    for bad in [
        "sha256:../../etc".to_owned(),
        "sha256:../../../../../../../../../../../../../../../../../../../../../../../etc/passwd"
            .to_owned(),
        format!("sha256:{}", &hex[..10]),
        format!("sha256:{}", hex.to_uppercase()),
        format!("sha256:{hex}/../x"),
        "sha256:".to_owned(),
        "/etc/passwd".to_owned(),
    ] {
        let err = bad.parse::<Digest>().unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
    }
}

#[test]
fn sha512_blobs() {
    let (_d, store) = store();
    let mut h = berth_content::Algorithm::Sha512.hasher();
    h.update(b"x");
    let d = h.finish();
    let mut w = store.writer(Some(d.clone()), Some(1)).unwrap();
    w.write_all(b"x").unwrap();
    assert_eq!(w.commit().unwrap(), d);
    assert!(
        store
            .blob_path(&d)
            .starts_with(store.root().join("blobs/sha512"))
    );
    assert_eq!(store.list().unwrap(), vec![d]);
}
