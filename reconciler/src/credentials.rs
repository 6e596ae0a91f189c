//! Credentials for fetch and push: ssh-agent, git's credential helpers, or a token from
//! `$MCPCTL_GIT_TOKEN` (sent as the password of an HTTPS user, e.g. `x-access-token`).

/// Remote callbacks that try, in order: a token from the environment, the credential helper,
/// the ssh agent, and default credentials.
pub fn callbacks<'a>() -> git2::RemoteCallbacks<'a> {
    let mut cb = git2::RemoteCallbacks::new();
    let mut tries = 0;
    cb.credentials(move |url, user, allowed| {
        tries += 1;
        if tries > 4 {
            return Err(git2::Error::from_str("authentication failed (tried token, credential helper, ssh-agent)"));
        }
        if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) {
            if let Ok(token) = std::env::var("MCPCTL_GIT_TOKEN") {
                let user = std::env::var("MCPCTL_GIT_USER").unwrap_or_else(|_| "x-access-token".into());
                return git2::Cred::userpass_plaintext(&user, &token);
            }
            if let Ok(cfg) = git2::Config::open_default() {
                if let Ok(c) = git2::Cred::credential_helper(&cfg, url, user) {
                    return Ok(c);
                }
            }
        }
        if allowed.contains(git2::CredentialType::SSH_KEY) {
            return git2::Cred::ssh_key_from_agent(user.unwrap_or("git"));
        }
        git2::Cred::default()
    });
    cb
}
