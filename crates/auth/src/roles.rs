//! Organization roles and what each may do (SECURITY.md, "Access control and tenancy").
//!
//! Roles are ordered owner > admin > member, and each permission has a minimum role:
//!
//! | Permission | Minimum role |
//! |---|---|
//! | [`ReadOrg`](Permission::ReadOrg), [`ManageJobs`](Permission::ManageJobs) | member |
//! | [`ManageMembers`](Permission::ManageMembers), [`ManageInvitations`](Permission::ManageInvitations), [`ManageApiKeys`](Permission::ManageApiKeys), [`ManageNotifications`](Permission::ManageNotifications), [`ReadAuditLog`](Permission::ReadAuditLog), [`RotateSigningSecret`](Permission::RotateSigningSecret), [`UpdateOrg`](Permission::UpdateOrg) | admin |
//! | [`DeleteOrg`](Permission::DeleteOrg), [`ManageOwners`](Permission::ManageOwners) | owner |
//!
//! ```
//! use punctual_auth::roles::{role_allows, Permission, Role};
//!
//! assert!(role_allows("member", Permission::ManageJobs));
//! assert!(!role_allows("admin", Permission::DeleteOrg));
//! assert!(!role_allows("superuser", Permission::ReadOrg)); // unknown role: nothing
//!
//! let role: Role = "admin".parse()?;
//! assert!(role.allows(Permission::ManageApiKeys));
//! assert_eq!(role.as_str(), "admin");
//! # Ok::<(), punctual_auth::AuthError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use crate::AuthError;

/// A member's role in an organization.
///
/// Its text form (`FromStr`, [`as_str`](Role::as_str), `Display`, serde) is `owner`,
/// `admin` or `member`, exactly, lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, including deleting the organization and managing owners.
    Owner,
    /// Everything but deleting the organization and managing owners.
    Admin,
    /// Reads the organization and manages its jobs.
    Member,
}

impl Role {
    /// All roles, strongest first.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    /// `"owner"`, `"admin"` or `"member"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// Position in owner > admin > member: member 0, admin 1, owner 2.
    #[must_use]
    pub const fn rank(self) -> u8 {
        match self {
            Role::Owner => 2,
            Role::Admin => 1,
            Role::Member => 0,
        }
    }

    /// Whether this role is `other` or stronger (`Admin.at_least(Member)` is `true`).
    #[must_use]
    pub const fn at_least(self, other: Role) -> bool {
        self.rank() >= other.rank()
    }

    /// Whether this role grants `permission`.
    #[must_use]
    pub const fn allows(self, permission: Permission) -> bool {
        self.at_least(permission.minimum_role())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    /// Parses `owner`, `admin` or `member` (exact, lowercase).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "member" => Ok(Role::Member),
            _ => Err(AuthError::UnknownRole),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a member of an organization may be allowed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    /// See the organization, its members and its jobs. Member.
    ReadOrg,
    /// Create, update, pause, trigger and delete jobs. Member.
    ManageJobs,
    /// Change members' roles (below owner) and remove members. Admin.
    ManageMembers,
    /// Invite people and revoke invitations. Admin.
    ManageInvitations,
    /// Create and revoke API keys. Admin.
    ManageApiKeys,
    /// Change notification settings. Admin.
    ManageNotifications,
    /// Read the audit log. Admin.
    ReadAuditLog,
    /// Rotate the webhook signing secret. Admin.
    RotateSigningSecret,
    /// Rename the organization. Admin.
    UpdateOrg,
    /// Delete the organization. Owner.
    DeleteOrg,
    /// Grant or remove the owner role. Owner.
    ManageOwners,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 11] = [
        Permission::ReadOrg,
        Permission::ManageJobs,
        Permission::ManageMembers,
        Permission::ManageInvitations,
        Permission::ManageApiKeys,
        Permission::ManageNotifications,
        Permission::ReadAuditLog,
        Permission::RotateSigningSecret,
        Permission::UpdateOrg,
        Permission::DeleteOrg,
        Permission::ManageOwners,
    ];

    /// The weakest role that grants this permission.
    #[must_use]
    pub const fn minimum_role(self) -> Role {
        match self {
            Permission::ReadOrg | Permission::ManageJobs => Role::Member,
            Permission::ManageMembers
            | Permission::ManageInvitations
            | Permission::ManageApiKeys
            | Permission::ManageNotifications
            | Permission::ReadAuditLog
            | Permission::RotateSigningSecret
            | Permission::UpdateOrg => Role::Admin,
            Permission::DeleteOrg | Permission::ManageOwners => Role::Owner,
        }
    }
}

/// Whether the role named `role` (`"owner"`, `"admin"` or `"member"`) grants `p`.
///
/// An unknown role name grants nothing.
#[must_use]
pub fn role_allows(role: &str, p: Permission) -> bool {
    role.parse::<Role>().is_ok_and(|r| r.allows(p))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use Permission::*;

    #[test]
    fn members_read_and_manage_jobs_only() {
        for p in Permission::ALL {
            assert_eq!(
                role_allows("member", p),
                matches!(p, ReadOrg | ManageJobs),
                "{p:?}"
            );
        }
    }

    #[test]
    fn admins_do_all_but_delete_org_and_manage_owners() {
        for p in Permission::ALL {
            assert_eq!(
                role_allows("admin", p),
                !matches!(p, DeleteOrg | ManageOwners),
                "{p:?}"
            );
        }
        for p in [
            ManageMembers,
            ManageInvitations,
            ManageApiKeys,
            ManageNotifications,
            ReadAuditLog,
            RotateSigningSecret,
            UpdateOrg,
        ] {
            assert!(role_allows("admin", p));
            assert!(!role_allows("member", p));
        }
    }

    #[test]
    fn owners_do_everything() {
        for p in Permission::ALL {
            assert!(role_allows("owner", p), "{p:?}");
        }
        assert!(role_allows("owner", DeleteOrg));
        assert!(role_allows("owner", ManageOwners));
    }

    #[test]
    fn unknown_roles_grant_nothing() {
        for role in [
            "",
            "Owner",
            "ADMIN",
            " member",
            "superuser",
            "platform_admin",
        ] {
            for p in Permission::ALL {
                assert!(!role_allows(role, p), "{role:?} {p:?}");
            }
            assert_eq!(role.parse::<Role>(), Err(AuthError::UnknownRole));
        }
    }

    #[test]
    fn role_text_round_trip_and_order() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(r.to_string(), r.as_str());
        }
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(Role::Admin.at_least(Role::Member));
        assert!(Role::Admin.at_least(Role::Admin));
        assert!(!Role::Member.at_least(Role::Admin));
        assert!(!Role::Admin.at_least(Role::Owner));
    }

    #[test]
    fn role_serde_is_lowercase() {
        use serde::de::value::{Error, StrDeserializer};
        use serde::de::IntoDeserializer;
        use serde::Deserialize;
        let de: StrDeserializer<'_, Error> = "admin".into_deserializer();
        assert_eq!(Role::deserialize(de), Ok(Role::Admin));
        let de: StrDeserializer<'_, Error> = "Admin".into_deserializer();
        assert!(Role::deserialize(de).is_err());
    }
}
