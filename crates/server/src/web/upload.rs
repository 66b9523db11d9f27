//! Forms that upload a file (`multipart/form-data`): the key file of a
//! Google Workspace directory. The whole form is read within a bound, then
//! its `csrf` field is checked like any other form's ([`super::csrf`]), and
//! only then is anything done with it.

use std::collections::HashMap;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Multipart, Request};
use axum::response::{IntoResponse, Response};

use super::csrf::{CsrfBound, FIELD, matches};
use crate::error::PageError;
use crate::state::AppState;

/// The largest file a form takes: a service-account key file is about 2.3 KiB.
pub const MAX_FILE: usize = 64 * 1024;
/// The largest whole form: the file, the same again pasted, and the fields.
const MAX_FORM: usize = 3 * MAX_FILE;

fn too_large() -> PageError {
    PageError::payload_too_large(format!(
        "The form is too large: a key file may be at most {} KiB (a Google service-account key file is about 2 KiB). Choose the .json key file Google Cloud gave you.",
        MAX_FILE / 1024
    ))
}

/// A POSTed multipart form of a signed-in session `S`, its token checked:
/// its text fields, and its files' contents by field name.
pub struct Uploaded<S> {
    pub session: S,
    pub fields: HashMap<String, String>,
    pub files: HashMap<String, Vec<u8>>,
}

impl<S> Uploaded<S> {
    /// A text field, empty when absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    /// The text of file field `file`, or else of text field `pasted`,
    /// whichever holds something; an error when the file is not UTF-8.
    pub fn file_or_pasted(&self, file: &str, pasted: &str) -> Result<Option<String>, String> {
        match self.files.get(file).filter(|b| !b.is_empty()) {
            Some(bytes) => String::from_utf8(bytes.clone())
                .map(Some)
                .map_err(|_| "the uploaded file is not a text (JSON) file".to_owned()),
            None => Ok(Some(self.field(pasted).trim().to_owned()).filter(|s| !s.is_empty())),
        }
    }
}

impl<S> FromRequest<AppState> for Uploaded<S>
where
    S: FromRequestParts<AppState, Rejection = Response> + CsrfBound + Send,
{
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let session = S::from_request_parts(&mut parts, state).await?;
        let bytes = to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| too_large().into_response())?;
        let req = Request::from_parts(parts, Body::from(bytes));
        let mut form = Multipart::from_request(req, state).await.map_err(|_| {
            PageError::bad_request("this form must be sent as multipart/form-data").into_response()
        })?;
        let mut fields = HashMap::new();
        let mut files = HashMap::new();
        loop {
            let field = match form.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    return Err(
                        PageError::bad_request(format!("the form is damaged: {e}")).into_response()
                    );
                }
            };
            let name = field.name().unwrap_or_default().to_owned();
            let is_file = field.file_name().is_some();
            let data = field.bytes().await.map_err(|e| {
                PageError::bad_request(format!("the form is damaged: {e}")).into_response()
            })?;
            if data.len() > MAX_FILE {
                return Err(too_large().into_response());
            }
            if is_file {
                files.insert(name, data.to_vec());
            } else {
                fields.insert(name, String::from_utf8_lossy(&data).into_owned());
            }
        }
        if !matches(session.csrf(), fields.get(FIELD).map(String::as_str)) {
            crate::metrics::auth_failure("web", "csrf");
            return Err(PageError::forbidden(
                "this form has expired or did not come from this page; reload the page and try again",
            )
            .into_response());
        }
        Ok(Uploaded {
            session,
            fields,
            files,
        })
    }
}
