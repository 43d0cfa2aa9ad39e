//! Role names and the role tree (`a/b/c` is a child of `a/b`), following Mesos's
//! `docs/roles.md`.

use super::ResourcesError;

/// The role of unreserved resources, and the default role of a framework.
pub const ANY_ROLE: &str = "*";

/// Checks a role name against Mesos's rules.
///
/// `*` is valid on its own. Any other role is a `/`-separated path whose components are
/// non-empty, are not `.`, `..` or `*`, do not start with `-`, and contain no whitespace or
/// control characters (they end up in metric names, endpoint paths and file names).
pub fn validate_role(role: &str) -> Result<(), ResourcesError> {
    if role == ANY_ROLE {
        return Ok(());
    }
    let invalid = |reason: &'static str| ResourcesError::InvalidRole {
        role: role.to_owned(),
        reason,
    };
    if role.is_empty() {
        return Err(invalid("role names must not be empty"));
    }
    if role.starts_with('/') || role.ends_with('/') {
        return Err(invalid("roles must not start or end with '/'"));
    }
    role.split('/')
        .try_for_each(validate_component)
        .map_err(invalid)
}

/// Checks one component of a nested role, returning the broken rule.
fn validate_component(component: &str) -> Result<(), &'static str> {
    match component {
        "" => Err("roles must not contain an empty component ('//')"),
        "." | ".." => Err("role components must not be '.' or '..'"),
        ANY_ROLE => Err("'*' is only valid as a whole role"),
        _ if component.starts_with('-') => Err("role components must not start with '-'"),
        _ if component
            .chars()
            .any(|c| c.is_whitespace() || c.is_control()) =>
        {
            Err("roles must not contain whitespace or control characters")
        }
        _ => Ok(()),
    }
}

/// Returns true if `descendant` sits strictly below `ancestor` in the role tree: `a/b` is a
/// strict subrole of `a`, but `a` is not of itself and `ab` is not of `a`.
pub fn is_strict_subrole_of(descendant: &str, ancestor: &str) -> bool {
    descendant
        .strip_prefix(ancestor)
        .is_some_and(|rest| rest.starts_with('/'))
}

/// Returns the ancestors of a nested role, nearest first: `a/b/c` gives `a/b`, then `a`.
pub fn role_ancestors(role: &str) -> impl Iterator<Item = &str> {
    role.rmatch_indices('/').map(move |(idx, _)| &role[..idx])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_roles() {
        for role in ["*", "ops", "eng/web", "a/b/c", "a.b", "a-b", "_x", "a*b"] {
            assert_eq!(validate_role(role), Ok(()), "{role}");
        }
    }

    #[test]
    fn invalid_roles_say_why() {
        let cases = [
            ("", "role names must not be empty"),
            ("/a", "roles must not start or end with '/'"),
            ("a/", "roles must not start or end with '/'"),
            ("a//b", "roles must not contain an empty component ('//')"),
            (".", "role components must not be '.' or '..'"),
            ("a/..", "role components must not be '.' or '..'"),
            ("a/*", "'*' is only valid as a whole role"),
            ("-a", "role components must not start with '-'"),
            ("a/-b", "role components must not start with '-'"),
            (
                "a b",
                "roles must not contain whitespace or control characters",
            ),
            (
                "a\u{7f}",
                "roles must not contain whitespace or control characters",
            ),
            (
                "a\tb",
                "roles must not contain whitespace or control characters",
            ),
        ];
        for (role, reason) in cases {
            let message = format!("invalid role '{role}': {reason}");
            assert_eq!(
                validate_role(role).map_err(|err| err.to_string()),
                Err(message),
                "{role:?}"
            );
        }
    }

    #[test]
    fn strict_subroles() {
        assert!(is_strict_subrole_of("a/b", "a"));
        assert!(is_strict_subrole_of("a/b/c", "a"));
        assert!(!is_strict_subrole_of("a", "a"));
        assert!(!is_strict_subrole_of("ab", "a"));
        assert!(!is_strict_subrole_of("a", "a/b"));
    }

    #[test]
    fn ancestors_nearest_first() {
        assert_eq!(role_ancestors("a/b/c").collect::<Vec<_>>(), ["a/b", "a"]);
        assert_eq!(role_ancestors("a").count(), 0);
    }
}
