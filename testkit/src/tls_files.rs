//! Certificate files on disk for TLS tests, laid out the way Kubernetes mounts a Secret:
//! `tls.crt` and `tls.key` are symlinks into `..data`, itself a symlink to a timestamped
//! directory that an update replaces in one rename.

use std::path::{Path, PathBuf};

/// A self-signed certificate and its key, as PEM.
#[derive(Debug, Clone)]
pub struct TestCertificate {
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCertificate {
    /// Valid for each of `names` (DNS names, `*.example` wildcards or IP addresses).
    pub fn self_signed(names: &[&str]) -> Self {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let certified = rcgen::generate_simple_self_signed(names)
            .unwrap_or_else(|error| panic!("make a test certificate: {error}"));
        Self {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
        }
    }
}

impl TestCertificate {
    /// Valid for `names`, but only during the year 2001.
    pub fn expired(names: &[&str]) -> Self {
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = rcgen::CertificateParams::new(names)
            .unwrap_or_else(|error| panic!("certificate parameters: {error}"));
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 12, 31);
        let key = rcgen::KeyPair::generate().unwrap_or_else(|error| panic!("key: {error}"));
        let cert = params
            .self_signed(&key)
            .unwrap_or_else(|error| panic!("sign: {error}"));
        Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// A directory holding a mounted-Secret lookalike; removed on drop.
#[derive(Debug)]
pub struct SecretMount {
    dir: PathBuf,
    generation: u32,
}

impl SecretMount {
    pub fn new(certificate: &TestCertificate) -> Self {
        let dir = std::env::temp_dir().join(format!("tern-tls-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("create the mount directory");
        let mut mount = Self { dir, generation: 0 };
        mount.update_raw(&certificate.cert_pem, &certificate.key_pem);
        std::os::unix::fs::symlink("..data/tls.crt", mount.cert()).expect("link tls.crt");
        std::os::unix::fs::symlink("..data/tls.key", mount.key()).expect("link tls.key");
        mount
    }

    pub fn cert(&self) -> PathBuf {
        self.dir.join("tls.crt")
    }

    pub fn key(&self) -> PathBuf {
        self.dir.join("tls.key")
    }

    /// `cert:key`, as `TERN_INGRESS_TLS_CERTIFICATES` takes it.
    pub fn setting(&self) -> String {
        format!("{}:{}", self.cert().display(), self.key().display())
    }

    /// Replaces the contents the way the kubelet does: new directory, then an atomic swap of
    /// the `..data` link.
    pub fn update(&mut self, certificate: &TestCertificate) {
        self.update_raw(&certificate.cert_pem, &certificate.key_pem);
    }

    /// Same, with arbitrary (possibly broken) contents.
    pub fn update_raw(&mut self, cert_pem: &str, key_pem: &str) {
        self.generation += 1;
        let name = format!("..generation_{}", self.generation);
        let data = self.dir.join(&name);
        std::fs::create_dir(&data).expect("create a generation directory");
        std::fs::write(data.join("tls.crt"), cert_pem).expect("write tls.crt");
        std::fs::write(data.join("tls.key"), key_pem).expect("write tls.key");
        let staged = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&staged);
        std::os::unix::fs::symlink(Path::new(&name), &staged).expect("stage ..data");
        std::fs::rename(&staged, self.dir.join("..data")).expect("swap ..data");
    }
}

impl Drop for SecretMount {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
