//! Named-parameter parsing with errors that name the offending field.
//!
//! jsonrpsee hands us raw JSON; [`Args`] checks that it is an object, that every key is a
//! parameter the method declares (see [`super::spec`]), and converts each value with a
//! message such as `invalid params: vni: expected an integer in 1..=16777215, got "x"`.

use std::net::IpAddr;

use ipnet::IpNet;
use jsonrpsee::types::Params;
use serde_json::{Map, Value};

use super::spec::MethodSpec;
use crate::error::ApiError;
use crate::model::{
    MacAddr, PORT_IPS_MAX, ProviderNet, VLAN_MAX, VLAN_MIN, parse_cidr, parse_port_ip,
};

/// Longest string value accepted for any parameter; names and descriptions have their
/// own, smaller limits checked later.
const MAX_STRING: usize = 4096;

/// The parameters of one call, consumed field by field.
#[derive(Debug)]
pub struct Args {
    map: Map<String, Value>,
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 64 {
        let cut: String = s.chars().take(60).collect();
        format!("{cut}…")
    } else {
        s
    }
}

/// An error about a member of an object parameter, named `field.member`.
fn member_of(field: &str, e: ApiError) -> ApiError {
    match e {
        ApiError::InvalidParams {
            field: member,
            message,
        } => ApiError::invalid(format!("{field}.{member}"), message),
        other => other,
    }
}

