//! What belongs to which repository, on disk. Blobs themselves live once in the content
//! store at `<root>/blobs/`; a repository only holds links to them:
//!
//! ```text
//! <root>/repositories/<name>/_layers/<alg>/<hex>                 blob link (empty)
//! <root>/repositories/<name>/_manifests/revisions/<alg>/<hex>    manifest link (its media type)
//! <root>/repositories/<name>/_manifests/tags/<tag>               tag → manifest digest
//! <root>/repositories/<name>/_referrers/<alg>/<hex>/<alg>-<hex>  descriptor JSON of a referrer
//! <root>/repositories/<name>/_uploads/<id>                       an open upload session
//! <root>/staging/{ingest,blobs}/…   upload sessions' bytes, verified, then promoted
//! ```
//!
//! Repository path components never start with `_`, so these names cannot collide with a
//! nested repository. Every file is written tmp → fsync → rename → fsync dir, so a crash
//! leaves the old state or the new one.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use berth_content::{ContentStore, Digest};

use crate::names::RepoName;

/// The repository links of a registry root.
#[derive(Debug, Clone)]
pub struct Links {
    repos: PathBuf,
}

impl Links {
    /// Links under `<root>/repositories`.
    pub fn new(root: &Path) -> Self {
        Links {
            repos: root.join("repositories"),
        }
    }

    fn repo(&self, name: &RepoName) -> PathBuf {
        self.repos.join(name.as_str())
    }

    fn blob_link(&self, name: &RepoName, digest: &Digest) -> PathBuf {
        digest_path(&self.repo(name).join("_layers"), digest)
    }

    fn revision(&self, name: &RepoName, digest: &Digest) -> PathBuf {
        digest_path(&self.repo(name).join("_manifests/revisions"), digest)
    }

    fn tags_dir(&self, name: &RepoName) -> PathBuf {
        self.repo(name).join("_manifests/tags")
    }

    fn referrers_dir(&self, name: &RepoName, subject: &Digest) -> PathBuf {
        digest_path(&self.repo(name).join("_referrers"), subject)
    }

    fn upload(&self, name: &RepoName, id: &str) -> PathBuf {
        self.repo(name).join("_uploads").join(id)
    }

    /// Whether the repository exists (anything was ever pushed to it).
    pub fn repo_exists(&self, name: &RepoName) -> bool {
        self.repo(name).is_dir()
    }

    /// Records that the repository has this blob.
    pub fn link_blob(&self, name: &RepoName, digest: &Digest) -> io::Result<()> {
        write_atomic(&self.blob_link(name, digest), b"")
    }

    /// Whether the repository has this blob linked (as a blob or as a manifest).
    pub fn has_blob(&self, name: &RepoName, digest: &Digest) -> bool {
        self.blob_link(name, digest).is_file() || self.revision(name, digest).is_file()
    }

    /// Removes a blob link; false if there was none.
    pub fn unlink_blob(&self, name: &RepoName, digest: &Digest) -> io::Result<bool> {
        remove(&self.blob_link(name, digest))
    }

    /// Records a manifest revision and its media type.
    pub fn put_revision(
        &self,
        name: &RepoName,
        digest: &Digest,
        media_type: &str,
    ) -> io::Result<()> {
        write_atomic(&self.revision(name, digest), media_type.as_bytes())
    }

    /// The media type of a manifest revision, or `None` if the repository lacks it.
    pub fn revision_media_type(
        &self,
        name: &RepoName,
        digest: &Digest,
    ) -> io::Result<Option<String>> {
        read_optional(&self.revision(name, digest))
    }

    /// Removes a manifest revision and every tag pointing at it; false if there was none.
    pub fn delete_revision(&self, name: &RepoName, digest: &Digest) -> io::Result<bool> {
        for (tag, target) in self.tag_targets(name)? {
            if &target == digest {
                self.delete_tag(name, &tag)?;
            }
        }
        remove(&self.revision(name, digest))
    }

    /// Every manifest revision of a repository.
    pub fn revisions(&self, name: &RepoName) -> io::Result<Vec<Digest>> {
        list_digests(&self.repo(name).join("_manifests/revisions"))
    }

