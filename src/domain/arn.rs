//! AWS identifiers: account ids, partitions, region codes, role and principal ARNs.

use std::fmt;

/// The AWS partitions jit-iam supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    Aws,
    AwsCn,
    AwsUsGov,
}

impl Partition {
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "aws" => Some(Self::Aws),
            "aws-cn" => Some(Self::AwsCn),
            "aws-us-gov" => Some(Self::AwsUsGov),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsCn => "aws-cn",
            Self::AwsUsGov => "aws-us-gov",
        }
    }

    /// The partition a (well-formed) region code belongs to.
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::AwsCn
        } else if region.starts_with("us-gov-") {
            Self::AwsUsGov
        } else {
            Self::Aws
        }
    }
}

/// A 12-digit AWS account id.
pub fn is_account_id(value: &str) -> bool {
    value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit())
}

/// A region code such as `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`.
pub fn is_region_code(value: &str) -> bool {
    let parts: Vec<&str> = value.split('-').collect();
    let (area, qualifier, direction, number) = match parts.as_slice() {
        [area, direction, number] => (*area, None, *direction, *number),
        [area, qualifier, direction, number] => (*area, Some(*qualifier), *direction, *number),
        _ => return false,
    };
    const DIRECTIONS: [&str; 9] =
        ["east", "west", "north", "south", "central", "northeast", "northwest", "southeast", "southwest"];
    area.len() == 2
        && area.bytes().all(|b| b.is_ascii_lowercase())
        && qualifier.is_none_or(|q| {
            q == "gov" || q.strip_prefix("iso").is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_lowercase()))
        })
        && DIRECTIONS.contains(&direction)
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

/// Characters IAM allows in role, user and policy names: `[\w+=,.@-]`.
pub fn is_iam_name(value: &str, max_len: usize) -> bool {
    !value.is_empty()
        && value.len() <= max_len
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
}

/// An IAM path: `/` or `/segment/.../`, at most 512 characters.
fn is_iam_path(value: &str) -> bool {
    if value == "/" {
        return true;
    }
    value.len() <= 512
        && value.starts_with('/')
        && value.ends_with('/')
        && value[1..value.len() - 1].split('/').all(|segment| is_iam_name(segment, 512))
}

/// `arn:<partition>:iam::<account>:role/<path><name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleArn {
    pub partition: Partition,
    pub account_id: String,
    pub path: String,
    pub name: String,
}

impl RoleArn {
    pub fn parse(value: &str) -> Result<Self, String> {
        let expected = "expected arn:aws:iam::<12-digit account>:role/<name> (partitions aws, aws-cn, aws-us-gov)";
        let mut parts = value.splitn(6, ':');
        let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account_id), Some(resource)) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(format!("not a role ARN: {expected}"));
        };
        let partition =
            Partition::parse(partition).ok_or_else(|| format!("unknown partition `{partition}`: {expected}"))?;
        if !is_account_id(account_id) {
            return Err(format!("the account in the ARN is not 12 digits: {expected}"));
        }
        let Some(path_and_name) = resource.strip_prefix("role/") else {
            return Err(format!("not a role ARN: {expected}"));
        };
        let (path, name) = match path_and_name.rfind('/') {
            Some(i) => (format!("/{}", &path_and_name[..=i]), &path_and_name[i + 1..]),
            None => ("/".to_string(), path_and_name),
        };
        if !is_iam_name(name, 64) {
            return Err("the role name must be 1-64 characters of letters, digits and +=,.@_-".into());
        }
        if !is_iam_path(&path) {
            return Err("the role path is not a valid IAM path".into());
        }
        Ok(Self { partition, account_id: account_id.to_string(), path, name: name.to_string() })
    }

    /// The same role name and path in another account (organization member roles).
    pub fn in_account(partition: Partition, account_id: &str, name: &str) -> Self {
        Self { partition, account_id: account_id.to_string(), path: "/".into(), name: name.to_string() }
    }
}

impl fmt::Display for RoleArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "arn:{}:iam::{}:role{}{}", self.partition.as_str(), self.account_id, self.path, self.name)
    }
}

/// An identity that can be named in a trust policy's `Principal.AWS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalArn(String);

impl PrincipalArn {
    /// Accepts an IAM role or user ARN, or an STS assumed-role ARN (as
    /// sts:GetCallerIdentity returns it for a pod's role), which is turned into
    /// the ARN of the role itself: trust policies cannot name sessions.
    pub fn parse(value: &str) -> Result<Self, String> {
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [arn, partition, service, "", account_id, resource] = parts.as_slice() else {
            return Err(format!("`{value}` is not an ARN"));
        };
        if *arn != "arn" || Partition::parse(partition).is_none() || !is_account_id(account_id) {
            return Err(format!("`{value}` is not an ARN of a known partition and account"));
        }
        match (*service, resource.split_once('/')) {
            ("iam", Some(("role" | "user", rest))) if !rest.is_empty() => Ok(Self(value.to_string())),
            ("sts", Some(("assumed-role", rest))) => {
                let role = rest
                    .split('/')
                    .next()
                    .filter(|r| is_iam_name(r, 64))
                    .ok_or_else(|| format!("`{value}` does not name a role"))?;
                Ok(Self(format!("arn:{partition}:iam::{account_id}:role/{role}")))
            }
            _ => Err(format!("`{value}` is not the ARN of an IAM role or user")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_codes() {
        for ok in ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "ap-southeast-4", "us-isob-east-1"] {
            assert!(is_region_code(ok), "{ok}");
        }
        for bad in ["", "us-east", "useast-1", "US-EAST-1", "us-up-1", "us-east-100", "global", "us-east-1a"] {
            assert!(!is_region_code(bad), "{bad}");
        }
    }

    #[test]
    fn role_arns_parse_and_print() {
        let arn = RoleArn::parse("arn:aws:iam::123456789012:role/jit-iam-access").unwrap();
        assert_eq!(arn.account_id, "123456789012");
        assert_eq!(arn.name, "jit-iam-access");
        assert_eq!(arn.to_string(), "arn:aws:iam::123456789012:role/jit-iam-access");
        let with_path = RoleArn::parse("arn:aws-us-gov:iam::123456789012:role/ops/team/x").unwrap();
        assert_eq!(with_path.path, "/ops/team/");
        assert_eq!(with_path.to_string(), "arn:aws-us-gov:iam::123456789012:role/ops/team/x");
        for bad in [
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:azure:iam::123456789012:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role//x",
        ] {
            assert!(RoleArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn assumed_role_sessions_become_role_principals() {
        let p = PrincipalArn::parse("arn:aws:sts::111122223333:assumed-role/jit-iam-pod/i-123").unwrap();
        assert_eq!(p.as_str(), "arn:aws:iam::111122223333:role/jit-iam-pod");
        let u = PrincipalArn::parse("arn:aws:iam::111122223333:user/svc").unwrap();
        assert_eq!(u.as_str(), "arn:aws:iam::111122223333:user/svc");
        assert!(PrincipalArn::parse("arn:aws:iam::111122223333:root").is_err());
    }
}