impl Args {
    /// Checks the shape of `params` against `spec`.
    pub fn parse(params: &Params<'_>, spec: &MethodSpec) -> Result<Args, ApiError> {
        let map = match params.as_str() {
            None => Map::new(),
            Some(raw) => match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                Ok(Value::Null) => Map::new(),
                Ok(Value::Array(a)) if a.is_empty() => Map::new(),
                Ok(_) => {
                    return Err(ApiError::invalid(
                        "params",
                        "parameters must be passed by name, as a JSON object",
                    ));
                }
                Err(e) => return Err(ApiError::invalid("params", e)),
            },
        };
        for key in map.keys() {
            if !spec.params.iter().any(|p| p.name == key) {
                let expected: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
                let field: String = key.chars().take(64).collect();
                return Err(ApiError::invalid(
                    field.clone(),
                    if expected.is_empty() {
                        format!("unknown parameter {field:?}; {} takes none", spec.name)
                    } else {
                        format!(
                            "unknown parameter {field:?}; {} takes {}",
                            spec.name,
                            expected.join(", ")
                        )
                    },
                ));
            }
        }
        Ok(Args { map })
    }

    /// Removes a field; JSON `null` counts as absent.
    fn take(&mut self, field: &str) -> Option<Value> {
        self.map.remove(field).filter(|v| !v.is_null())
    }

    fn required<T>(field: &str, v: Option<T>) -> Result<T, ApiError> {
        v.ok_or_else(|| ApiError::invalid(field, "required parameter is missing"))
    }

    pub fn opt_str(&mut self, field: &str) -> Result<Option<String>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) if s.len() <= MAX_STRING => Ok(Some(s)),
            Some(Value::String(s)) => Err(ApiError::invalid(
                field,
                format!("string of {} bytes is too long", s.len()),
            )),
            Some(v) => Err(ApiError::invalid(
                field,
                format!("expected a string, got {}", short(&v)),
            )),
        }
    }

    pub fn str(&mut self, field: &str) -> Result<String, ApiError> {
        let v = self.opt_str(field)?;
        Self::required(field, v)
    }

    pub fn opt_bool(&mut self, field: &str) -> Result<Option<bool>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(v) => Err(ApiError::invalid(
                field,
                format!("expected true or false, got {}", short(&v)),
            )),
        }
    }

    /// An integer in `min..=max`.
    pub fn opt_uint(&mut self, field: &str, min: u64, max: u64) -> Result<Option<u64>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(ApiError::invalid(
                    field,
                    format!("expected an integer in {min}..={max}, got {}", short(&v)),
                )),
            },
        }
    }

    pub fn uint(&mut self, field: &str, min: u64, max: u64) -> Result<u64, ApiError> {
        let v = self.opt_uint(field, min, max)?;
        Self::required(field, v)
    }

    pub fn opt_mac(&mut self, field: &str) -> Result<Option<MacAddr>, ApiError> {
        self.opt_str(field)?
            .map(|s| {
                s.parse::<MacAddr>()
                    .map_err(|e| ApiError::invalid(field, e))
            })
            .transpose()
    }

    pub fn mac(&mut self, field: &str) -> Result<MacAddr, ApiError> {
        let v = self.opt_mac(field)?;
        Self::required(field, v)
    }

    /// A list of port addresses.
    pub fn opt_ips(&mut self, field: &str) -> Result<Option<Vec<IpAddr>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => address_list(field, v, "addresses", |s| {
                parse_port_ip(s).map_err(|e| e.to_string())
            })
            .map(Some),
        }
    }

    /// `flood_vteps`: a list of VXLAN endpoint addresses (IPv4 or IPv6, no prefix).
    /// Duplicates and addresses no endpoint can have are refused by the planner.
    pub fn opt_vteps(&mut self, field: &str) -> Result<Option<Vec<IpAddr>>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(v) => address_list(field, v, "addresses", |s| {
                s.parse::<IpAddr>()
                    .map_err(|_| format!("{s:?} is not an IPv4 or IPv6 address"))
            })
            .map(Some),
        }
    }

    pub fn opt_cidr(&mut self, field: &str) -> Result<Option<IpNet>, ApiError> {
        self.opt_str(field)?
            .map(|s| parse_cidr(&s).map_err(|e| ApiError::invalid(field, e)))
            .transpose()
    }

    /// A prefix that must be written in CIDR form (`10.0.0.0/24`); a bare address is
    /// refused rather than guessed at. Host bits are kept: the caller decides what they mean.
    pub fn cidr(&mut self, field: &str) -> Result<IpNet, ApiError> {
        let s = self.str(field)?;
        parse_strict_cidr(&s).map_err(|e| ApiError::invalid(field, e))
    }

    /// A list of interface addresses in CIDR form (`10.0.0.1/24`).
    pub fn cidrs(&mut self, field: &str) -> Result<Vec<IpNet>, ApiError> {
        match self.take(field) {
            None => Err(ApiError::invalid(field, "required parameter is missing")),
            Some(v) => address_list(field, v, "addresses in CIDR form", |s| {
                parse_strict_cidr(s).map_err(|e| e.to_string())
            }),
        }
    }

    /// One plain IP address (not a prefix).
    pub fn ip(&mut self, field: &str) -> Result<IpAddr, ApiError> {
        let s = self.str(field)?;
        s.parse::<IpAddr>().map_err(|_| {
            ApiError::invalid(
                field,
                format!(
                    "{} is not an IPv4 or IPv6 address",
                    short(&Value::String(s.clone()))
                ),
            )
        })
    }

    pub fn opt_uuid(&mut self, field: &str) -> Result<Option<uuid::Uuid>, ApiError> {
        self.opt_str(field)?
            .map(|s| {
                uuid::Uuid::parse_str(&s).map_err(|_| {
                    ApiError::invalid(
                        field,
                        format!("{:?} is not a UUID", short(&Value::String(s))),
                    )
                })
            })
            .transpose()
    }

    /// A string from a fixed set, parsed with `FromStr`.
    pub fn opt_enum<T: std::str::FromStr>(
        &mut self,
        field: &str,
        allowed: &[&str],
    ) -> Result<Option<T>, ApiError> {
        match self.take(field) {
            None => Ok(None),
            Some(Value::String(s)) => s.parse::<T>().map(Some).map_err(|_| {
                ApiError::invalid(
                    field,
                    format!(
                        "{:?} is not one of {}",
                        short(&Value::String(s.clone())),
                        allowed.join(", ")
                    ),
                )
            }),
            Some(v) => Err(ApiError::invalid(
                field,
                format!("expected one of {}, got {}", allowed.join(", "), short(&v)),
            )),
        }
    }

    pub fn enumerated<T: std::str::FromStr>(
        &mut self,
        field: &str,
        allowed: &[&str],
    ) -> Result<T, ApiError> {
        let v = self.opt_enum(field, allowed)?;
        Self::required(field, v)
    }

    /// `{physnet, vlan?}`: where a provider switch meets the physical network. Errors
    /// name the member (`provider.vlan`); whether the physnet is a valid name is the
    /// planner's to say.
    pub fn opt_provider(&mut self, field: &str) -> Result<Option<ProviderNet>, ApiError> {
        let map = match self.take(field) {
            None => return Ok(None),
            Some(Value::Object(map)) => map,
            Some(v) => {
                return Err(ApiError::invalid(
                    field,
                    format!("expected an object {{physnet, vlan?}}, got {}", short(&v)),
                ));
            }
        };
        let mut inner = Args { map };
        if let Some(key) = inner
            .map
            .keys()
            .find(|k| !matches!(k.as_str(), "physnet" | "vlan"))
        {
            let key: String = key.chars().take(64).collect();
            return Err(ApiError::invalid(
                format!("{field}.{key}"),
                format!("unknown member {key:?}; {field} takes physnet, vlan"),
            ));
        }
        let physnet = inner.str("physnet").map_err(|e| member_of(field, e))?;
        let vlan = inner
            .opt_uint("vlan", u64::from(VLAN_MIN), u64::from(VLAN_MAX))
            .map_err(|e| member_of(field, e))?
            .and_then(|v| u16::try_from(v).ok());
        Ok(Some(ProviderNet { physnet, vlan }))
    }

    /// A raw JSON value (for nested objects parsed elsewhere).
    pub fn opt_value(&mut self, field: &str) -> Option<Value> {
        self.take(field)
    }

    pub fn value(&mut self, field: &str) -> Result<Value, ApiError> {
        Self::required(field, self.take(field))
    }
}

