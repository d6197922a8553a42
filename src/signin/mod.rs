//! Sign-in with identity providers (OpenID Connect, authorization code + PKCE): staff through
//! the municipality's provider ([`staff`]), residents through ClaveÚnica ([`resident`]).
//!
//! The `openidconnect` crate builds the authorization request, exchanges the code and checks
//! the ID token (signature against the provider's keys, issuer, audience, expiry, issue time
//! and nonce). The discovery document and the keys are fetched here, with short timeouts, and
//! cached for an hour; the state, nonce and PKCE verifier of a sign-in under way stay in the
//! database (`oidc_flows`), usable once.

pub mod resident;
pub mod staff;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IdToken, IdTokenClaims,
    IdTokenVerifier, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl,
    Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use crate::config::OidcProvider;
use crate::store::{now_millis, sha256_hex, Store, StoreError};
use crate::{with_pool, write_pool};

/// How long a sign-in may take between leaving for the provider and coming back.
const FLOW_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the discovery document and keys are trusted before being fetched again.
const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);

/// Why a sign-in did not complete. Each maps to a page that says so in Spanish.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("the provider could not be reached or answered badly: {0}")]
    Unreachable(String),
    #[error("unknown, used or expired state")]
    BadState,
    #[error("the provider refused or the resident cancelled: {0}")]
    Denied(String),
    #[error("the ID token was refused: {0}")]
    BadToken(String),
    #[error("the provider did not send the claim {0}")]
    MissingClaim(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The claims the service reads besides the standard ones (ClaveÚnica's `RolUnico`, a
/// configured username claim), kept as the provider sent them.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

impl AdditionalClaims for ExtraClaims {}

pub type VerifiedClaims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;
type ExtraIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Checks a raw ID token: signature against the provider's keys, issuer, audience, expiry,
/// issue time and the nonce of this sign-in. Pure, so the refusals are tested without a
/// provider.
pub fn verify_id_token(
    raw: &str,
    verifier: &IdTokenVerifier<'_, CoreJsonWebKey>,
    nonce: &Nonce,
) -> Result<VerifiedClaims, SignInError> {
    let token: ExtraIdToken = raw
        .parse()
        .map_err(|e: serde_json::Error| SignInError::BadToken(e.to_string()))?;
    token
        .claims(verifier, nonce)
        .cloned()
        .map_err(|e| SignInError::BadToken(e.to_string()))
}

/// A provider's discovery document with its keys, as fetched.
pub struct Discovered {
    pub metadata: CoreProviderMetadata,
    /// Where to end the session at the provider too (not part of the core metadata).
    pub end_session_endpoint: Option<String>,
    fetched: Instant,
}

/// One configured provider: its settings, where it sends people back, and the cached
/// discovery document.
pub struct Provider {
    pub settings: OidcProvider,
    pub redirect_uri: String,
    pub scopes: &'static [&'static str],
    http: reqwest::Client,
    cache: RwLock<Option<Arc<Discovered>>>,
}

/// What the callback learned: the verified claims, merged with the user-info answer when the
/// provider keeps claims there (ClaveÚnica does), and the raw ID token for logging out.
pub struct SignedIn {
    pub claims: Map<String, Value>,
    pub id_token: String,
    pub next: Option<String>,
}

impl Provider {
    pub fn new(
        settings: OidcProvider,
        redirect_uri: String,
        scopes: &'static [&'static str],
    ) -> reqwest::Result<Self> {
        // No redirects (the crate's advice against SSRF); short timeouts so an unreachable
        // provider becomes an error page quickly instead of a hanging browser.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(8))
            .build()?;
        Ok(Self {
            settings,
            redirect_uri,
            scopes,
            http,
            cache: RwLock::new(None),
        })
    }

    /// The discovery document and keys, from the cache while fresh.
    #[tracing::instrument(skip(self), fields(issuer = %self.settings.issuer))]
    pub async fn discovered(&self) -> Result<Arc<Discovered>, SignInError> {
        if let Some(d) = self.cache.read().await.as_ref() {
            if d.fetched.elapsed() < DISCOVERY_TTL {
                return Ok(d.clone());
            }
        }
        let fresh = Arc::new(self.discover().await?);
        *self.cache.write().await = Some(fresh.clone());
        Ok(fresh)
    }

    async fn discover(&self) -> Result<Discovered, SignInError> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: Value = self.get_json(&url).await?;
        let metadata: CoreProviderMetadata = serde_json::from_value(doc.clone())
            .map_err(|e| SignInError::Unreachable(format!("discovery document: {e}")))?;
        if metadata.issuer().as_str().trim_end_matches('/') != issuer {
            return Err(SignInError::Unreachable(format!(
                "the discovery document names another issuer: {}",
                metadata.issuer().as_str()
            )));
        }
        let jwks: CoreJsonWebKeySet =
            serde_json::from_value(self.get_json(metadata.jwks_uri().url().as_str()).await?)
                .map_err(|e| SignInError::Unreachable(format!("keys: {e}")))?;
        let end_session_endpoint = doc
            .get("end_session_endpoint")
            .and_then(Value::as_str)
            .map(String::from);
        Ok(Discovered {
            metadata: metadata.set_jwks(jwks),
            end_session_endpoint,
            fetched: Instant::now(),
        })
    }

    async fn get_json(&self, url: &str) -> Result<Value, SignInError> {
        let unreachable = |e: reqwest::Error| SignInError::Unreachable(e.without_url().to_string());
        self.http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unreachable)?
            .json()
            .await
            .map_err(unreachable)
    }

    fn client(&self, d: &Discovered) -> Result<ClientFor, SignInError> {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| SignInError::Unreachable(format!("redirect URI: {e}")))?;
        let secret = self
            .settings
            .client_secret
            .is_set()
            .then(|| ClientSecret::new(self.settings.client_secret.expose().to_string()));
        Ok(CoreClient::from_provider_metadata(
            d.metadata.clone(),
            ClientId::new(self.settings.client_id.clone()),
            secret,
        )
        .set_redirect_uri(redirect))
    }

    /// Starts a sign-in: stores the flow and returns the provider's address to send the
    /// browser to, and the state (also kept in a cookie, so the callback belongs to the
    /// browser that started it).
    pub async fn begin(
        &self,
        store: &Store,
        purpose: &str,
        next: Option<&str>,
    ) -> Result<(String, String), SignInError> {
        let d = self.discovered().await?;
        let client = self.client(&d)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in self.scopes.iter().filter(|s| **s != "openid") {
            request = request.add_scope(Scope::new((*s).to_string()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        let now = now_millis();
        write_pool!(store, pool => {
            sqlx::query(
                "INSERT INTO oidc_flows (state_hash, purpose, nonce, pkce_verifier, next, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(sha256_hex(state.secret().as_bytes()))
            .bind(purpose)
            .bind(nonce.secret())
            .bind(verifier.secret())
            .bind(next)
            .bind(now)
            .bind(now + FLOW_TTL_MS)
            .execute(pool)
            .await
            .map_err(StoreError::from)?;
        });
        Ok((url.to_string(), state.secret().clone()))
    }

    /// Completes a sign-in from the callback's `code` and `state`: the flow is taken (once),
    /// the code exchanged with its PKCE verifier, the ID token checked with its nonce.
    #[tracing::instrument(skip_all, fields(purpose))]
    pub async fn finish(
        &self,
        store: &Store,
        purpose: &str,
        code: &str,
        state: &str,
    ) -> Result<SignedIn, SignInError> {
        let flow = take_flow(store, purpose, state)
            .await?
            .ok_or(SignInError::BadState)?;
        let d = self.discovered().await?;
        let client = self.client(&d)?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| SignInError::Unreachable(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(flow.pkce_verifier))
            .request_async(&self.http)
            .await
            .map_err(|e| SignInError::Denied(e.to_string()))?;
        let raw = token
            .id_token()
            .ok_or_else(|| SignInError::BadToken("no ID token".into()))?
            .to_string();
        let verifier = client.id_token_verifier();
        let verified = verify_id_token(&raw, &verifier, &Nonce::new(flow.nonce))?;
        let mut claims = claims_json(&verified);
        if let Some(endpoint) = d.metadata.userinfo_endpoint() {
            let info: Value = self
                .http
                .get(endpoint.url().as_str())
                .bearer_auth(token.access_token().secret())
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| SignInError::Unreachable(e.without_url().to_string()))?
                .json()
                .await
                .map_err(|e| SignInError::Unreachable(e.to_string()))?;
            merge_userinfo(&mut claims, info)?;
        }
        Ok(SignedIn {
            claims,
            id_token: raw,
            next: flow.next,
        })
    }
}

type ClientFor = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

/// The verified ID token's claims as one JSON object (standard and extra ones alike).
fn claims_json(claims: &VerifiedClaims) -> Map<String, Value> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Adds the user-info answer's claims to the ID token's. The answer must be about the same
/// subject (OpenID Connect Core 5.3.2); the ID token's claims win where both have one.
pub fn merge_userinfo(claims: &mut Map<String, Value>, info: Value) -> Result<(), SignInError> {
    let Value::Object(info) = info else {
        return Err(SignInError::BadToken("user info is not an object".into()));
    };
    if info.get("sub") != claims.get("sub") {
        return Err(SignInError::BadToken(
            "user info is about another subject".into(),
        ));
    }
    for (k, v) in info {
        claims.entry(k).or_insert(v);
    }
    Ok(())
}

struct Flow {
    nonce: String,
    pkce_verifier: String,
    next: Option<String>,
}

/// Takes a flow by its state: deleted as it is read, so a second callback with the same
/// state finds nothing; a flow past its expiry is refused.
async fn take_flow(store: &Store, purpose: &str, state: &str) -> Result<Option<Flow>, StoreError> {
    let row: Option<(String, String, Option<String>, i64)> = write_pool!(store, pool => {
        sqlx::query_as(
            "DELETE FROM oidc_flows WHERE state_hash = $1 AND purpose = $2 \
             RETURNING nonce, pkce_verifier, next, expires_at",
        )
        .bind(sha256_hex(state.as_bytes()))
        .bind(purpose)
        .fetch_optional(pool)
        .await?
    });
    Ok(row
        .filter(|(_, _, _, expires)| *expires > now_millis())
        .map(|(nonce, pkce_verifier, next, _)| Flow {
            nonce,
            pkce_verifier,
            next,
        }))
}

/// Forgets sign-ins that were never completed and resident sessions past their end.
pub async fn purge(store: &Store) -> Result<u64, StoreError> {
    let now = now_millis();
    let n = write_pool!(store, pool => {
        let a = sqlx::query("DELETE FROM oidc_flows WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
        let b = sqlx::query("DELETE FROM resident_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected();
        a + b
    });
    Ok(n)
}

/// The providers configured, built once at start-up.
#[derive(Default)]
pub struct Providers {
    pub staff: Option<Provider>,
    pub claveunica: Option<Provider>,
}

impl Providers {
    pub fn from_config(config: &crate::config::Config) -> reqwest::Result<Self> {
        let base = config.public_base_url.trim_end_matches('/');
        let staff = config.staff_oidc.provider();
        Ok(Self {
            staff: if staff.enabled() {
                Some(Provider::new(
                    staff,
                    format!("{base}{}", staff::CALLBACK),
                    &["openid", "profile", "email"],
                )?)
            } else {
                None
            },
            claveunica: if config.claveunica.enabled() {
                Some(Provider::new(
                    config.claveunica.clone(),
                    format!("{base}{}", resident::CALLBACK),
                    &["openid", "run", "name"],
                )?)
            } else {
                None
            },
        })
    }
}

/// A cookie that ties a sign-in under way to the browser that started it: the callback must
/// come with the same state the flow was stored under. SameSite=Lax, since the provider sends
/// the browser back with a top-level GET from its own site.
pub fn state_cookie(name: &str, path: &str, value: Option<&str>, secure: bool) -> String {
    lax_cookie(name, path, value, FLOW_TTL_MS, secure)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` over https; `None` removes it.
pub fn lax_cookie(
    name: &str,
    path: &str,
    value: Option<&str>,
    ttl_ms: i64,
    secure: bool,
) -> String {
    let secure = if secure { "; Secure" } else { "" };
    let (value, age) = match value {
        Some(v) => (v, ttl_ms / 1000),
        None => ("", 0),
    };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path={path}; Max-Age={age}{secure}")
}

/// A cookie's value from the request's headers.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the service is reached over https (cookies are then `Secure`).
pub fn https(config: &crate::config::Config) -> bool {
    config
        .public_base_url
        .get(..8)
        .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
}

/// The query a provider sends back to a callback.
#[derive(Deserialize)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
}

impl CallbackQuery {
    /// The code and state, when the state is the one this browser started with.
    pub fn checked(&self, cookie_state: Option<&str>) -> Result<(&str, &str), SignInError> {
        if let Some(e) = &self.error {
            return Err(SignInError::Denied(e.clone()));
        }
        let (Some(code), Some(state)) = (self.code.as_deref(), self.state.as_deref()) else {
            return Err(SignInError::BadState);
        };
        match cookie_state {
            Some(c) if crate::staff::auth::same_token(c, state) => Ok((code, state)),
            _ => Err(SignInError::BadState),
        }
    }
}

/// Looks a claim up by name.
pub fn claim_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// Reads one stored session's RUT, name and ID token by its token.
pub(crate) async fn resident_session(
    store: &Store,
    token: &str,
) -> Result<Option<(String, String, Option<String>)>, StoreError> {
    let row = with_pool!(store, pool => {
        sqlx::query_as(
            "SELECT rut, name, id_token FROM resident_sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(sha256_hex(token.as_bytes()))
        .bind(now_millis())
        .fetch_optional(pool)
        .await?
    });
    Ok(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration as Span, Utc};
    use openidconnect::core::{CoreIdTokenVerifier, CoreRsaPrivateSigningKey};
    use openidconnect::{
        Audience, EndUserUsername, IssuerUrl, JsonWebKeyId, PrivateSigningKey, StandardClaims,
        SubjectIdentifier,
    };

    // Keys made for these tests only (openssl genpkey); A is the provider's, B a forger's.
    const KEY_A: &str = include_str!("../../tests/data/oidc-test-key-a.pem");
    const KEY_B: &str = include_str!("../../tests/data/oidc-test-key-b.pem");
    const ISSUER: &str = "https://idp.muni.example";

    fn key(pem: &str) -> CoreRsaPrivateSigningKey {
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new("k1".into()))).expect("pem")
    }

    fn verifier() -> CoreIdTokenVerifier<'static> {
        CoreIdTokenVerifier::new_confidential_client(
            ClientId::new("ventanilla".into()),
            ClientSecret::new("s".into()),
            IssuerUrl::new(ISSUER.into()).expect("issuer"),
            CoreJsonWebKeySet::new(vec![key(KEY_A).as_verification_key()]),
        )
    }

    /// An ID token for `ventanilla` from ISSUER, issued `age` ago and valid for an hour after.
    fn token(signer: &str, audience: &str, age: Span, nonce: &str) -> String {
        let issued = Utc::now() - age;
        let claims = IdTokenClaims::new(
            IssuerUrl::new(ISSUER.into()).expect("issuer"),
            vec![Audience::new(audience.into())],
            issued + Span::hours(1),
            issued,
            StandardClaims::new(SubjectIdentifier::new("muni-dom1".into()))
                .set_preferred_username(Some(EndUserUsername::new("dom1".into()))),
            ExtraClaims::default(),
        )
        .set_nonce(Some(Nonce::new(nonce.into())));
        ExtraIdToken::new(
            claims,
            &key(signer),
            CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            None,
            None,
        )
        .expect("sign")
        .to_string()
    }

    #[test]
    fn a_genuine_token_is_accepted_and_read() {
        let raw = token(KEY_A, "ventanilla", Span::zero(), "n1");
        let claims = verify_id_token(&raw, &verifier(), &Nonce::new("n1".into())).expect("valid");
        let json = claims_json(&claims);
        assert_eq!(claim_str(&json, "preferred_username"), Some("dom1"));
        assert_eq!(claim_str(&json, "sub"), Some("muni-dom1"));
    }

    #[test]
    fn forged_tampered_expired_or_replayed_tokens_are_refused() {
        let v = verifier();
        let n1 = Nonce::new("n1".into());
        let refused = |raw: &str, nonce: &Nonce| {
            matches!(
                verify_id_token(raw, &v, nonce),
                Err(SignInError::BadToken(_))
            )
        };
        // Signed by another key under the provider's key id.
        assert!(refused(
            &token(KEY_B, "ventanilla", Span::zero(), "n1"),
            &n1
        ));
        // A genuine token whose claims were changed after signing.
        let genuine = token(KEY_A, "ventanilla", Span::zero(), "n1");
        let parts: Vec<&str> = genuine.split('.').collect();
        let payload = String::from_utf8(base64_url_decode(parts[1]))
            .expect("utf8")
            .replace("dom1", "admin");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            base64_url_encode(payload.as_bytes()),
            parts[2]
        );
        assert!(refused(&tampered, &n1));
        // Expired an hour ago.
        assert!(refused(
            &token(KEY_A, "ventanilla", Span::hours(2), "n1"),
            &n1
        ));
        // For another client.
        assert!(refused(&token(KEY_A, "otra-app", Span::zero(), "n1"), &n1));
        // The nonce of another sign-in (a replayed token).
        assert!(refused(&genuine, &Nonce::new("n2".into())));
        // Not a token at all.
        assert!(refused("not.a.token", &n1));
    }

    fn base64_url_decode(s: &str) -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .expect("base64")
    }

    fn base64_url_encode(b: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    #[test]
    fn userinfo_about_another_subject_is_refused() {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::from("a"));
        let err = merge_userinfo(&mut claims, serde_json::json!({"sub": "b", "x": 1}));
        assert!(matches!(err, Err(SignInError::BadToken(_))));
        assert!(!claims.contains_key("x"));
        merge_userinfo(&mut claims, serde_json::json!({"sub": "a", "x": 1})).expect("same");
        assert_eq!(claims.get("x"), Some(&Value::from(1)));
    }

    #[test]
    fn a_callback_needs_the_state_this_browser_started() {
        let q = CallbackQuery {
            code: Some("c".into()),
            state: Some("s1".into()),
            error: None,
        };
        assert!(q.checked(Some("s1")).is_ok());
        assert!(matches!(q.checked(Some("s2")), Err(SignInError::BadState)));
        assert!(matches!(q.checked(None), Err(SignInError::BadState)));
        let denied = CallbackQuery {
            code: None,
            state: Some("s1".into()),
            error: Some("access_denied".into()),
        };
        assert!(matches!(
            denied.checked(Some("s1")),
            Err(SignInError::Denied(_))
        ));
    }
}
