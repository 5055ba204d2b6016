//! Loading for change: a tough editor over a loaded repository (its targets, extra roles and
//! latest root), or over a new one, with the root it signs under.

use crate::error::{self, Result};
use snafu::{IntoError, ResultExt};
use std::path::Path;
use tough::Repository;
use tough::editor::RepositoryEditor;
use tough::schema::{Root, Signed};

/// A tough editor and the root its signatures are checked against.
#[derive(Debug)]
pub struct Change {
    /// tough's editor.
    pub editor: RepositoryEditor,
    /// The root (latest trusted, or the new one of a rotation) keys are checked against.
    pub root: Signed<Root>,
    // Keeps the staged root file alive as long as the editor may read it.
    _root_file: Option<tempfile::NamedTempFile>,
}

impl Change {
    /// An editor over the loaded repository, under its latest (verified) root.
    pub async fn from_repo(repo: Repository) -> Result<Change> {
        let root = repo.root().clone();
        let bytes = serde_json::to_vec_pretty(&root).context(error::SerializeRootSnafu)?;
        let mut file = tempfile::NamedTempFile::new().context(error::StageRootSnafu {
            action: "create temporary root file in",
            path: std::env::temp_dir(),
        })?;
        std::io::Write::write_all(&mut file, &bytes).context(error::StageRootSnafu {
            action: "write",
            path: file.path(),
        })?;
        let editor = RepositoryEditor::from_repo(file.path(), repo)
            .await
            .map_err(|e| error::EditorSnafu.into_error(Box::new(e)))?;
        Ok(Change {
            editor,
            root,
            _root_file: Some(file),
        })
    }

    /// An editor over the loaded repository that signs under another root: `root_path` holds
    /// `root` (already checked by the caller, e.g. version N+1 cross-signed by root N).
    pub async fn with_root(
        root_path: &Path,
        root: Signed<Root>,
        repo: Repository,
    ) -> Result<Change> {
        let editor = RepositoryEditor::from_repo(root_path, repo)
            .await
            .map_err(|e| error::EditorSnafu.into_error(Box::new(e)))?;
        Ok(Change {
            editor,
            root,
            _root_file: None,
        })
    }

    /// An editor for a new repository under the root at `root_path` (which holds `root`).
    pub async fn new_repo(root_path: &Path, root: Signed<Root>) -> Result<Change> {
        let editor = RepositoryEditor::new(root_path)
            .await
            .map_err(|e| error::EditorSnafu.into_error(Box::new(e)))?;
        Ok(Change {
            editor,
            root,
            _root_file: None,
        })
    }
}
