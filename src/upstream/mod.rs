//! The OpenID Connect relying party: every upstream, whatever its kind, goes
//! through this one code path (discovery, code flow with PKCE + nonce, full
//! ID token verification, userinfo when the ID token lacks the email).

mod claims;
pub mod dev_idp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClientAuthMethod,
    CoreErrorResponseType, CoreGenderClaim, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm, CoreProviderMetadata,
    CoreRevocableToken, CoreRevocationErrorResponse, CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AuthType, AuthUrl, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret,
    CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet, EndpointNotSet, EndpointSet, IdTokenFields,
    IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, StandardErrorResponse, StandardTokenResponse, TokenUrl,
    UserInfoClaims, UserInfoUrl,
};
use tokio::sync::RwLock;

use crate::config::{UpstreamKind, UpstreamSettings};
pub use claims::ProviderClaims;
use claims::{vouch, Claims};

/// How long discovery metadata (and the provider's JWKS) is reused; the
/// background refresh renews it at half this age.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// Asymmetric signatures only: an HMAC-signed ID token would be keyed with
/// our client secret, which a provider's other clients do not have but a
/// misconfigured one might accept.
const ID_TOKEN_ALGORITHMS: [CoreJwsSigningAlgorithm; 8] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];
/// An unknown `kid` refetches the JWKS, but not more often than this (a
/// forged `kid` must not make us hammer the provider).
const ROLLOVER_REFETCH: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot read the provider's discovery document: {0}")]
    Discovery(String),
    #[error("the provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the provider's ID token is not valid: {0}")]
    IdToken(String),
    #[error("the provider's userinfo answer is not usable: {0}")]
    UserInfo(String),
    /// The provider vouched for someone this upstream does not admit.
    #[error("{0}")]
    Refused(String),
}

/// The identity an upstream vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

type TokenResponse = StandardTokenResponse<
    IdTokenFields<
        ProviderClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;

/// The relying-party client: ours differs from `CoreClient` only in reading
/// the provider-specific claims.
type RpClient = openidconnect::Client<
    ProviderClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    TokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

struct Discovered {
    at: Instant,
    metadata: CoreProviderMetadata,
}

/// What `doctor` reports of a provider.
#[derive(Debug)]
pub struct ProviderHealth {
    pub signing_keys: usize,
    /// The provider's clock minus ours, in seconds, from its Date header.
    pub clock_skew: Option<i64>,
}

pub struct Upstream {
    pub settings: UpstreamSettings,
    secret: Option<String>,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<Discovered>>,
    last_rollover: std::sync::Mutex<Option<Instant>>,
}

#[derive(Clone, Default)]
pub struct Upstreams(Arc<Vec<Arc<Upstream>>>);

