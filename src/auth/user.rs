//! The authenticated identity of a request (k8s.io/apiserver's user.Info) and the
//! well-known user and group names.

use std::collections::BTreeMap;

/// User of unauthenticated requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// Group of unauthenticated requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// Group added to every authenticated user.
pub const AUTHENTICATED: &str = "system:authenticated";
/// Group that bypasses authorization.
pub const MASTERS: &str = "system:masters";

/// Who made a request; handlers find it in the request extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Unique id, empty when unknown.
    pub uid: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Extra attributes (keys lowercase).
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// `system:anonymous` in group `system:unauthenticated`.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
            ..Self::default()
        }
    }

    /// A user with a name and groups.
    pub fn new(name: impl Into<String>, groups: Vec<String>) -> Self {
        Self {
            name: name.into(),
            groups,
            ..Self::default()
        }
    }

    /// Adds `system:authenticated` as k8s.io/apiserver's AuthenticatedGroupAdder does: not for
    /// the anonymous user, not when either of the all-users groups is already present.
    pub fn with_authenticated_group(mut self) -> Self {
        if self.name == ANONYMOUS
            || self
                .groups
                .iter()
                .any(|g| g == AUTHENTICATED || g == UNAUTHENTICATED)
        {
            return self;
        }
        self.groups.push(AUTHENTICATED.to_owned());
        self
    }

    /// Whether the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticated_group_is_added_once_and_never_to_anonymous() {
        let user = UserInfo::new("jane", vec!["dev".to_owned()]).with_authenticated_group();
        assert_eq!(user.groups, ["dev", AUTHENTICATED]);
        assert_eq!(user.clone().with_authenticated_group(), user);
        let anonymous = UserInfo::anonymous().with_authenticated_group();
        assert_eq!(anonymous.groups, [UNAUTHENTICATED]);
    }
}