    /// Points a tag at a manifest.
    pub fn set_tag(&self, name: &RepoName, tag: &str, digest: &Digest) -> io::Result<()> {
        write_atomic(
            &self.tags_dir(name).join(tag),
            digest.to_string().as_bytes(),
        )
    }

    /// The manifest a tag points at.
    pub fn tag(&self, name: &RepoName, tag: &str) -> io::Result<Option<Digest>> {
        Ok(read_optional(&self.tags_dir(name).join(tag))?
            .and_then(|s| Digest::parse(s.trim()).ok()))
    }

    /// Removes a tag; false if there was none.
    pub fn delete_tag(&self, name: &RepoName, tag: &str) -> io::Result<bool> {
        remove(&self.tags_dir(name).join(tag))
    }

    /// The repository's tags, sorted, or `None` if the repository does not exist.
    pub fn tags(&self, name: &RepoName) -> io::Result<Option<Vec<String>>> {
        if !self.repo_exists(name) {
            return Ok(None);
        }
        let mut tags = list_names(&self.tags_dir(name))?;
        tags.sort();
        Ok(Some(tags))
    }

    fn tag_targets(&self, name: &RepoName) -> io::Result<Vec<(String, Digest)>> {
        let mut out = Vec::new();
        for tag in list_names(&self.tags_dir(name))? {
            if let Some(d) = self.tag(name, &tag)? {
                out.push((tag, d));
            }
        }
        Ok(out)
    }

    /// Records `referrer` (its descriptor as JSON) as pointing at `subject`.
    pub fn add_referrer(
        &self,
        name: &RepoName,
        subject: &Digest,
        referrer: &Digest,
        descriptor: &serde_json::Value,
    ) -> io::Result<()> {
        let path = self
            .referrers_dir(name, subject)
            .join(file_name_of(referrer));
        write_atomic(&path, descriptor.to_string().as_bytes())
    }

    /// Forgets a referrer.
    pub fn remove_referrer(
        &self,
        name: &RepoName,
        subject: &Digest,
        referrer: &Digest,
    ) -> io::Result<()> {
        remove(
            &self
                .referrers_dir(name, subject)
                .join(file_name_of(referrer)),
        )
        .map(drop)
    }

    /// The descriptors of every manifest whose `subject` is `subject`, sorted by digest.
    pub fn referrers(
        &self,
        name: &RepoName,
        subject: &Digest,
    ) -> io::Result<Vec<serde_json::Value>> {
        let dir = self.referrers_dir(name, subject);
        let mut names = list_names(&dir)?;
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(text) = read_optional(&dir.join(n))?
                && let Ok(v) = serde_json::from_str(&text)
            {
                out.push(v);
            }
        }
        Ok(out)
    }

    /// Records an open upload session.
    pub fn create_upload(&self, name: &RepoName, id: &str) -> io::Result<()> {
        write_atomic(&self.upload(name, id), b"")
    }

    /// Whether an upload session is open in this repository.
    pub fn upload_exists(&self, name: &RepoName, id: &str) -> bool {
        self.upload(name, id).is_file()
    }

    /// Closes an upload session.
    pub fn remove_upload(&self, name: &RepoName, id: &str) -> io::Result<()> {
        remove(&self.upload(name, id)).map(drop)
    }

    /// The open upload sessions of a repository with their start times.
    pub fn uploads(&self, name: &RepoName) -> io::Result<Vec<(String, std::time::SystemTime)>> {
        let dir = self.repo(name).join("_uploads");
        let mut out = Vec::new();
        for id in list_names(&dir)? {
            if let Ok(modified) = fs::metadata(dir.join(&id)).and_then(|m| m.modified()) {
                out.push((id, modified));
            }
        }
        Ok(out)
    }

    /// Every repository, sorted: a directory is one once it holds blob or manifest links.
    pub fn repositories(&self) -> io::Result<Vec<RepoName>> {
        self.repositories_marked_by(&["_layers", "_manifests"])
    }

    /// Every directory holding any registry state, open uploads included (for `gc`).
    pub fn all_repositories(&self) -> io::Result<Vec<RepoName>> {
        self.repositories_marked_by(&["_layers", "_manifests", "_uploads", "_referrers"])
    }

    fn repositories_marked_by(&self, markers: &[&str]) -> io::Result<Vec<RepoName>> {
        let mut out = Vec::new();
        walk_repos(&self.repos, "", markers, &mut out)?;
        out.sort();
        Ok(out)
    }
}