/// `addr/len` only: a bare address is an error that says CIDR form is required.
fn parse_strict_cidr(s: &str) -> Result<IpNet, String> {
    let shown = || short(&Value::String(s.to_string()));
    if s.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{} has no prefix length; CIDR form is required (e.g. 10.0.0.1/24)",
            shown()
        ));
    }
    s.parse::<IpNet>().map_err(|_| {
        format!(
            "{} is not in CIDR form (e.g. 10.0.0.1/24 or fd00::1/64)",
            shown()
        )
    })
}

/// A JSON array of at most [`PORT_IPS_MAX`] strings, each parsed by `parse`; errors name
/// `field` and say what was expected (`what`).
fn address_list<T>(
    field: &str,
    v: Value,
    what: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, ApiError> {
    let Value::Array(items) = v else {
        return Err(ApiError::invalid(
            field,
            format!("expected an array of {what}, got {}", short(&v)),
        ));
    };
    if items.len() > PORT_IPS_MAX {
        return Err(ApiError::invalid(
            field,
            format!("{} addresses given, at most {PORT_IPS_MAX}", items.len()),
        ));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => parse(s).map_err(|e| ApiError::invalid(field, e)),
            other => Err(ApiError::invalid(
                field,
                format!("expected {what} as strings, got {}", short(other)),
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_cidr_wants_a_prefix_length() {
        assert_eq!(
            parse_strict_cidr("10.0.0.1/24").unwrap().to_string(),
            "10.0.0.1/24",
            "host bits kept"
        );
        assert!(parse_strict_cidr("fd00::1/64").is_ok());
        let e = parse_strict_cidr("10.0.0.1").unwrap_err();
        assert!(e.contains("CIDR form is required"), "{e}");
        assert!(parse_strict_cidr("10.0.0.1/33").is_err());
        assert!(parse_strict_cidr("x").is_err());
    }
}
