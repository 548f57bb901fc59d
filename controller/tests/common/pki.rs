//! Certificates for the TLS tests, made the way operators make them: `ovs-pki` (a CA for
//! switches, one for controllers) in a temporary directory, removed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One `ovs-pki` PKI in its own temporary directory.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

/// A key and the certificate that goes with it.
#[derive(Clone, Debug)]
pub struct Credential {
    pub key: PathBuf,
    pub cert: PathBuf,
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Pki {
    /// `ovs-pki init`: switchca and controllerca.
    pub fn init() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("ovs-pki")
            .arg(format!("--dir={}", dir.path().join("pki").display()))
            .arg(format!(
                "--log={}",
                dir.path().join("ovs-pki.log").display()
            ))
            .arg("init"));
        Pki { dir }
    }

    fn pki_dir(&self) -> PathBuf {
        self.dir.path().join("pki")
    }

    /// `ovs-pki req+sign NAME switch|controller`: NAME-privkey.pem, NAME-cert.pem.
    pub fn sign(&self, name: &str, kind: &str) -> Credential {
        run(Command::new("ovs-pki")
            .current_dir(self.dir.path())
            .arg(format!("--dir={}", self.pki_dir().display()))
            .arg(format!(
                "--log={}",
                self.dir.path().join("ovs-pki.log").display()
            ))
            .args(["req+sign", name, kind]));
        Credential {
            key: self.dir.path().join(format!("{name}-privkey.pem")),
            cert: self.dir.path().join(format!("{name}-cert.pem")),
        }
    }

    /// A switch certificate for `name` signed by switchca but valid only in 2020.
    pub fn sign_expired(&self, name: &str) -> Credential {
        run(Command::new("ovs-pki")
            .current_dir(self.dir.path())
            .arg(format!("--dir={}", self.pki_dir().display()))
            .arg(format!(
                "--log={}",
                self.dir.path().join("ovs-pki.log").display()
            ))
            .args(["req", name]));
        let req = self.dir.path().join(format!("{name}-req.pem"));
        let cert = self.dir.path().join(format!("{name}-cert.pem"));
        run(Command::new("openssl")
            .current_dir(self.pki_dir().join("switchca"))
            .args([
                "ca",
                "-config",
                "ca.cnf",
                "-extensions",
                "usr_cert",
                "-batch",
            ])
            .args([
                "-startdate",
                "20200101000000Z",
                "-enddate",
                "20200102000000Z",
            ])
            .arg("-in")
            .arg(&req)
            .arg("-out")
            .arg(&cert));
        Credential {
            key: self.dir.path().join(format!("{name}-privkey.pem")),
            cert,
        }
    }

    /// The CA that signs switches' (hypervisors') certificates: weftd's `--ca-cert`.
    pub fn switch_ca(&self) -> PathBuf {
        self.pki_dir().join("switchca/cacert.pem")
    }

    /// The CA that signs controllers' certificates: the hypervisors' `set-ssl` CA.
    pub fn controller_ca(&self) -> PathBuf {
        self.pki_dir().join("controllerca/cacert.pem")
    }
}

/// A plain CA and a server certificate for `127.0.0.1` (with the subjectAltName an HTTPS
/// client checks), for the API: `(ca.pem, Credential)`.
pub fn api_certificate(dir: &Path) -> (PathBuf, Credential) {
    let ca_key = dir.join("api-ca.key");
    let ca = dir.join("api-ca.pem");
    let key = dir.join("api.key");
    let csr = dir.join("api.csr");
    let cert = dir.join("api.pem");
    let ext = dir.join("api.ext");
    run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args(["-subj", "/CN=weft test API CA"])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .arg("-keyout")
        .arg(&ca_key)
        .arg("-out")
        .arg(&ca));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr));
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&ca)
        .arg("-CAkey")
        .arg(&ca_key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert));
    (ca, Credential { key, cert })
}
