//! `password` is write-only: kept as an Argon2id hash, checked so that a client
//! resending the same password (Okta does, on every PUT) changes nothing.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use roster_scim::ScimError;
use roster_scim::filter::parse_patch_path;
use roster_scim::schema::USER_SCHEMA;
use serde_json::{Map, Value};

/// Hashes `plain`, or keeps `current` when it already is the hash of `plain`.
pub async fn hash_or_keep(plain: String, current: Option<String>) -> Result<String, ScimError> {
    tokio::task::spawn_blocking(move || {
        if let Some(cur) = &current
            && Argon2::default()
                .verify_password(plain.as_bytes(), cur.as_str())
                .is_ok()
        {
            return Ok(cur.clone());
        }
        // The salt comes from the OS random source.
        let hash: Result<PasswordHash, _> = Argon2::default().hash_password(plain.as_bytes());
        hash.map(|h| h.to_string())
            .map_err(|e| ScimError::internal(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| ScimError::internal(format!("password hashing failed: {e}")))?
}

pub fn is_hash(s: &str) -> bool {
    s.starts_with("$argon2")
}

/// Replaces every plaintext `password` a request body carries (resource bodies
/// and PATCH operations) with its hash, before the body is processed.
pub async fn hash_in_body(body: &mut Value, current: Option<&str>) -> Result<(), ScimError> {
    for slot in password_slots(body) {
        if let Value::String(plain) = slot {
            if is_hash(plain) {
                // A hash is never accepted from outside: it would let a client pick the stored value.
                return Err(ScimError::invalid_value("password must be plaintext"));
            }
            *plain = hash_or_keep(std::mem::take(plain), current.map(str::to_owned)).await?;
        }
    }
    Ok(())
}

const PASSWORD: &str = "password";

/// Whether a body key or PATCH path names the core `password` attribute, in
/// any spelling the PATCH engine and the validator accept: any case, padded
/// with spaces, or qualified with the core User schema URN.
fn names_password(text: &str) -> bool {
    // Such a path ends in the attribute's name: the parse, which cost a
    // user created through `/Bulk` about 2% of its instructions (one per
    // key of the body), runs only for the keys that do.
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() < PASSWORD.len()
        || !bytes[bytes.len() - PASSWORD.len()..].eq_ignore_ascii_case(PASSWORD.as_bytes())
    {
        return false;
    }
    parse_patch_path(text).is_ok_and(|p| {
        p.filter.is_none()
            && p.path.sub_attr.is_none()
            && p.path.attr.eq_ignore_ascii_case(PASSWORD)
            && p.path
                .uri
                .as_deref()
                .is_none_or(|u| u.eq_ignore_ascii_case(USER_SCHEMA))
    })
}

/// The password values of a resource object (a POST/PUT body or a pathless
/// PATCH value), including those nested under the core schema URN key, which
/// pathless PATCH reads as the resource itself.
fn object_slots<'a>(obj: &'a mut Map<String, Value>, out: &mut Vec<&'a mut Value>) {
    for (k, v) in obj.iter_mut() {
        if names_password(k) {
            out.push(v);
        } else if k.eq_ignore_ascii_case(USER_SCHEMA)
            && let Value::Object(inner) = v
        {
            object_slots(inner, out);
        }
    }
}

/// Mutable references to each value that sets `password`.
pub(crate) fn password_slots(body: &mut Value) -> Vec<&mut Value> {
    let mut out = Vec::new();
    let Value::Object(obj) = body else {
        return out;
    };
    let ops_key = obj
        .keys()
        .find(|k| k.eq_ignore_ascii_case("Operations"))
        .cloned();
    if let Some(key) = ops_key {
        if let Some(Value::Array(ops)) = obj.get_mut(&key) {
            for op in ops.iter_mut().filter_map(Value::as_object_mut) {
                let path_is_password = op.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case("path") && v.as_str().is_some_and(names_password)
                });
                for (k, v) in op.iter_mut() {
                    if k.eq_ignore_ascii_case("value") {
                        if path_is_password {
                            out.push(v);
                        } else if let Value::Object(vals) = v {
                            object_slots(vals, &mut out);
                        }
                    }
                }
            }
        }
        return out;
    }
    object_slots(obj, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn hashes_plaintext_and_keeps_a_matching_hash() {
        let mut body = json!({"userName": "a", "password": "s3cret!"});
        hash_in_body(&mut body, None).await.unwrap();
        let h = body["password"].as_str().unwrap().to_owned();
        assert!(is_hash(&h));
        let mut again = json!({"Password": "s3cret!"});
        hash_in_body(&mut again, Some(&h)).await.unwrap();
        assert_eq!(again["Password"], h.as_str());
        let mut patch =
            json!({"Operations": [{"op": "replace", "path": "password", "value": "x"}]});
        hash_in_body(&mut patch, None).await.unwrap();
        assert!(is_hash(patch["Operations"][0]["value"].as_str().unwrap()));
        for key in [
            " Password",
            "urn:ietf:params:scim:schemas:core:2.0:User:password",
        ] {
            assert!(names_password(key), "{key}");
        }
        for key in [
            "passwords",
            "name.password",
            "urn:x:y:password",
            "password[value eq \"x\"]",
        ] {
            assert!(!names_password(key), "{key}");
        }
        let mut nested = json!({"Operations": [{"op": "add", "value": {
            "urn:ietf:params:scim:schemas:core:2.0:User": {"password": "y"}
        }}]});
        hash_in_body(&mut nested, None).await.unwrap();
        let v = &nested["Operations"][0]["value"]["urn:ietf:params:scim:schemas:core:2.0:User"];
        assert!(is_hash(v["password"].as_str().unwrap()));
        let mut forged = json!({"password": h});
        assert!(hash_in_body(&mut forged, None).await.is_err());
    }
}
