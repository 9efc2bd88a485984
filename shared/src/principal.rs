//! Who is calling: the verified identity every access decision is made for. Tenancy always comes
//! from here, never from the request.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use serde_json::Value;

use crate::ids::{InvalidId, SessionId, TenantId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    ContentRead,
    ContentWrite,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ContentRead => "content:read",
            Scope::ContentWrite => "content:write",
            Scope::Admin => "admin",
        }
    }

    /// Unknown scopes are ignored rather than refused: identity providers add their own.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "content:read" => Some(Scope::ContentRead),
            "content:write" => Some(Scope::ContentWrite),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    pub fn parse_list(space_separated: &str) -> BTreeSet<Scope> {
        space_separated.split_whitespace().filter_map(Scope::parse).collect()
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    Jwt,
    ApiToken,
}

impl Credential {
    fn as_str(self) -> &'static str {
        match self {
            Credential::Jwt => "jwt",
            Credential::ApiToken => "api_token",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: TenantId,
    pub subject: String,
    pub session: SessionId,
    pub scopes: BTreeSet<Scope>,
    pub credential: Credential,
}

impl Principal {
    /// `admin` holds every permission within its own tenant.
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope) || self.scopes.contains(&Scope::Admin)
    }

    pub fn scope_string(&self) -> String {
        self.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
    }

    /// The authorizer's context, as API Gateway hands it to the functions behind it.
    pub fn to_context(&self) -> HashMap<String, Value> {
        HashMap::from([
            ("tenant".to_string(), Value::from(self.tenant.as_str())),
            ("sub".to_string(), Value::from(self.subject.as_str())),
            ("sid".to_string(), Value::from(self.session.as_str())),
            ("scope".to_string(), Value::from(self.scope_string())),
            ("credential".to_string(), Value::from(self.credential.as_str())),
        ])
    }

    /// Reads the context the authorizer produced. Only API Gateway can set it, so it is trusted;
    /// it is still validated so that a misconfigured route fails closed.
    pub fn from_context(context: &HashMap<String, Value>) -> Result<Self, InvalidId> {
        let text = |name: &'static str| {
            context
                .get(name)
                .and_then(Value::as_str)
                .ok_or(InvalidId { kind: "authorizer context", reason: format!("`{name}` is missing") })
        };
        Ok(Principal {
            tenant: TenantId::parse(text("tenant")?)?,
            subject: text("sub")?.to_string(),
            session: SessionId::parse(text("sid")?)?,
            scopes: Scope::parse_list(text("scope")?),
            credential: if text("credential").ok() == Some("api_token") { Credential::ApiToken } else { Credential::Jwt },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_round_trips() {
        let p = Principal {
            tenant: TenantId::parse("acme").unwrap(),
            subject: "auth0|42".into(),
            session: SessionId::parse("s1").unwrap(),
            scopes: Scope::parse_list("content:read openid admin"),
            credential: Credential::ApiToken,
        };
        assert_eq!(Principal::from_context(&p.to_context()).unwrap(), p);
        assert!(p.may(Scope::ContentWrite), "admin implies the others");
    }

    #[test]
    fn missing_context_fails_closed() {
        let err = Principal::from_context(&HashMap::new()).unwrap_err();
        assert!(err.to_string().contains("`tenant` is missing"));
    }
}
