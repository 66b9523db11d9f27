//! A dashboard or portal session over plain HTTP, for the web pages'
//! refusals and the answers a browser does not show: its cookie and its
//! form token, forms sent urlencoded or as `multipart/form-data`.

use reqwest::StatusCode;

use crate::support::TestServer;

pub struct Http {
    pub client: reqwest::Client,
    pub base: String,
    pub cookie: String,
    pub csrf: String,
}

/// The value of the first `name="csrf"` field of a page.
fn form_token(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().unwrap().to_owned()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The cookie a response sets, checked for the attributes every session cookie has.
fn session_cookie(r: &reqwest::Response, path: &str) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    assert!(set.contains(&format!("Path={path}")), "{set}");
    set.split(';').next().unwrap().to_owned()
}

impl Http {
    /// A dashboard session signed in with admin key `key`.
    pub async fn sign_in(s: &TestServer, key: &str) -> Http {
        let client = client();
        let base = format!("http://{}", s.addr);
        let r = client
            .post(format!("{base}/admin/sign-in"))
            .form(&[("key", key)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let cookie = session_cookie(&r, "/admin");
        let mut http = Http {
            client,
            base,
            cookie,
            csrf: String::new(),
        };
        let html = http.get("/admin").await.text().await.unwrap();
        http.csrf = form_token(&html);
        http
    }

    /// A portal session opened with link `url`.
    pub async fn open(s: &TestServer, url: &str) -> Http {
        let client = client();
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()["location"], "/portal");
        let cookie = session_cookie(&r, "/portal");
        let mut http = Http {
            client,
            base: format!("http://{}", s.addr),
            cookie,
            csrf: String::new(),
        };
        let r = http.get("/portal").await;
        assert_eq!(r.status(), StatusCode::OK);
        http.csrf = form_token(&r.text().await.unwrap());
        http
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// Posts `fields` and, when given, a file `(field, file name, content)`
    /// as `multipart/form-data`, as a browser sends a form with a file input.
    pub async fn post_multipart(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        file: Option<(&str, &str, &[u8])>,
    ) -> reqwest::Response {
        const BOUNDARY: &str = "----rosterTestBoundary7MA4YWxkTrZu0gW";
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        if let Some((name, file_name, content)) = file {
            body.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/json\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.client
            .post(format!("{}{path}", self.base))
            .header("cookie", &self.cookie)
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(body)
            .send()
            .await
            .unwrap()
    }
}