fn walk_repos(
    dir: &Path,
    prefix: &str,
    markers: &[&str],
    out: &mut Vec<RepoName>,
) -> io::Result<()> {
    let mut is_repo = false;
    for entry in list_names(dir)? {
        if entry.starts_with('_') {
            is_repo |= markers.contains(&entry.as_str());
        } else if dir.join(&entry).is_dir() {
            let name = if prefix.is_empty() {
                entry.clone()
            } else {
                format!("{prefix}/{entry}")
            };
            walk_repos(&dir.join(&entry), &name, markers, out)?;
        }
    }
    if is_repo && let Ok(name) = RepoName::parse(prefix) {
        out.push(name);
    }
    Ok(())
}

fn digest_path(base: &Path, digest: &Digest) -> PathBuf {
    base.join(digest.algorithm().name()).join(digest.hex())
}

fn file_name_of(digest: &Digest) -> String {
    format!("{}-{}", digest.algorithm().name(), digest.hex())
}

fn list_digests(base: &Path) -> io::Result<Vec<Digest>> {
    let mut out = Vec::new();
    for algorithm in list_names(base)? {
        for hex in list_names(&base.join(&algorithm))? {
            if let Ok(d) = Digest::parse(&format!("{algorithm}:{hex}")) {
                out.push(d);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The entry names of a directory, skipping temporary files; empty if it does not exist.
fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        if let Some(name) = entry?.file_name().to_str()
            && !name.starts_with(".tmp-")
        {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove(path: &Path) -> io::Result<bool> {
    match fs::remove_file(path) {
        Ok(()) => {
            sync_parent(path)?;
            Ok(true)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// tmp → fsync → rename → fsync dir; the tmp name is random so concurrent writers of the
/// same file never share one.
pub(crate) fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other("path without parent"))?;
    create_dirs(dir)?;
    let tmp = dir.join(format!(".tmp-{}", crate::names::new_upload_id()?));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_parent(path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp); // best effort; the rename error is what matters
    }
    result
}

/// Creates missing directories and fsyncs each new one's parent, so the new entries
/// survive a crash along with the file written into them.
fn create_dirs(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dirs(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => sync_parent(dir),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) => File::open(parent)?.sync_all(),
        None => Ok(()),
    }
}

/// The content store of a registry root.
pub fn open_store(root: &Path) -> Result<ContentStore, berth_content::ContentError> {
    ContentStore::open(root)
}

/// The staging store of a registry root (`<root>/staging`), never served: chunked uploads
/// are written and verified there, because the digest they must match is only known at
/// their last request.
pub fn open_staging(root: &Path) -> Result<ContentStore, berth_content::ContentError> {
    ContentStore::open(root.join("staging"))
}

/// Moves a verified blob from the staging store into the served one without ever replacing
/// a blob there (a hard link is atomic and fails if the name exists: the same verified
/// bytes are already in place), then drops the staged name.
pub fn promote(staging: &ContentStore, store: &ContentStore, digest: &Digest) -> io::Result<()> {
    let staged = staging.blob_path(digest);
    let target = store.blob_path(digest);
    let dir = target
        .parent()
        .ok_or_else(|| io::Error::other("blob path without parent"))?;
    create_dirs(dir)?;
    match fs::hard_link(&staged, &target) {
        Ok(()) => sync_parent(&target)?,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        // A concurrent upload of the same bytes committed to the same staged name and
        // promoted it first.
        Err(e) if e.kind() == io::ErrorKind::NotFound && target.is_file() => return Ok(()),
        Err(e) => return Err(e),
    }
    remove(&staged).map(drop)
}
