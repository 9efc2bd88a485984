use thiserror::Error;

pub use vaultstream::ErrorClass;

/// Every way a transcode can end badly, each mapped to one exit code of the CLI contract.
#[derive(Debug, Error)]
pub enum TranscodeError {
    /// The command line or a file it names is wrong (exit 2).
    #[error("{0}")]
    Usage(String),
    /// The source is not something we can or will transcode; never retried (exit 65).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Worth retrying: I/O that stalled or failed transiently (exit 75).
    #[error("temporary failure: {0}")]
    Temporary(String),
    /// Everything else: a broken environment or a bug (exit 1).
    #[error("{0}")]
    Fatal(String),
}

pub const EXIT_OK: i32 = 0;
pub const EXIT_FATAL: i32 = 1;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_INVALID_INPUT: i32 = 65;
pub const EXIT_TEMPORARY: i32 = 75;

impl TranscodeError {
    pub fn exit_code(&self) -> i32 {
        match self {
            TranscodeError::Usage(_) => EXIT_USAGE,
            TranscodeError::InvalidInput(_) => EXIT_INVALID_INPUT,
            TranscodeError::Temporary(_) => EXIT_TEMPORARY,
            TranscodeError::Fatal(_) => EXIT_FATAL,
        }
    }

    /// What a caller should do about it: fix the input, retry, or get an operator.
    pub fn class(&self) -> ErrorClass {
        match self {
            TranscodeError::Usage(_) | TranscodeError::InvalidInput(_) => ErrorClass::Client,
            TranscodeError::Temporary(_) => ErrorClass::Retryable,
            TranscodeError::Fatal(_) => ErrorClass::Fatal,
        }
    }

    /// Output I/O: a full disk may clear up; a permission problem will not.
    pub fn output(context: &str, err: std::io::Error) -> Self {
        match err.kind() {
            std::io::ErrorKind::PermissionDenied => TranscodeError::Fatal(format!("{context}: {err}")),
            _ => TranscodeError::Temporary(format!("{context}: {err}")),
        }
    }

    pub fn ffmpeg(context: &str, err: ffmpeg_next::Error) -> Self {
        TranscodeError::Fatal(format!("{context}: {err}"))
    }
}

impl From<vaultstream::Error> for TranscodeError {
    fn from(err: vaultstream::Error) -> Self {
        match err.class() {
            vaultstream::ErrorClass::Client => TranscodeError::Usage(err.to_string()),
            vaultstream::ErrorClass::Retryable => TranscodeError::Temporary(err.to_string()),
            vaultstream::ErrorClass::Fatal => TranscodeError::Fatal(err.to_string()),
        }
    }
}

pub type Result<T, E = TranscodeError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_worth_retrying_and_a_forbidden_folder_is_not() {
        let full = TranscodeError::output("writing seg_00003.ts", std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert_eq!((full.exit_code(), full.class()), (EXIT_TEMPORARY, ErrorClass::Retryable));
        let too_big = TranscodeError::output("writing seg_00003.ts", std::io::Error::from(std::io::ErrorKind::FileTooLarge));
        assert_eq!(too_big.exit_code(), EXIT_TEMPORARY);
        let denied = TranscodeError::output("writing seg_00003.ts", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert_eq!((denied.exit_code(), denied.class()), (EXIT_FATAL, ErrorClass::Fatal));
    }
}
