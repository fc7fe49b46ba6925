//! The engine's identity towards DPM: a UUID created once and kept in `data/engine-id`, so a
//! restarted engine is the same engine to DPM.

use std::io::ErrorKind;
use std::path::Path;

use svcid_grpc::daemon::DaemonError;

/// Reads the engine id from `path`, creating the file (and its folder) with a fresh UUID the
/// first time. A file that holds something other than a UUID is an error, not silently replaced:
/// replacing it would make DPM see a new engine.
pub fn load_or_create(path: &Path) -> Result<String, DaemonError> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let id = text.trim();
            uuid::Uuid::parse_str(id)
                .map(|_| id.to_owned())
                .map_err(|_| DaemonError::Io {
                    what: "engine id is not a UUID in",
                    path: path.to_owned(),
                    source: std::io::Error::new(
                        ErrorKind::InvalidData,
                        "delete the file to get a new engine id",
                    ),
                })
        }
        Err(error) if error.kind() == ErrorKind::NotFound => {
            let id = uuid::Uuid::new_v4().to_string();
            let io = |what, source| DaemonError::Io {
                what,
                path: path.to_owned(),
                source,
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| io("cannot create the folder of", e))?;
            }
            std::fs::write(path, format!("{id}\n")).map_err(|e| io("cannot write", e))?;
            Ok(id)
        }
        Err(error) => Err(DaemonError::Io {
            what: "cannot read",
            path: path.to_owned(),
            source: error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_reused() {
        let dir = std::env::temp_dir().join(format!("svcid-engine-id-{}", uuid::Uuid::new_v4()));
        let path = dir.join("data").join("engine-id");
        let first = load_or_create(&path).expect("created");
        assert_eq!(load_or_create(&path).expect("read back"), first);
        std::fs::write(&path, "not a uuid").expect("write");
        assert!(load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