impl Upstreams {
    pub fn new(settings: &[UpstreamSettings]) -> Result<Upstreams, String> {
        let http = openidconnect::reqwest::ClientBuilder::new()
            // An IdP that redirects its token endpoint is an SSRF vector.
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let list = settings
            .iter()
            .map(|s| {
                Ok(Arc::new(Upstream {
                    secret: s.resolve_secret()?,
                    settings: s.clone(),
                    http: http.clone(),
                    metadata: RwLock::new(None),
                    last_rollover: std::sync::Mutex::new(None),
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Upstreams(Arc::new(list)))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.0.iter().find(|u| u.settings.id == id)
    }

    pub fn all(&self) -> &[Arc<Upstream>] {
        &self.0
    }

    /// Renews discovery metadata and JWKS that are past half their life, so
    /// logins rarely wait for it (run by the housekeeping task).
    pub async fn refresh_stale(&self) {
        for upstream in self.0.iter() {
            let stale = upstream
                .metadata
                .read()
                .await
                .as_ref()
                .is_some_and(|d| d.at.elapsed() > METADATA_TTL / 2);
            if stale {
                if let Err(e) = upstream.discover().await {
                    tracing::warn!(upstream = %upstream.settings.id, error = %e, "upstream metadata refresh failed");
                }
            }
        }
    }
}

impl Upstream {
    async fn metadata(&self) -> Result<CoreProviderMetadata, UpstreamError> {
        if let Some(d) = self.metadata.read().await.as_ref() {
            if d.at.elapsed() < METADATA_TTL {
                return Ok(d.metadata.clone());
            }
        }
        self.discover().await
    }

    /// Fetches discovery and the keys afresh: `doctor`'s check.
    pub async fn check(&self) -> Result<ProviderHealth, UpstreamError> {
        let (metadata, clock_skew) = self.fetch_metadata().await?;
        Ok(ProviderHealth {
            signing_keys: metadata.jwks().keys().len(),
            clock_skew,
        })
    }

    async fn discover(&self) -> Result<CoreProviderMetadata, UpstreamError> {
        let (metadata, _) = self.fetch_metadata().await?;
        *self.metadata.write().await = Some(Discovered {
            at: Instant::now(),
            metadata: metadata.clone(),
        });
        Ok(metadata)
    }

    /// Fetches the discovery document and the JWKS. By hand rather than
    /// `discover_async`, because Entra's documents name the issuer by tenant
    /// id (a `{tenantid}` template for many tenants) whatever the configured
    /// name; every other kind must name exactly the configured issuer.
    async fn fetch_metadata(&self) -> Result<(CoreProviderMetadata, Option<i64>), UpstreamError> {
        let fail = |e: &dyn std::error::Error| UpstreamError::Discovery(error_chain(e));
        let issuer = IssuerUrl::new(self.settings.issuer.clone()).map_err(|e| fail(&e))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let started = Instant::now();
        let response = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await;
        self.observe("discovery", started);
        let response = response.map_err(|e| fail(&e))?;
        if !response.status().is_success() {
            return Err(UpstreamError::Discovery(format!(
                "HTTP {} from the discovery document",
                response.status()
            )));
        }
        let clock_skew = response
            .headers()
            .get("date")
            .and_then(|d| d.to_str().ok())
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .and_then(|theirs| theirs.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|theirs| theirs.as_secs() as i64 - crate::store::now());
        let body = response.bytes().await.map_err(|e| fail(&e))?;
        let mut metadata: CoreProviderMetadata =
            serde_json::from_slice(&body).map_err(|e| fail(&e))?;
        if self.settings.is_multi_tenant() {
            metadata = metadata.set_issuer(issuer);
        } else if self.settings.kind == UpstreamKind::Entra {
            // A tenant configured by domain name is discovered under its id.
            let same_authority = metadata.issuer().url().origin() == issuer.url().origin()
                && metadata.issuer().url().path().ends_with("/v2.0");
            if !same_authority {
                return Err(UpstreamError::Discovery(format!(
                    "the document names the issuer {}, not one of {}",
                    metadata.issuer().as_str(),
                    issuer.url().origin().ascii_serialization()
                )));
            }
        } else if metadata.issuer().trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(UpstreamError::Discovery(format!(
                "the document names the issuer {}, not {}",
                metadata.issuer().as_str(),
                issuer.as_str()
            )));
        }
        if let Some(domain) = &self.settings.domain {
            metadata = hosted_ui(metadata, domain)?;
        }
        let jwks = CoreJsonWebKeySet::fetch_async(metadata.jwks_uri(), &self.http)
            .await
            .map_err(|e| fail(&e))?;
        Ok((metadata.set_jwks(jwks), clock_skew))
    }

    async fn client(&self, redirect_uri: &str) -> Result<RpClient, UpstreamError> {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        let metadata = self.metadata().await?;
        // HTTP Basic unless the provider only takes the secret in the body.
        let post_only = metadata
            .token_endpoint_auth_methods_supported()
            .is_some_and(|methods| {
                methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                    && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
            });
        let client = RpClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect);
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    /// Where to send the person; `state`, `nonce` and the PKCE `verifier`
    /// are ours, kept in the pending request.
    pub async fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, UpstreamError> {
        let client = self.client(redirect_uri).await?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            verifier.to_owned(),
        ));
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let mut request = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .set_pkce_challenge(challenge);
        for scope in self.settings.scopes.iter().filter(|s| *s != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if let Some(domain) = &self.settings.hosted_domain {
            // Google then offers only accounts of that Workspace; the ID
            // token's `hd` is still checked, since the URL can be edited.
            request = request.add_extra_param("hd", domain.clone());
        }
        Ok(request.url().0.to_string())
    }

    /// Trades the code, verifies the ID token (signature, iss, aud, exp,
    /// nonce), asks userinfo for the email when the ID token has none, and
    /// applies this kind of provider's rules.
    pub async fn finish(
        &self,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let client = self.client(redirect_uri).await?;
        let started = Instant::now();
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await;
        self.observe("token", started);
        let token = token.map_err(|e| UpstreamError::Exchange(error_chain(&e)))?;
        let nonce = Nonce::new(nonce.to_owned());
        let mut claims = match self.verify(&client, &token, &nonce) {
            // The provider rolled its keys since we fetched them.
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.rollover_allowed() => {
                let client = self.client_after_rollover(redirect_uri).await?;
                self.verify(&client, &token, &nonce)
            }
            other => other,
        }
        .map_err(|e| UpstreamError::IdToken(error_chain(&e)))?;
        if claims.email.is_none() {
            self.add_userinfo(&client, &token, &mut claims).await?;
        }
        vouch(&self.settings, claims).map_err(UpstreamError::Refused)
    }

    fn verify(
        &self,
        client: &RpClient,
        token: &TokenResponse,
        nonce: &Nonce,
    ) -> Result<Claims, ClaimsVerificationError> {
        use openidconnect::TokenResponse as _;
        let id_token = token
            .id_token()
            .ok_or_else(|| ClaimsVerificationError::Other("no id_token in the response".into()))?;
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ID_TOKEN_ALGORITHMS)
            .require_issuer_match(!self.settings.is_multi_tenant());
        let c = id_token.claims(&verifier, nonce)?;
        Ok(Claims {
            issuer: c.issuer().to_string(),
            subject: c.subject().to_string(),
            email: c.email().map(|e| e.to_string()),
            email_verified: c.email_verified(),
            preferred_username: c.preferred_username().map(|u| u.to_string()),
            name: c.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
            extra: c.additional_claims().clone(),
        })
    }

    /// How long the provider took to answer, per step.
    fn observe(&self, step: &'static str, started: Instant) {
        metrics::histogram!(
            "broker_upstream_request_duration_seconds",
            "provider" => self.settings.id.clone(),
            "step" => step
        )
        .record(started.elapsed().as_secs_f64());
    }

    fn rollover_allowed(&self) -> bool {
        let mut last = self.last_rollover.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < ROLLOVER_REFETCH) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    async fn client_after_rollover(&self, redirect_uri: &str) -> Result<RpClient, UpstreamError> {
        tracing::info!(upstream = %self.settings.id, "unknown signing key in an ID token: refetching the JWKS");
        self.discover().await?;
        self.client(redirect_uri).await
    }

    /// The userinfo answer fills in the email; the subject check inside
    /// `user_info` ties it to the ID token.
    async fn add_userinfo(
        &self,
        client: &RpClient,
        token: &TokenResponse,
        claims: &mut Claims,
    ) -> Result<(), UpstreamError> {
        let subject = openidconnect::SubjectIdentifier::new(claims.subject.clone());
        let Ok(request) = client.user_info(token.access_token().clone(), Some(subject)) else {
            return Ok(());
        };
        let info: UserInfoClaims<ProviderClaims, CoreGenderClaim> = request
            .request_async(&self.http)
            .await
            .map_err(|e| UpstreamError::UserInfo(error_chain(&e)))?;
        claims.email = info.email().map(|e| e.to_string());
        claims.email_verified = info.email_verified();
        if claims.name.is_none() {
            claims.name = info.name().and_then(|n| n.get(None)).map(|n| n.to_string());
        }
        Ok(())
    }
}

/// Cognito's hosted UI serves the authorization, token and userinfo
/// endpoints on its own domain.
fn hosted_ui(
    metadata: CoreProviderMetadata,
    domain: &str,
) -> Result<CoreProviderMetadata, UpstreamError> {
    let base = if domain.starts_with("https://") || domain.starts_with("http://") {
        domain.trim_end_matches('/').to_owned()
    } else {
        format!("https://{domain}")
    };
    let bad = |e: url::ParseError| UpstreamError::Discovery(format!("domain {domain:?}: {e}"));
    Ok(metadata
        .set_authorization_endpoint(AuthUrl::new(format!("{base}/oauth2/authorize")).map_err(bad)?)
        .set_token_endpoint(Some(
            TokenUrl::new(format!("{base}/oauth2/token")).map_err(bad)?,
        ))
        .set_userinfo_endpoint(Some(
            UserInfoUrl::new(format!("{base}/oauth2/userInfo")).map_err(bad)?,
        )))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
