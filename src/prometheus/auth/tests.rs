//! Unit tests of the backend credentials: kubeconfig forms (files, inline data, relative
//! paths), in-cluster files, refusals, and the re-read token file.
#![allow(clippy::unwrap_used)]

use super::*;
use base64::engine::general_purpose::STANDARD;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn kubeconfig(dir: &Path, cluster: &str, user: &str) -> PathBuf {
    write(
        dir,
        "kubeconfig.yaml",
        &format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: prometheus-k8s\n  cluster:\n{cluster}contexts:\n- name: prometheus-k8s\n  context:\n    cluster: prometheus-k8s\n    user: prometheus-k8s\ncurrent-context: prometheus-k8s\nusers:\n- name: prometheus-k8s\n  user:\n{user}"
        ),
    )
}

fn setup_message(result: Result<Credentials, Error>) -> String {
    match result {
        Err(Error::Setup(message)) => message,
        other => panic!("expected a setup error, got {other:?}"),
    }
}

#[test]
fn openshift_kubeconfig_with_ca_file_and_token_file() {
    // The shape of cluster-monitoring-operator's prometheus-adapter-prometheus-config, with
    // relative paths (resolved against the kubeconfig's directory, as client-go does).
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "service-ca.crt", "CA PEM");
    write(dir.path(), "token", "sa-token\n");
    let path = kubeconfig(
        dir.path(),
        "    certificate-authority: service-ca.crt\n    server: https://prometheus-k8s.openshift-monitoring.svc:9091\n",
        "    tokenFile: token\n",
    );
    let credentials = from_kubeconfig(&path).unwrap();
    assert_eq!(
        credentials,
        Credentials {
            source: format!(
                "--prometheus-auth-config {} (context \"prometheus-k8s\")",
                path.display()
            ),
            ca_pem: Some(b"CA PEM".to_vec()),
            authorization: Some(Authorization::BearerFile(dir.path().join("token"))),
            ..Credentials::default()
        }
    );
}

#[test]
fn inline_data_token_and_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(
        dir.path(),
        &format!(
            "    certificate-authority-data: {}\n    tls-server-name: prometheus.internal\n",
            STANDARD.encode("CA")
        ),
        &format!(
            "    token: abc\n    client-certificate-data: {}\n    client-key-data: {}\n",
            STANDARD.encode("CERT"),
            STANDARD.encode("KEY")
        ),
    );
    let credentials = from_kubeconfig(&path).unwrap();
    assert_eq!(credentials.ca_pem.as_deref(), Some(&b"CA"[..]));
    assert_eq!(
        credentials.tls_server_name.as_deref(),
        Some("prometheus.internal")
    );
    assert_eq!(
        credentials.client_identity,
        Some((b"CERT".to_vec(), b"KEY".to_vec()))
    );
    assert_eq!(
        credentials.authorization,
        Some(Authorization::Bearer("abc".into()))
    );
}

#[test]
fn basic_auth_and_insecure() {
    let dir = tempfile::tempdir().unwrap();
    let path = kubeconfig(
        dir.path(),
        "    insecure-skip-tls-verify: true\n",
        "    username: adapter\n    password: s3cret\n",
    );
    let credentials = from_kubeconfig(&path).unwrap();
    assert!(credentials.insecure_skip_tls_verify);
    assert_eq!(credentials.ca_pem, None);
    assert_eq!(
        credentials.authorization,
        Some(Authorization::Basic {
            username: "adapter".into(),
            password: "s3cret".into()
        })
    );
    assert_eq!(
        basic_header("adapter", "s3cret").unwrap(),
        format!("Basic {}", STANDARD.encode("adapter:s3cret"))
    );
}

