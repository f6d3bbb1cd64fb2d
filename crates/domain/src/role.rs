//! Roles of organization members.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;

/// What a member may do in an organization; a higher role may do everything a lower one
/// may: `owner` > `admin` > `member`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// May also delete the organization and manage owners.
    Owner,
    /// May also manage members, invitations, API keys, notifications and read the audit log.
    Admin,
    /// Reads and manages jobs.
    Member,
}

impl Role {
    /// Every role, highest first.
    pub const ALL: [Role; 3] = [Role::Owner, Role::Admin, Role::Member];

    /// The wire name: `owner`, `admin` or `member`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Member => "member",
        }
    }

    /// A number that orders roles by power: owner 3, admin 2, member 1.
    pub fn rank(&self) -> u8 {
        match self {
            Role::Owner => 3,
            Role::Admin => 2,
            Role::Member => 1,
        }
    }

    /// Whether this role is `other` or a more powerful one
    /// (`Role::Admin.at_least(Role::Member)` is true).
    pub fn at_least(&self, other: Role) -> bool {
        self.rank() >= other.rank()
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = DomainError;

    /// Parses the exact wire name (`owner`, `admin`, `member`); errors name the field `role`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| DomainError::invalid("role", "must be one of owner, admin, member"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
            assert_eq!(
                serde_json::to_string(&role).unwrap(),
                format!("\"{}\"", role.as_str())
            );
            assert_eq!(
                serde_json::from_str::<Role>(&format!("\"{role}\"")).unwrap(),
                role
            );
        }
    }

    #[test]
    fn rejects_unknown_names_naming_the_field() {
        for bad in ["", "Owner", "OWNER", "root", "viewer", " admin"] {
            assert_eq!(bad.parse::<Role>().unwrap_err().field(), "role", "{bad:?}");
        }
    }

    #[test]
    fn orders_owner_over_admin_over_member() {
        use Role::*;
        assert!(Owner.rank() > Admin.rank() && Admin.rank() > Member.rank());
        let table = [
            (Owner, Owner, true),
            (Owner, Admin, true),
            (Owner, Member, true),
            (Admin, Owner, false),
            (Admin, Admin, true),
            (Admin, Member, true),
            (Member, Owner, false),
            (Member, Admin, false),
            (Member, Member, true),
        ];
        for (role, other, expected) in table {
            assert_eq!(role.at_least(other), expected, "{role} at least {other}");
        }
    }
}
