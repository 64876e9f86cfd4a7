//! Why a pod file could not be loaded. Every message starts with the pod
//! file's name and fits on one line, so the CLI prints it as it is.

use std::path::PathBuf;

/// A pod file that cannot be read, parsed or accepted.
#[derive(Debug, thiserror::Error)]
pub enum PodError {
    /// The file could not be read (the I/O error is the source).
    #[error("{}: cannot read", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not well-formed JSON.
    #[error("{}: line {line} column {column}: {msg}", file.display())]
    Parse {
        file: PathBuf,
        line: usize,
        column: usize,
        msg: String,
    },
    /// The JSON breaks a rule of the schema at `at`.
    #[error("{}: {at}: {msg}", file.display())]
    Validate {
        file: PathBuf,
        /// The JSON path of the offending value, e.g. `containers.app.image`.
        at: String,
        msg: String,
    },
}

impl PodError {
    /// A JSON syntax error, with serde_json's message freed from its
    /// trailing position (which the message carries up front instead).
    pub(crate) fn parse(file: PathBuf, err: &serde_json::Error) -> PodError {
        let full = err.to_string();
        let suffix = format!(" at line {} column {}", err.line(), err.column());
        let msg = full
            .strip_suffix(&suffix)
            .unwrap_or(&full)
            .replace('`', "'");
        PodError::Parse {
            file,
            line: err.line(),
            column: err.column(),
            msg,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_error_puts_position_first() {
        let err = serde_json::from_str::<serde_json::Value>("{\"a\": 1\n \"b\": 2}").unwrap_err();
        let e = PodError::parse(PathBuf::from("pod.json"), &err);
        assert_eq!(
            e.to_string(),
            "pod.json: line 2 column 2: expected ',' or '}'"
        );
    }

    #[test]
    fn read_error_does_not_repeat_its_source() {
        let e = PodError::Read {
            file: PathBuf::from("pod.json"),
            source: std::io::Error::from_raw_os_error(libc::ENOENT),
        };
        assert_eq!(e.to_string(), "pod.json: cannot read");
    }

    #[test]
    fn validate_error_names_file_and_path() {
        let e = PodError::Validate {
            file: PathBuf::from("pod.json"),
            at: "containers.app.comand".into(),
            msg: "unknown field".into(),
        };
        assert_eq!(
            e.to_string(),
            "pod.json: containers.app.comand: unknown field"
        );
    }
}