#[test]
fn refusals_name_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let kc = |cluster: &str, user: &str| kubeconfig(dir.path(), cluster, user);
    let path = kc(
        "    server: https://x\n",
        "    exec:\n      command: aws\n      apiVersion: client.authentication.k8s.io/v1\n",
    );
    let prefix = format!("--prometheus-auth-config {}: ", path.display());
    assert_eq!(
        setup_message(from_kubeconfig(&path)),
        format!(
            "{prefix}user \"prometheus-k8s\": exec and auth-provider plugins are not supported; use token, tokenFile, username and password, or a client certificate"
        )
    );
    kc("    server: https://x\n", "    token: a\n    username: b\n");
    assert_eq!(
        setup_message(from_kubeconfig(&path)),
        format!(
            "{prefix}user \"prometheus-k8s\": username/password or bearer token may be set, but not both"
        )
    );
    kc(
        "    server: https://x\n",
        &format!("    client-certificate-data: {}\n", STANDARD.encode("C")),
    );
    assert_eq!(
        setup_message(from_kubeconfig(&path)),
        format!(
            "{prefix}user \"prometheus-k8s\": client-certificate and client-key must be given together"
        )
    );
    kc("    certificate-authority: missing.crt\n", "    token: a\n");
    let message = setup_message(from_kubeconfig(&path));
    assert!(
        message.starts_with(&format!(
            "{prefix}cluster \"prometheus-k8s\" certificate-authority: {}",
            dir.path().join("missing.crt").display()
        )),
        "{message}"
    );
    kc(
        &format!(
            "    certificate-authority-data: {}\n    insecure-skip-tls-verify: true\n",
            STANDARD.encode("CA")
        ),
        "    token: a\n",
    );
    assert_eq!(
        setup_message(from_kubeconfig(&path)),
        format!(
            "{prefix}cluster \"prometheus-k8s\": specifying a root certificates file with the insecure flag is not allowed"
        )
    );
    kc("    certificate-authority-data: '%%%'\n", "    token: a\n");
    assert!(setup_message(from_kubeconfig(&path)).contains("invalid base64 data"));
    kc(
        "    server: https://x\n",
        "    tokenFile: /nonexistent/token\n",
    );
    assert!(setup_message(from_kubeconfig(&path)).contains("tokenFile /nonexistent/token"));

    let no_context = write(
        dir.path(),
        "nocontext.yaml",
        "apiVersion: v1\nkind: Config\nclusters: []\n",
    );
    assert_eq!(
        setup_message(from_kubeconfig(&no_context)),
        format!(
            "--prometheus-auth-config {}: no current-context",
            no_context.display()
        )
    );
    let dangling = write(
        dir.path(),
        "dangling.yaml",
        "apiVersion: v1\nkind: Config\ncontexts:\n- name: c\n  context: {cluster: gone, user: u}\ncurrent-context: c\n",
    );
    assert_eq!(
        setup_message(from_kubeconfig(&dangling)),
        format!(
            "--prometheus-auth-config {}: context \"c\" names cluster \"gone\", which is not in clusters",
            dangling.display()
        )
    );
    let missing = dir.path().join("absent.yaml");
    assert!(
        setup_message(from_kubeconfig(&missing)).starts_with(&format!(
            "--prometheus-auth-config {}: failed to read kubeconfig",
            missing.display()
        ))
    );
}

#[test]
fn flags_choose_the_source() {
    assert_eq!(AuthConfigArgs::default().credentials().unwrap(), None);
    let both = AuthConfigArgs {
        prometheus_auth_config: Some("kc".into()),
        prometheus_auth_incluster: true,
    };
    match both.credentials() {
        Err(Error::Setup(m)) => assert_eq!(
            m,
            "--prometheus-auth-incluster and --prometheus-auth-config: may not use both in-cluster auth and an explicit kubeconfig at the same time"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn in_cluster_reads_the_service_account() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        setup_message(in_cluster(dir.path())).contains("is augur running in a pod"),
        "no files"
    );
    write(dir.path(), "ca.crt", "SA CA");
    write(dir.path(), "token", "sa");
    let credentials = in_cluster(dir.path()).unwrap();
    assert_eq!(credentials.ca_pem.as_deref(), Some(&b"SA CA"[..]));
    assert_eq!(
        credentials.authorization,
        Some(Authorization::BearerFile(dir.path().join("token")))
    );
}

#[test]
fn token_file_is_read_again_and_a_failed_read_keeps_the_old_token() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "token", "first\n");
    let cached = TokenFile::open(path.clone()).unwrap();
    let fresh = TokenFile::with_refresh(path.clone(), Duration::ZERO).unwrap();
    assert_eq!(fresh.header(), "Bearer first");
    std::fs::write(&path, "second").unwrap();
    assert_eq!(fresh.header(), "Bearer second");
    assert_eq!(
        cached.header(),
        "Bearer first",
        "read again only after a minute"
    );
    std::fs::remove_file(&path).unwrap();
    assert_eq!(fresh.header(), "Bearer second");
    assert!(fresh.header().is_sensitive());
    let empty = write(dir.path(), "empty", "\n");
    match TokenFile::open(empty.clone()) {
        Err(Error::Setup(m)) => assert_eq!(m, format!("token file {}: empty", empty.display())),
        other => panic!("{other:?}"),
    }
}
