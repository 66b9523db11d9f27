//! Per-directory bearer tokens. A token of one directory never reaches another:
//! a valid token on another directory's path is 404, so existence never leaks.

use axum::extract::{FromRequestParts, Path};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use roster_scim::ScimError;

use crate::error::ApiError;
use crate::rate_limit::too_many_requests;
use crate::state::AppState;
use crate::token_cache::{TokenDigest, token_digest};

/// The directory a request is authorised for, taken from the path and proven by the token.
#[derive(Debug, Clone)]
pub struct DirectoryAuth {
    pub directory_id: String,
}

impl FromRequestParts<AppState> for DirectoryAuth {
    // A Response, not an ApiError: a 429 carries a Retry-After header.
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let (auth, digest) = authenticate(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        // The limit applies to proven tokens only: a guessed token never
        // reaches a bucket, so bogus requests cannot fill the limiter's memory.
        if let Err(retry_after) = state.limiter.check(digest, &auth.directory_id) {
            return Err(too_many_requests(retry_after));
        }
        crate::provider::note(state, &auth.directory_id, parts).await;
        Ok(auth)
    }
}

/// The directory the request's token proves, and the token's digest (the
/// key of the token cache and of the rate limiter's bucket).
async fn authenticate(
    parts: &mut Parts,
    state: &AppState,
) -> Result<(DirectoryAuth, TokenDigest), ApiError> {
    let token = bearer(parts).ok_or_else(|| {
        ScimError::new(
            401,
            None,
            "send the directory's token as \"Authorization: Bearer <token>\"",
        )
    })?;
    let digest = token_digest(token);
    let owner = match state.tokens.get(&digest) {
        Some(dir) => dir,
        None => {
            let dir = state.store.authenticate(token).await?.ok_or_else(|| {
                ScimError::new(401, None, "the bearer token is unknown or revoked")
            })?;
            state.tokens.insert(digest, &dir);
            dir
        }
    };
    let Path(params): Path<Vec<(String, String)>> = Path::from_request_parts(parts, state)
        .await
        .map_err(|_| ScimError::not_found("no such directory"))?;
    let wanted = params
        .iter()
        .find(|(k, _)| k == "dir")
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    if wanted != owner {
        return Err(ScimError::not_found(format!("no directory {wanted}")).into());
    }
    Ok((
        DirectoryAuth {
            directory_id: owner,
        },
        digest,
    ))
}

/// The bearer credential of a request (SCIM token or admin API key).
pub(crate) fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
