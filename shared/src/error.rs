use thiserror::Error;

/// How a caller should react to an error: fix the request, try again later, or give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The caller sent something wrong; retrying the same thing fails the same way.
    Client,
    /// A dependency hiccuped; the same call may succeed later.
    Retryable,
    /// A bug or a broken environment; needs an operator.
    Fatal,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    #[error("invalid profile: field `{field}`: {message}")]
    InvalidProfile { field: String, message: String },
    #[error("invalid content key: {0}")]
    InvalidKey(String),
    #[error("segment decryption failed: {0}")]
    Decrypt(String),
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

impl Error {
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::InvalidProfile { .. } | Error::InvalidKey(_) | Error::Decrypt(_) => ErrorClass::Client,
            Error::Random(_) => ErrorClass::Fatal,
        }
    }

    pub(crate) fn profile(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidProfile { field: field.into(), message: message.into() }
    }
}
