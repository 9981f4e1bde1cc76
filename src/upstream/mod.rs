//! The OpenID Connect relying party: every upstream, whatever its kind, goes
//! through this one code path (discovery, code flow with PKCE + nonce, full
//! ID token verification, userinfo when the ID token lacks the email).

pub mod dev_idp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use tokio::sync::RwLock;

use crate::config::UpstreamSettings;

/// How long discovery metadata (and the provider's JWKS) is reused.
const METADATA_TTL: Duration = Duration::from_secs(3600);

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
}

/// The identity an upstream vouched for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

pub struct Upstream {
    pub settings: UpstreamSettings,
    secret: Option<String>,
    http: openidconnect::reqwest::Client,
    metadata: RwLock<Option<(Instant, CoreProviderMetadata)>>,
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
                }))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Upstreams(Arc::new(list)))
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.0.iter().find(|u| u.settings.id == id)
    }

    pub fn first(&self) -> Option<&Arc<Upstream>> {
        self.0.first()
    }
}

impl Upstream {
    async fn metadata(&self) -> Result<CoreProviderMetadata, UpstreamError> {
        if let Some((at, metadata)) = self.metadata.read().await.as_ref() {
            if at.elapsed() < METADATA_TTL {
                return Ok(metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| UpstreamError::Discovery(error_chain(&e)))?;
        *self.metadata.write().await = Some((Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    async fn client(
        &self,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        UpstreamError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_owned())
            .map_err(|e| UpstreamError::Discovery(e.to_string()))?;
        Ok(CoreClient::from_provider_metadata(
            self.metadata().await?,
            ClientId::new(self.settings.client_id.clone()),
            self.secret.clone().map(ClientSecret::new),
        )
        .set_redirect_uri(redirect))
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
        Ok(request.url().0.to_string())
    }

    /// Trades the code and verifies the ID token (signature, iss, aud, exp,
    /// nonce); asks userinfo for the email when the ID token has none.
    pub async fn finish(
        &self,
        redirect_uri: &str,
        code: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let client = self.client(redirect_uri).await?;
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| UpstreamError::Exchange(error_chain(&e)))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| UpstreamError::IdToken("no id_token in the response".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
            .map_err(|e| UpstreamError::IdToken(error_chain(&e)))?;
        let mut identity = UpstreamIdentity {
            subject: claims.subject().to_string(),
            email: claims.email().map(|e| e.to_string()),
            email_verified: claims.email_verified().unwrap_or(false),
            name: claims
                .name()
                .and_then(|n| n.get(None))
                .map(|n| n.to_string()),
        };
        if identity.email.is_none() {
            if let Ok(request) =
                client.user_info(token.access_token().clone(), Some(claims.subject().clone()))
            {
                // The subject check inside user_info ties the answer to the ID token.
                let info: CoreUserInfoClaims = request
                    .request_async(&self.http)
                    .await
                    .map_err(|e| UpstreamError::UserInfo(error_chain(&e)))?;
                identity.email = info.email().map(|e| e.to_string());
                identity.email_verified = info.email_verified().unwrap_or(false);
                identity.name = identity
                    .name
                    .or_else(|| info.name().and_then(|n| n.get(None)).map(|n| n.to_string()));
            }
        }
        Ok(identity)
    }
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
