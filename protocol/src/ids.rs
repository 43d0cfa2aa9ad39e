//! Identifier newtypes.
//!
//! Every ID travels as `{"value": "..."}`, the Mesos v1 JSON form. IDs are validated when they are
//! built and when they are decoded, with the rules Mesos applies (`common/validation.cpp`): not
//! empty, at most 255 bytes, no `/`, `\` or control characters, and not `.` or `..`. The rules
//! exist because IDs become path components of sandboxes and checkpoints; an ID that passed
//! validation can be joined onto a path without escaping it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest ID accepted, in bytes.
pub const ID_LEN_MAX: usize = 255;

/// Why a string is not a valid ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must not be empty")]
    Empty { kind: &'static str },
    #[error("{kind} is {len} bytes long; at most {ID_LEN_MAX} are allowed")]
    TooLong { kind: &'static str, len: usize },
    #[error("{kind} must not contain {ch:?}")]
    InvalidChar { kind: &'static str, ch: char },
    #[error("{kind} must not be '.' or '..'")]
    Dots { kind: &'static str },
}

/// Checks `value` against the ID rules; `kind` names the ID in the error.
pub fn validate_id(kind: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if value.len() > ID_LEN_MAX {
        return Err(IdError::TooLong {
            kind,
            len: value.len(),
        });
    }
    if value == "." || value == ".." {
        return Err(IdError::Dots { kind });
    }
    if let Some(ch) = value
        .chars()
        .find(|&c| c == '/' || c == '\\' || c.is_control())
    {
        return Err(IdError::InvalidChar { kind, ch });
    }
    Ok(())
}

/// The wire form shared by every ID: `{"value": "..."}`.
#[derive(Serialize, Deserialize)]
struct IdWire<'a> {
    #[serde(borrow)]
    value: std::borrow::Cow<'a, str>,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Builds the ID, or says why `value` is not a valid one.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                validate_id($kind, &value)?;
                Ok(Self(value))
            }

            /// Returns the ID as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Returns the owned string inside the ID.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                IdWire { value: std::borrow::Cow::Borrowed(&self.0) }.serialize(serializer)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let wire = IdWire::deserialize(deserializer)?;
                Self::new(wire.value.into_owned()).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// Names a framework; assigned by the master at its first SUBSCRIBE.
    FrameworkId,
    "framework ID"
);
id_type!(
    /// Names an agent; assigned by the master when the agent first registers.
    AgentId,
    "agent ID"
);
id_type!(
    /// Names one offer; an offer ID is accepted or declined at most once.
    OfferId,
    "offer ID"
);
id_type!(
    /// Names a task within its framework; chosen by the framework.
    TaskId,
    "task ID"
);
id_type!(
    /// Names an executor within its framework; chosen by the framework or the agent.
    ExecutorId,
    "executor ID"
);
id_type!(
    /// Names one container (one run of an executor) on an agent; chosen by the agent.
    ContainerId,
    "container ID"
);
id_type!(
    /// Names an operation (RESERVE, UNRESERVE, ...) that asked for feedback.
    OperationId,
    "operation ID"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for value in [
            "a",
            "task-1",
            "20261127-0001-S0",
            "名前",
            &"x".repeat(ID_LEN_MAX),
        ] {
            assert_eq!(TaskId::new(value).unwrap().as_str(), value);
        }
    }

    #[test]
    fn rejects_what_mesos_rejects() {
        let cases: &[(&str, IdError)] = &[
            ("", IdError::Empty { kind: "task ID" }),
            (".", IdError::Dots { kind: "task ID" }),
            ("..", IdError::Dots { kind: "task ID" }),
            (
                "a/b",
                IdError::InvalidChar {
                    kind: "task ID",
                    ch: '/',
                },
            ),
            (
                "a\\b",
                IdError::InvalidChar {
                    kind: "task ID",
                    ch: '\\',
                },
            ),
            (
                "a\nb",
                IdError::InvalidChar {
                    kind: "task ID",
                    ch: '\n',
                },
            ),
            (
                "a\u{7f}",
                IdError::InvalidChar {
                    kind: "task ID",
                    ch: '\u{7f}',
                },
            ),
        ];
        for (value, want) in cases {
            assert_eq!(TaskId::new(*value).unwrap_err(), *want, "value {value:?}");
        }
        let long = "x".repeat(ID_LEN_MAX + 1);
        assert_eq!(
            TaskId::new(long).unwrap_err(),
            IdError::TooLong {
                kind: "task ID",
                len: 256
            }
        );
    }

    #[test]
    fn json_form_is_value_object() {
        let id = FrameworkId::new("fw-1").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"value":"fw-1"}"#);
        let back: FrameworkId = serde_json::from_str(r#"{"value":"fw-1"}"#).unwrap();
        assert_eq!(back, id);
    }

    #[test]
    fn decoding_validates() {
        let err = serde_json::from_str::<AgentId>(r#"{"value":".."}"#).unwrap_err();
        assert!(
            err.to_string().contains("agent ID must not be '.' or '..'"),
            "{err}"
        );
        let err = serde_json::from_str::<AgentId>(r#"{"value":"../etc"}"#).unwrap_err();
        assert!(err.to_string().contains("must not contain '/'"), "{err}");
    }

    #[test]
    fn msgpack_round_trip() {
        let id = ExecutorId::new("ex").unwrap();
        let bytes = rmp_serde::to_vec_named(&id).unwrap();
        let back: ExecutorId = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(back, id);
    }
}
